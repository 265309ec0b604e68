package bundle

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Part is one encrypted part handed to a PartSink.
type Part struct {
	// Index is the part's position, from 0.
	Index int
	// Name is the file name to store the part under. It is final unless a
	// later RenamePart call moves it (see PartSink).
	Name string
	// Data is the part's encrypted bytes. It is valid only until WritePart
	// returns; the bundler reuses the buffer.
	Data []byte
	// SHA1 is the SHA-1 of Data.
	SHA1 [sha1.Size]byte
}

// PartSink stores the parts of a bundle as the bundler produces them, e.g.
// as files in a directory (Dir) or as objects in S3.
//
// # Part names
//
// A part's name carries its index zero-padded to the number of digits of
// the part count, which is known only once the whole image is compressed. To
// stream anyway, the bundler names each part with its best estimate of the
// final digit count: at least the digits of the parts already written, at
// most the digits of the worst case (incompressible data), in between
// extrapolated from the compression ratio so far. When all parts are
// written and the estimate was wrong for some of them, the bundler calls
// RenamePart once for each such part, before it returns the manifest.
// Images under about 89 MiB never need a rename (even incompressible, they
// make at most 9 parts); for larger ones the estimate is exact unless the
// compression ratio changes a lot along the image, and renames then concern
// only parts written before the estimate settled. Renaming is cheap in a
// directory; an S3 sink copies the object server-side. A provisional name
// never equals the final name of another part, so renames can run in any
// order.
//
// WritePart may be called from several goroutines at once (up to
// Options.Concurrency) and must be safe for that. RenamePart is called only
// after every WritePart has returned.
type PartSink interface {
	WritePart(ctx context.Context, p *Part) error
	RenamePart(ctx context.Context, from, to string) error
}

// PartRemover is implemented by sinks that can delete a stored part. When
// Bundle fails after storing parts, it removes them through this interface
// if the sink implements it.
type PartRemover interface {
	RemovePart(ctx context.Context, name string) error
}

// PartSource opens the stored parts of a bundle for reading, by file name.
type PartSource interface {
	OpenPart(ctx context.Context, name string) (io.ReadCloser, error)
}

// Dir is a directory holding a bundle's parts and manifest. It implements
// PartSink, PartRemover and PartSource. Names must be plain file names.
type Dir string

var (
	_ PartSink    = Dir("")
	_ PartRemover = Dir("")
	_ PartSource  = Dir("")
)

func (d Dir) path(name string) (string, error) {
	if err := checkFileName(name); err != nil {
		return "", fmt.Errorf("part name: %w", err)
	}
	return filepath.Join(string(d), name), nil
}

// WritePart writes p.Data to a temporary file in d and renames it to
// p.Name, so a part file is either complete or absent.
func (d Dir) WritePart(ctx context.Context, p *Part) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst, err := d.path(p.Name)
	if err != nil {
		return err
	}
	return WriteFile(dst, func(f *os.File) error {
		_, err := f.Write(p.Data)
		return err
	})
}

// WriteFile writes the file path through a temporary file, created
// exclusively with mode 0600 in path's directory: write fills it, and only
// when write succeeds is it given mode 0644 and renamed to path, so the
// file is either complete or absent. The rename replaces whatever is at
// path (a symbolic link itself, never its target). On any error the
// temporary file is removed and path is left as it was.
func WriteFile(path string, write func(f *os.File) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	err = write(f)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// RenamePart renames a part file.
func (d Dir) RenamePart(ctx context.Context, from, to string) error {
	src, err := d.path(from)
	if err != nil {
		return err
	}
	dst, err := d.path(to)
	if err != nil {
		return err
	}
	return os.Rename(src, dst)
}

// RemovePart deletes a part file; a missing file is not an error.
func (d Dir) RemovePart(ctx context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// OpenPart opens a part file. Only regular files are parts: a FIFO,
// device, socket or directory at the name (or where a symbolic link there
// points) is an error naming it. The type is checked before the open and
// again on the opened file, and the file is opened non-blocking, so a FIFO
// without a writer cannot make OpenPart wait.
func (d Dir) OpenPart(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	return openRegular(p)
}

// openRegular opens the regular file path for reading; anything else is an
// error naming path, reported without blocking.
func openRegular(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi.Mode())
	}
	// Between the Stat and the open the name may come to be a FIFO, whose
	// ordinary open would wait for a writer; non-blocking, it does not.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(path, fi.Mode())
	}
	return f, nil
}

func notRegular(path string, mode fs.FileMode) error {
	kind := "file type " + mode.Type().String()
	switch t := mode.Type(); {
	case t&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case t&fs.ModeSocket != 0:
		kind = "a socket"
	case t&fs.ModeDevice != 0:
		kind = "a device"
	case t&fs.ModeDir != 0:
		kind = "a directory"
	}
	return fmt.Errorf("%s is not a regular file (%s); only regular files are parts", path, kind)
}
