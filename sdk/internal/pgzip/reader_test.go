package pgzip

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha1"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// markerData is incompressible data strewn with sync-flush markers (and
// bytes before them that pass the splitter's check), which deflate keeps
// as stored blocks: candidates that are not block boundaries.
func markerData(n int) []byte {
	b := noise(n, 77)
	for i := 1000; i+5 < n; i += 150_001 {
		copy(b[i:], []byte{0, 0, 0, 0xff, 0xff})
	}
	return b
}

func TestReader(t *testing.T) {
	mixed := mixedImage()[:6<<20+12345]
	blocks := func(n int) []byte { return mixed[:n] }
	withZeros := append(append(append([]byte{}, mixed[:3<<20]...), make([]byte, 5<<20)...), mixed[:1<<20]...)
	ours := func(level int) func(testing.TB, []byte) []byte {
		return func(t testing.TB, d []byte) []byte { return ourGzip(t, d, level) }
	}
	tests := []struct {
		name string
		data []byte
		gz   func(t testing.TB, data []byte) []byte
		// parallel: the stream, made by Writer in blocks of BlockSize,
		// must be read in parallel throughout.
		parallel bool
	}{
		{name: "ours, mixed", data: mixed, gz: ours(6), parallel: true},
		{name: "ours, zero blocks", data: withZeros, gz: ours(6), parallel: true},
		{name: "ours, level 1", data: mixed, gz: ours(1), parallel: true},
		{name: "ours, level 9", data: mixed, gz: ours(9), parallel: true},
		{name: "ours, empty", data: nil, gz: ours(6), parallel: true},
		{name: "ours, short", data: blocks(100), gz: ours(6), parallel: true},
		{name: "ours, one block", data: blocks(BlockSize), gz: ours(6), parallel: true},
		{name: "ours, one block and a byte", data: blocks(BlockSize + 1), gz: ours(6), parallel: true},
		{name: "ours, false markers in stored blocks", data: markerData(5 << 20), gz: ours(6)},
		{name: "one deflate stream (gzip -9)", data: mixed, gz: func(t testing.TB, d []byte) []byte { return stdGzip(t, d, gzip.BestCompression, 0, gzip.Header{}) }},
		{name: "sync flush every 128 KiB, window kept (pigz)", data: mixed, gz: func(t testing.TB, d []byte) []byte {
			return stdGzip(t, d, gzip.BestCompression, 128<<10, gzip.Header{})
		}},
		{name: "sync flush every MiB, window kept", data: mixed, gz: func(t testing.TB, d []byte) []byte {
			return stdGzip(t, d, gzip.BestCompression, BlockSize, gzip.Header{})
		}},
		{name: "header with name, comment and extra", data: mixed[:2<<20], gz: func(t testing.TB, d []byte) []byte {
			return stdGzip(t, d, gzip.BestCompression, BlockSize, gzip.Header{Name: "img.tar", Comment: "made elsewhere", Extra: []byte("xx\x02\x00ab")})
		}},
		{name: "two members", data: mixed, gz: func(t testing.TB, d []byte) []byte {
			return append(ourGzip(t, d[:3<<20+5], 6), ourGzip(t, d[3<<20+5:], 6)...)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gz := tc.gz(t, tc.data)
			for _, src := range []struct {
				name string
				r    io.Reader
			}{{"whole", bytes.NewReader(gz)}, {"small reads", iotest.HalfReader(bytes.NewReader(gz))}} {
				h := sha1.New()
				z := NewReader(src.r, h, 2)
				got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(z, 100)))
				if err == nil {
					var rest []byte
					rest, err = io.ReadAll(z)
					got = append(got, rest...)
				}
				z.Hashed()
				if err != nil {
					t.Fatalf("%s: %v", src.name, err)
				}
				if !bytes.Equal(got, tc.data) {
					t.Fatalf("%s: read %d bytes differing from the %d written", src.name, len(got), len(tc.data))
				}
				if !bytes.Equal(h.Sum(nil), sha1Sum(tc.data)) {
					t.Errorf("%s: hash differs from the SHA-1 of the data", src.name)
				}
				t.Logf("%s: %d segments in parallel, %d joined, %d in order", src.name, z.parallel, z.merged, z.sequential)
				if tc.parallel && (z.sequential != 0 || z.merged != 0 || z.parallel == 0) {
					t.Errorf("%s: %d segments in parallel, %d joined, %d in order; want all in parallel", src.name, z.parallel, z.merged, z.sequential)
				}
				if _, err := z.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("%s: Read after the end: %v, want io.EOF", src.name, err)
				}
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	data := mixedImage()[:4<<20]
	gz := ourGzip(t, data, 6)
	errBroken := errors.New("broken source")
	flip := func(i int) []byte {
		b := bytes.Clone(gz)
		b[i] ^= 0x40
		return b
	}
	tests := []struct {
		name  string
		src   io.Reader
		check func(error) bool
	}{
		{"empty", bytes.NewReader(nil), func(err error) bool { return err == io.ErrUnexpectedEOF }},
		{"not gzip", bytes.NewReader([]byte("hello, world, this is not a gzip stream")), func(err error) bool { return errors.Is(err, gzip.ErrHeader) }},
		{"truncated trailer", bytes.NewReader(gz[:len(gz)-3]), func(err error) bool { return err == io.ErrUnexpectedEOF }},
		{"truncated stream", bytes.NewReader(gz[:len(gz)/2]), func(err error) bool { return err == io.ErrUnexpectedEOF }},
		{"CRC wrong", bytes.NewReader(flip(len(gz) - 8)), func(err error) bool { return errors.Is(err, gzip.ErrChecksum) }},
		{"length wrong", bytes.NewReader(flip(len(gz) - 2)), func(err error) bool { return errors.Is(err, gzip.ErrChecksum) }},
		{"corrupt data", bytes.NewReader(flip(len(gz) / 3)), func(err error) bool {
			var ce flate.CorruptInputError
			return errors.As(err, &ce) || errors.Is(err, gzip.ErrChecksum) || err == io.ErrUnexpectedEOF
		}},
		{"garbage after the member", bytes.NewReader(append(bytes.Clone(gz), "garbage!"...)), func(err error) bool { return err != nil }},
		{"source fails", io.MultiReader(bytes.NewReader(gz[:len(gz)/2]), iotest.ErrReader(errBroken)), func(err error) bool { return errors.Is(err, errBroken) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := NewReader(tc.src, sha1.New(), 2)
			_, err := io.ReadAll(z)
			z.Stop()
			if err == nil || !tc.check(err) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if z.Err() != err {
				t.Errorf("recorded stream error %v, Read returned %v", z.Err(), err)
			}
		})
	}
}

// TestReaderStop stops the reader in the middle; stop must return.
func TestReaderStop(t *testing.T) {
	gz := ourGzip(t, mixedImage()[:8<<20], 6)
	for _, n := range []int{0, 1, 3 << 20} {
		z := NewReader(bytes.NewReader(gz), sha1.New(), 2)
		if _, err := io.ReadFull(z, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		z.Stop()
		z.Stop()
		if _, err := z.Read(make([]byte, 1)); err == nil {
			t.Error("Read after stop succeeded")
		}
	}
}

// TestReaderZeroBlocks: a segment with the bytes of one that inflated
// to a block of zeros is not inflated again.
func TestReaderZeroBlocks(t *testing.T) {
	data := append(append(gzInput("t", BlockSize), make([]byte, 4*BlockSize)...), "tail"...)
	z := NewReader(bytes.NewReader(ourGzip(t, data, 6)), sha1.New(), 1)
	got, err := io.ReadAll(z)
	z.Hashed()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("output differs")
	}
	// One worker, in order: the first zero block is inflated, the next
	// three are recognised.
	if n := z.zeroHits.Load(); n != 3 {
		t.Errorf("%d zero blocks recognised, want 3", n)
	}
}
