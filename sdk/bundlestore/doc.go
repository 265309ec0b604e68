// Package bundlestore keeps AMI bundles (see package bundle) in Amazon S3
// and registers instance-store images from them.
//
// A bundle in S3 is a set of objects under a key prefix: the parts
// "<prefix>/<name>.part.N" and the manifest "<prefix>/<name>.manifest.xml"
// ([Location]). EC2 registers an image from the manifest's location,
// "<bucket>/<prefix>/<name>.manifest.xml", and reads the objects with the
// canned ACL aws-exec-read, so every object is stored with that ACL.
//
// Storing:
//   - [CheckBucket] checks a bucket before anything is uploaded: it exists,
//     is in the region the image is registered in, has ACLs enabled and
//     does not encrypt with SSE-KMS. Failures are a *[BucketError] that
//     says what to change.
//   - [CheckLocation] checks, with one HeadObject, that no bundle manifest
//     is already where a bundle is about to go, since an upload would
//     overwrite the bundle of any image registered from it; a manifest of an
//     image the caller is replacing is accepted. An existing one is a
//     *[BundleExistsError].
//   - [Upload] stores a bundle from a directory; [Writer] is the streaming
//     form, a bundle.PartSink the bundler writes parts into while it makes
//     them. Parts are sent concurrently (Options.Concurrency, default 4)
//     with a CRC-32 checksum S3 verifies, the manifest last and only after
//     every part succeeded, and only where no manifest is (If-None-Match,
//     unless ReplaceManifest), so a bundle stored there since
//     CheckLocation is not replaced. An interrupted upload resumes: parts already stored
//     intact (same MD5 ETag) are not sent again. A Writer holds at most
//     Concurrency parts (10 MiB each) in flight, on top of the bundler's
//     own buffers.
//   - [Download] copies a bundle into a directory, checking each part's
//     SHA-1; [Source] is a bundle.PartSource reading parts straight from S3.
//   - [Delete] removes a bundle: the manifest and the parts it lists, or
//     every part and manifest of that name under the prefix. It never
//     touches other objects.
//
// Registering:
//   - [Register] calls RegisterImage with the manifest location and the
//     image's machine settings (architecture, virtualization type, root
//     device, block device mappings, kernel/ramdisk, ENA, SR-IOV, boot
//     mode, TPM, IMDS, tags).
//   - [Deregister] deregisters an instance-store image and deletes its
//     bundle.
//
// Every operation takes narrow client interfaces that *s3.Client and
// *ec2.Client satisfy, and optional functions modifying [Options]. With
// Options.Ledger set, uploaded objects and registered images are recorded
// with their undo, so a failed run can remove them.
package bundlestore
