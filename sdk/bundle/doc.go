// Package bundle reads and writes AMI bundles: the format of instance-store
// AMIs, an image turned into encrypted parts plus a signed XML manifest
// (version 2007-10-10), compatible with the Amazon EC2 AMI tools
// (ec2-bundle-image, ec2-unbundle) and with EC2's RegisterImage.
//
// The package is pure Go and makes no AWS calls; storing bundles in S3 and
// registering them is the job of package bundlestore, which provides a
// PartSink and a PartSource backed by S3.
//
// # Bundling
//
// Bundle streams an image through
//
//	tar (one entry) → SHA-1 of the tar stream → gzip → AES-128-CBC → 10 MiB parts
//
// and hands each part, with its SHA-1, to a PartSink as soon as it is
// complete. No temporary copy of the bundle is made: memory use depends on
// Options.Concurrency, not on the image size. Bundle then encrypts the AES
// key and IV for the user's and EC2's certificates, signs the manifest with
// the user's key and returns it; the caller stores the manifest after the
// parts. The layers are io.WriteClosers with sticky errors and checked
// Close, in the manner of archive/tar and crypto/cipher.
//
// Part file names carry the part index zero-padded to the digit count of
// the number of parts, which is only known at the end; see PartSink for how
// parts are named while streaming.
//
// # Reading
//
// ParseManifest parses and bounds-checks a manifest and keeps its bytes, so
// that Bytes returns them unchanged and the signature is verified over
// exactly what was signed (SignedBytes). Open returns a Reader of the
// image; Unbundle writes it to an io.Writer; UnbundleToDir writes it to a
// file named by the manifest, never replacing an existing file unless
// Options.Overwrite is set; Verify checks a bundle without writing it.
// Every check names what failed: *PartDigestError, *PartError,
// *SizeError, *ImageDigestError, *FormatError, ErrSignature, ErrKeyDecrypt,
// ErrPadding.
//
// Every operation takes optional functions that modify one [Options]
// type; each field says which operations use it.
//
// Dir implements PartSink and PartSource for a local directory.
package bundle
