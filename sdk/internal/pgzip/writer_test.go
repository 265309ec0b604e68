package pgzip

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"os/exec"
	"testing"
	"testing/iotest"
)

// compressBlocks runs data through a Writer with the given
// parameters, by Write in chunks of chunk bytes, or by ReadFrom when chunk
// is 0. It returns the gzip stream and the SHA-1 the writer computed.
func compressBlocks(t *testing.T, data []byte, level, blockSize, workers, chunk int) ([]byte, [sha1.Size]byte) {
	t.Helper()
	var out bytes.Buffer
	h := sha1.New()
	z, err := NewWriter(context.Background(), &out, level, blockSize, workers, h)
	if err != nil {
		t.Fatal(err)
	}
	if chunk == 0 {
		n, err := z.ReadFrom(bytes.NewReader(data))
		if err != nil || n != int64(len(data)) {
			t.Fatalf("ReadFrom = %d, %v; want %d", n, err, len(data))
		}
	} else {
		for p := data; len(p) > 0; {
			k := min(chunk, len(p))
			if n, err := z.Write(p[:k]); err != nil || n != k {
				t.Fatalf("Write = %d, %v", n, err)
			}
			p = p[k:]
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := z.Write([]byte{1}); err == nil {
		t.Error("Write after Close succeeded")
	}
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	return out.Bytes(), sum
}

// gunzipOne decodes a gzip stream with the standard library and requires it
// to be exactly one member.
func gunzipOne(t *testing.T, gz []byte) []byte {
	t.Helper()
	br := bytes.NewReader(gz)
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if br.Len() != 0 {
		t.Fatalf("%d bytes after the first gzip member", br.Len())
	}
	return got
}

func TestWriterRoundTrip(t *testing.T) {
	const bs = 4096
	tests := []struct {
		name    string
		data    []byte
		level   int
		workers int
		chunk   int
	}{
		{name: "empty", data: nil, level: 6, workers: 2},
		{name: "one byte", data: []byte{7}, level: 6, workers: 2},
		{name: "block minus one", data: gzInput("r", bs-1), level: 6, workers: 2},
		{name: "one block", data: gzInput("r", bs), level: 6, workers: 2},
		{name: "block plus one", data: gzInput("r", bs+1), level: 6, workers: 2},
		{name: "two blocks exactly", data: gzInput("t", 2*bs), level: 6, workers: 2},
		{name: "zero blocks", data: gzInput("z", 5*bs), level: 6, workers: 2},
		{name: "zero block last", data: gzInput("r", bs, "z", bs), level: 6, workers: 2},
		{name: "mixed", data: gzInput("r", 3000, "z", 3*bs+5, "t", 2*bs, "z", bs, "r", 10), level: 6, workers: 3},
		{name: "mixed by Write", data: gzInput("r", 3000, "z", 3*bs+5, "t", 2*bs, "z", bs, "r", 10), level: 6, workers: 3, chunk: 1000},
		{name: "many blocks one worker", data: gzInput("t", 40*bs+3), level: 6, workers: 1},
		{name: "many blocks many workers", data: gzInput("t", 40*bs+3), level: 6, workers: 8, chunk: 5000},
		{name: "level 1", data: gzInput("r", bs, "z", 2*bs, "t", bs), level: 1, workers: 2},
		{name: "level 9", data: gzInput("r", bs, "z", 2*bs, "t", bs), level: 9, workers: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gz, sum := compressBlocks(t, tc.data, tc.level, bs, tc.workers, tc.chunk)
			if got := gunzipOne(t, gz); !bytes.Equal(got, tc.data) {
				t.Fatalf("round trip gives %d bytes, want %d", len(got), len(tc.data))
			}
			if sum != sha1.Sum(tc.data) {
				t.Error("hash differs from the SHA-1 of the input")
			}
		})
	}
}

// TestWriterDeterministic checks that the output depends only on the
// input and the level: not on the number of workers, on how the input is
// written, or on the all-zero shortcut (whose constant must equal what
// compressing zeros gives).
func TestWriterDeterministic(t *testing.T) {
	const bs = 8192
	data := gzInput("t", 3*bs, "z", 4*bs, "r", bs+100, "z", 2*bs)
	want, _ := compressBlocks(t, data, 6, bs, 1, 0)
	for _, tc := range []struct{ workers, chunk int }{{2, 0}, {5, 0}, {3, 999}, {4, bs}} {
		got, _ := compressBlocks(t, data, 6, bs, tc.workers, tc.chunk)
		if !bytes.Equal(got, want) {
			t.Errorf("%d workers, chunk %d: output differs", tc.workers, tc.chunk)
		}
	}
	// The shortcut: a zero block in the middle of the stream is emitted as
	// the cached constant; compressing one by hand gives the same bytes.
	z, err := compressedZeros(6, bs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(want, z.out) {
		t.Error("stream does not contain the compressed zero block")
	}
	if len(z.out) > bs/100 {
		t.Errorf("a zero block compresses to %d bytes", len(z.out))
	}
}

func TestWriterCLI(t *testing.T) {
	if _, err := exec.LookPath("gunzip"); err != nil {
		t.Fatalf("gunzip not installed: %v", err)
	}
	data := gzInput("r", 5000, "z", 3*BlockSize, "t", BlockSize+77)
	gz, _ := compressBlocks(t, data, 6, BlockSize, 2, 0)
	cmd := exec.Command("gunzip", "-c")
	cmd.Stdin = bytes.NewReader(gz)
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("gunzip gives %d bytes, want %d", len(got), len(data))
	}
	// gzip -t checks the CRC and length of the trailer.
	cmd = exec.Command("gzip", "-t")
	cmd.Stdin = bytes.NewReader(gz)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gzip -t: %v\n%s", err, b)
	}
}

func TestWriterErrors(t *testing.T) {
	errSink := errors.New("sink failed")
	errSource := errors.New("source failed")
	const bs = 4096
	data := gzInput("r", 20*bs)
	tests := []struct {
		name    string
		w       io.Writer
		r       io.Reader
		cancel  bool
		wantErr error
	}{
		{name: "downstream fails at once", w: &failWriter{n: 0, err: errSink}, r: bytes.NewReader(data), wantErr: errSink},
		{name: "downstream fails later", w: &failWriter{n: 3 * bs, err: errSink}, r: bytes.NewReader(data), wantErr: errSink},
		{name: "source fails", w: io.Discard, r: io.MultiReader(bytes.NewReader(data[:5*bs+3]), iotest.ErrReader(errSource)), wantErr: errSource},
		{name: "cancelled", w: io.Discard, r: endless{}, cancel: true, wantErr: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			z, err := NewWriter(ctx, tc.w, 6, bs, 2, sha1.New())
			if err != nil {
				t.Fatal(err)
			}
			r := tc.r
			if tc.cancel {
				r = io.MultiReader(bytes.NewReader(data[:7*bs]), readerFunc(func(p []byte) (int, error) {
					cancel()
					return tc.r.Read(p)
				}))
			}
			_, err = z.ReadFrom(r)
			if err == nil {
				err = z.Close()
			} else {
				z.Abort(err)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if cerr := z.Close(); !errors.Is(cerr, tc.wantErr) {
				t.Errorf("Close after failure = %v, want %v", cerr, tc.wantErr)
			}
			if _, werr := z.Write([]byte("more")); werr == nil {
				t.Error("Write after failure succeeded")
			}
		})
	}
}

func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 3*4096 + 5} {
		b := make([]byte, n)
		if !IsZero(b) {
			t.Errorf("%d zeros: not zero", n)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			if n == 0 {
				continue
			}
			b[i] = 1
			if IsZero(b) {
				t.Errorf("%d bytes with byte %d set: zero", n, i)
			}
			b[i] = 0
		}
	}
}
