//go:build !linux

package bundle

import "io"

// sparseReader returns r: hole detection is implemented for Linux only.
func sparseReader(r io.Reader) io.Reader { return r }
