//go:build unix

package bundlestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// tamperedS3 serves the objects of a fakeS3, except that GetObject of key
// answers with body and counts the bytes read from it.
type tamperedS3 struct {
	*fakeS3
	key  string
	body func() io.Reader
	read atomic.Int64
}

func (g *tamperedS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if aws.ToString(in.Key) != g.key {
		return g.fakeS3.GetObject(ctx, in, optFns...)
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(&countingReader{r: g.body(), n: &g.read})}, nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// failingReader returns its bytes and then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

// uploadedBundle returns a fake bucket holding the shared three-part bundle
// under no prefix.
func uploadedBundle(t *testing.T) (*fakeS3, *testBundle) {
	t.Helper()
	b := sharedBundle(t, threeParts)
	f := newFakeS3("bkt")
	if _, err := Upload(context.Background(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt"}); err != nil {
		t.Fatal(err)
	}
	return f, b
}

// dirNames returns the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestDownloadReplacesSymlinks(t *testing.T) {
	f, b := uploadedBundle(t)
	dir, outside := t.TempDir(), t.TempDir()
	names := []string{b.Manifest.Parts[0].Filename, b.Manifest.Parts[2].Filename, "root.img.manifest.xml"}
	for _, n := range names {
		victim := filepath.Join(outside, n)
		if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	dl, err := Download(context.Background(), f, &DownloadInput{Bucket: "bkt", Name: "root.img", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if got := readFile(t, filepath.Join(outside, n)); string(got) != "precious" {
			t.Errorf("the target of the symlink %s was written through", n)
		}
		fi, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s has mode %v, want a regular file with mode 0644", n, fi.Mode())
		}
	}
	if got := len(dirNames(t, dir)); got != 4 {
		t.Errorf("directory holds %v, want the manifest and 3 parts", dirNames(t, dir))
	}
	if !bytes.Equal(unbundle(t, readFile(t, dl.ManifestPath), bundle.Dir(dir)), b.Image) {
		t.Error("downloaded bundle unbundles to a different image")
	}
}

func TestDownloadFailureLeavesNoPart(t *testing.T) {
	_, b := uploadedBundle(t)
	last := b.Manifest.Parts[2]
	data := func(t *testing.T, f *fakeS3) []byte {
		t.Helper()
		d, ok := f.Object(last.Filename)
		if !ok {
			t.Fatal("part missing")
		}
		return d
	}
	tests := []struct {
		name string
		body func(good []byte) func() io.Reader
		// maxRead bounds the bytes read of the part (0: no bound).
		maxRead int64
		want    string
	}{
		{
			name: "digest mismatch",
			body: func(good []byte) func() io.Reader {
				bad := bytes.Clone(good)
				bad[7] ^= 1
				return func() io.Reader { return bytes.NewReader(bad) }
			},
			want: "SHA-1",
		},
		{
			name: "read error",
			body: func(good []byte) func() io.Reader {
				return func() io.Reader {
					return &failingReader{r: bytes.NewReader(good[:len(good)/2]), err: errors.New("connection reset")}
				}
			},
			want: "connection reset",
		},
		{
			name: "larger than a part can be",
			body: func(good []byte) func() io.Reader {
				return func() io.Reader { return io.LimitReader(zeros{}, bundle.PartSize+5<<20) }
			},
			maxRead: bundle.PartSize + 1,
			want:    fmt.Sprintf("larger than %d bytes", bundle.PartSize),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := uploadedBundle(t)
			g := &tamperedS3{fakeS3: f, key: last.Filename, body: tc.body(data(t, f))}
			dir := t.TempDir()
			old := filepath.Join(dir, last.Filename)
			if err := os.WriteFile(old, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Download(context.Background(), g, &DownloadInput{Bucket: "bkt", Name: "root.img", Dir: dir})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), last.Filename) {
				t.Fatalf("Download: %v, want an error naming %s with %q", err, last.Filename, tc.want)
			}
			if got := readFile(t, old); string(got) != "old" {
				t.Errorf("%s holds %d bytes of the failed download", last.Filename, len(got))
			}
			for _, n := range dirNames(t, dir) {
				if strings.HasPrefix(n, ".") || n == "root.img.manifest.xml" {
					t.Errorf("%s left in the directory after a failure", n)
				}
			}
			if n := g.read.Load(); tc.maxRead > 0 && n > tc.maxRead {
				t.Errorf("read %d bytes of the part, want at most %d", n, tc.maxRead)
			}
		})
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
