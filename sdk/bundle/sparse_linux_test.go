package bundle

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// sparseImage writes a file of size bytes with data only at the given
// offsets (the rest holes) and returns it opened, with its content.
func sparseImage(t *testing.T, size int64, data map[int64][]byte) (*os.File, []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], b)
	}
	return f, want
}

func TestSparseReader(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		size  int64
		data  map[int64][]byte
		start int64 // file offset when reading starts
	}{
		{name: "all hole", size: 3 * mib},
		{name: "all data", size: 100 << 10, data: map[int64][]byte{0: randomBytes(100<<10, 71)}},
		{name: "hole then data", size: 5 * mib, data: map[int64][]byte{3 * mib: randomBytes(5000, 72)}},
		{name: "data then hole", size: 5 * mib, data: map[int64][]byte{0: randomBytes(5000, 73)}},
		{name: "islands", size: 9 * mib, data: map[int64][]byte{mib + 17: randomBytes(70000, 74), 4 * mib: randomBytes(2*mib, 75), 9*mib - 3: {1, 2, 3}}},
		{name: "from an offset", size: 6 * mib, data: map[int64][]byte{2 * mib: randomBytes(9000, 76)}, start: mib + 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, want := sparseImage(t, tc.size, tc.data)
			if _, err := f.Seek(tc.start, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			r := sparseReader(f)
			if _, ok := r.(*sparseFile); !ok {
				t.Fatalf("sparseReader gives %T for a regular file", r)
			}
			// Odd read sizes cross extent boundaries.
			got := readInSteps(t, r, 300001)
			if !bytes.Equal(got, want[tc.start:]) {
				t.Fatalf("read %d bytes, differ from the file's %d", len(got), len(want)-int(tc.start))
			}
			// Holes are not read: only the data, rounded to the file
			// system's blocks.
			var data int64
			for _, b := range tc.data {
				data += int64(len(b))
			}
			if sf := r.(*sparseFile); sf.read > data+int64(2*len(tc.data))*64<<10 {
				t.Errorf("read %d bytes from the file for %d bytes of data", sf.read, data)
			}
		})
	}
	if r := sparseReader(bytes.NewReader(nil)); r == nil {
		t.Error("nil for a non-file reader")
	}
}

// TestBundleSparseFile bundles a sparse file and a reader of the same bytes:
// the tar streams (and so the image digests) are the same, and the bundle
// unbundles to the image. An image longer than Size is still refused.
func TestBundleSparseFile(t *testing.T) {
	k := loadKeys(t)
	f, img := sparseImage(t, 7<<20+333, map[int64][]byte{2 << 20: randomBytes(300<<10, 77), 7 << 20: randomBytes(333, 78)})
	fromFile := bundleInput(k, nil, newMemSink())
	fromFile.Image, fromFile.Size = f, int64(len(img))
	out, err := Bundle(context.Background(), fromFile)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Bundle(context.Background(), bundleInput(k, img, newMemSink()))
	if err != nil {
		t.Fatal(err)
	}
	if out.Manifest.Digest != ref.Manifest.Digest {
		t.Error("image digest from the file differs from the digest from memory")
	}
	var got bytes.Buffer
	if _, err := Unbundle(context.Background(), &UnbundleInput{Manifest: out.ManifestBytes, Source: fromFile.Sink.(*memSink), UserKey: k.userKey}, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), img) {
		t.Error("unbundled image differs")
	}
	long := bundleInput(k, nil, newMemSink())
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	long.Image, long.Size = f, int64(len(img))-1
	if _, err := Bundle(context.Background(), long); err == nil {
		t.Error("a file longer than Size was bundled")
	}
}
