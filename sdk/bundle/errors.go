package bundle

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrSignature means the manifest's signature does not verify with the
	// given certificate, or the manifest is not signed.
	ErrSignature = errors.New("manifest signature does not verify")

	// ErrKeyDecrypt means the user's private key could not decrypt the AES
	// key or IV recorded in the manifest: it is not the key the bundle was
	// made for, or the manifest is corrupt.
	ErrKeyDecrypt = errors.New("cannot decrypt the bundle key with this private key")

	// ErrPadding means the decrypted data ends in invalid PKCS #7 padding:
	// wrong key or IV, or corrupt or truncated parts.
	ErrPadding = errors.New("invalid cipher padding (wrong key or corrupt data)")
)

// InputError reports an invalid field of a BundleInput or UnbundleInput.
type InputError struct {
	Field  string // e.g. "Name", "Size", "Architecture"
	Reason string
}

// Error names the invalid field and the reason.
func (e *InputError) Error() string { return "bundle: invalid " + e.Field + ": " + e.Reason }

// ManifestError reports a manifest that cannot be parsed or fails a bound.
type ManifestError struct {
	Field  string // element, e.g. "image/size", "image/parts/part[3]/filename"
	Reason string
	Err    error // underlying error, if any
}

// Error names the manifest element and what is wrong with it.
func (e *ManifestError) Error() string {
	s := "manifest"
	if e.Field != "" {
		s += " " + e.Field
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err, the underlying error, if any.
func (e *ManifestError) Unwrap() error { return e.Err }

// PartError reports a part that could not be stored, opened or read.
type PartError struct {
	Index    int
	Filename string
	Err      error
}

// Error names the part and the failure.
func (e *PartError) Error() string {
	return fmt.Sprintf("part %d (%s): %v", e.Index, e.Filename, e.Err)
}

// Unwrap returns Err, the underlying error.
func (e *PartError) Unwrap() error { return e.Err }

// PartDigestError reports a part whose SHA-1 differs from the manifest.
type PartDigestError struct {
	Index    int
	Filename string
	Want     string // lowercase hex, from the manifest
	Got      string // lowercase hex, of the bytes read
}

// Error names the part and both SHA-1 sums.
func (e *PartDigestError) Error() string {
	return fmt.Sprintf("part %d (%s): SHA-1 %s, manifest says %s", e.Index, e.Filename, e.Got, e.Want)
}

// SizeError reports a size that differs from the manifest.
type SizeError struct {
	What string // "bundled_size" (sum of parts) or "size" (image)
	Want int64  // from the manifest
	Got  int64
}

// Error names the size and both values.
func (e *SizeError) Error() string {
	return fmt.Sprintf("%s is %d bytes, manifest says %d", e.What, e.Got, e.Want)
}

// ImageDigestError reports a tar stream whose SHA-1 differs from the
// manifest's <digest>.
type ImageDigestError struct {
	Want string // lowercase hex, from the manifest
	Got  string // lowercase hex, of the decompressed tar stream
}

// Error gives both SHA-1 sums of the tar stream.
func (e *ImageDigestError) Error() string {
	return fmt.Sprintf("image digest (SHA-1 of the tar stream) is %s, manifest says %s", e.Got, e.Want)
}

// FormatError reports decrypted data that is not a gzip-compressed tar
// stream with exactly one regular entry.
type FormatError struct {
	Stage  string // "gzip" or "tar"
	Reason string
	Err    error
}

// Error names the stream and what is wrong with it.
func (e *FormatError) Error() string {
	s := "bundle " + e.Stage + " stream: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err, the underlying error, if any.
func (e *FormatError) Unwrap() error { return e.Err }
