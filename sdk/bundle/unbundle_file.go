package bundle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/pgzip"
)

// UnbundleToDir reads the bundle and writes its image into the directory
// dir (created if needed), under the manifest's image name, as ec2-unbundle
// does. See Reader for the checks made. Runs of zeros become holes.
//
// The manifest chooses the file name (ParseManifest allows plain names
// only), so by default an existing file of that name is never replaced:
// the name is claimed with an exclusive create (which fails on anything
// there, a symbolic link included, and never follows one) before any part
// is read, and an existing path is an error wrapping fs.ErrExist that names
// it. Options.Overwrite lifts this; a symbolic link at the name is then
// replaced itself, never followed.
//
// The image is written to a temporary file in dir and renamed to its name
// once every check passed; on any error the temporary file and the claimed
// name are removed, so the name holds either the complete image or, for
// the duration of the call, an empty file.
func UnbundleToDir(ctx context.Context, in *UnbundleInput, dir string, optFns ...func(*Options)) (*UnbundleOutput, error) {
	if in == nil {
		return nil, &InputError{Field: "UnbundleInput", Reason: "nil"}
	}
	if dir == "" {
		return nil, &InputError{Field: "dir", Reason: "missing"}
	}
	o := opts.Apply(optFns)
	m, err := ParseManifest(in.Manifest)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bundle: unbundle: %w", err)
	}
	dst := filepath.Join(dir, m.Name)
	if !o.Overwrite {
		// Claim the name first; the image replaces the empty file.
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("bundle: unbundle: %s already exists (Options.Overwrite replaces it): %w", dst, fs.ErrExist)
		}
		if err != nil {
			return nil, fmt.Errorf("bundle: unbundle: %w", err)
		}
		if err := f.Close(); err != nil {
			os.Remove(dst)
			return nil, fmt.Errorf("bundle: unbundle: %w", err)
		}
	}
	var out *UnbundleOutput
	var werr error
	err = WriteFile(dst, func(f *os.File) error {
		out, werr = writeImage(ctx, in, f, optFns)
		return werr
	})
	if err != nil {
		if !o.Overwrite {
			os.Remove(dst)
		}
		if err != werr {
			err = fmt.Errorf("bundle: unbundle: %w", err)
		}
		return nil, err
	}
	out.Path = dst
	return out, nil
}

// writeImage unbundles into f, leaving holes for runs of zeros.
func writeImage(ctx context.Context, in *UnbundleInput, f *os.File, optFns []func(*Options)) (*UnbundleOutput, error) {
	sw := &sparseWriter{f: f}
	out, err := Unbundle(ctx, in, sw, optFns...)
	if err != nil {
		return nil, err
	}
	if err := sw.finish(); err != nil {
		return nil, fmt.Errorf("bundle: unbundle: %w", err)
	}
	return out, nil
}

// sparseWriter writes to a file, seeking over blocks of zeros so that they
// become holes, and sets the file's size at the end.
type sparseWriter struct {
	f   *os.File
	off int64
}

const sparseBlock = 4096

func (s *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)
	// Write each run of blocks that are not all zeros with one call.
	start := -1
	for i := 0; i < len(p); i += sparseBlock {
		k := min(len(p)-i, sparseBlock)
		zero := pgzip.IsZero(p[i : i+k])
		if !zero && start < 0 {
			start = i
		}
		if zero && start >= 0 {
			if _, err := s.f.WriteAt(p[start:i], s.off+int64(start)); err != nil {
				return 0, err
			}
			start = -1
		}
	}
	if start >= 0 {
		if _, err := s.f.WriteAt(p[start:], s.off+int64(start)); err != nil {
			return 0, err
		}
	}
	s.off += int64(n)
	return n, nil
}

// finish gives the file its full size when it ends in zeros.
func (s *sparseWriter) finish() error { return s.f.Truncate(s.off) }
