package bundle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// countingSource counts the parts opened through it.
type countingSource struct {
	PartSource
	opened atomic.Int32
}

func (c *countingSource) OpenPart(ctx context.Context, name string) (io.ReadCloser, error) {
	c.opened.Add(1)
	return c.PartSource.OpenPart(ctx, name)
}

func TestUnbundleToDir(t *testing.T) {
	k := loadKeys(t)
	out, sink, img := multiPartBundle(t, k)
	const name = "img.raw"
	tests := []struct {
		name string
		// existing, when not nil, is written at the image's path first.
		existing  []byte
		overwrite bool
		corrupt   bool
		wantErr   error
		// want is the content at the image's path afterwards; nil: absent.
		want []byte
	}{
		{name: "fresh", want: img},
		{name: "existing file", existing: []byte("precious"), wantErr: fs.ErrExist, want: []byte("precious")},
		{name: "existing file, overwrite", existing: []byte("precious"), overwrite: true, want: img},
		{name: "corrupt part", corrupt: true, want: nil},
		{name: "corrupt part, existing file, overwrite", existing: []byte("precious"), overwrite: true, corrupt: true, want: []byte("precious")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			if tc.existing != nil {
				if err := os.WriteFile(path, tc.existing, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			parts := newMemSink()
			for n, b := range sink.parts {
				parts.parts[n] = bytes.Clone(b)
			}
			if tc.corrupt {
				parts.parts[out.Manifest.Parts[1].Filename][9] ^= 1
			}
			src := &countingSource{PartSource: parts}
			in := &UnbundleInput{Manifest: out.ManifestBytes, Source: src, UserKey: k.userKey, UserCert: k.userCert}
			res, err := UnbundleToDir(context.Background(), in, dir, func(o *Options) { o.Overwrite = tc.overwrite })
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("UnbundleToDir: %v, want an error naming %s wrapping %v", err, path, tc.wantErr)
				}
				if n := src.opened.Load(); n != 0 {
					t.Errorf("%d parts opened before the refusal", n)
				}
			case tc.corrupt:
				var pe *PartDigestError
				if !errors.As(err, &pe) {
					t.Errorf("UnbundleToDir: %v, want a *PartDigestError", err)
				}
			case err != nil:
				t.Fatalf("UnbundleToDir: %v", err)
			default:
				if res.Path != path || res.Size != int64(len(img)) {
					t.Errorf("Path %q, Size %d; want %q, %d", res.Path, res.Size, path, len(img))
				}
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
					t.Errorf("image file: %v, %v; want mode 0644", fi, err)
				}
			}
			got, err := os.ReadFile(path)
			switch {
			case tc.want == nil && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("%s exists after a failure (%v)", path, err)
			case tc.want != nil && !bytes.Equal(got, tc.want):
				t.Errorf("%s holds %d bytes, want %d", path, len(got), len(tc.want))
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != name {
					t.Errorf("%s left in the directory", e.Name())
				}
			}
		})
	}
}

func TestUnbundleToDirNeverFollowsSymlink(t *testing.T) {
	k := loadKeys(t)
	out, sink, img := multiPartBundle(t, k)
	for _, overwrite := range []bool{false, true} {
		dir := t.TempDir()
		victim := filepath.Join(t.TempDir(), "victim")
		if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "img.raw")
		if err := os.Symlink(victim, path); err != nil {
			t.Fatal(err)
		}
		in := &UnbundleInput{Manifest: out.ManifestBytes, Source: sink, UserKey: k.userKey}
		_, err := UnbundleToDir(context.Background(), in, dir, func(o *Options) { o.Overwrite = overwrite })
		if got := readFile(t, victim); string(got) != "precious" {
			t.Errorf("overwrite=%v: the symlink's target was written", overwrite)
		}
		fi, lerr := os.Lstat(path)
		switch {
		case lerr != nil:
			t.Fatal(lerr)
		case !overwrite && (!errors.Is(err, fs.ErrExist) || fi.Mode()&fs.ModeSymlink == 0):
			t.Errorf("overwrite=false: err %v, %s is %v; want the symlink refused and kept", err, path, fi.Mode())
		case overwrite && (err != nil || !fi.Mode().IsRegular() || !bytes.Equal(readFile(t, path), img)):
			t.Errorf("overwrite=true: err %v, %s is %v; want the symlink replaced by the image", err, path, fi.Mode())
		}
	}
}
