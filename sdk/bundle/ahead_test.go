package bundle

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestAheadReader(t *testing.T) {
	errBroken := errors.New("broken source")
	data := randomBytes(3*aheadChunkSize+1234, 61)
	tests := []struct {
		name    string
		src     io.Reader
		want    []byte
		wantErr error
	}{
		{name: "empty", src: bytes.NewReader(nil), want: nil},
		{name: "short", src: bytes.NewReader(data[:100]), want: data[:100]},
		{name: "exact chunk", src: bytes.NewReader(data[:aheadChunkSize]), want: data[:aheadChunkSize]},
		{name: "several chunks, small reads", src: iotest.HalfReader(bytes.NewReader(data)), want: data},
		{name: "error after data", src: io.MultiReader(bytes.NewReader(data[:aheadChunkSize+5]), iotest.ErrReader(errBroken)), want: data[:aheadChunkSize+5], wantErr: errBroken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := sha1.New()
			a := newAheadReader(tc.src, h)
			defer a.stop()
			got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(a, 200)))
			if err != nil && !errors.Is(err, tc.wantErr) {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(a)
			got = append(got, rest...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
			if _, err := a.Read(make([]byte, 1)); err == nil {
				t.Error("Read after the end succeeded")
			}
			a.hashed()
			if !bytes.Equal(h.Sum(nil), sha1Sum(tc.want)) {
				t.Error("hash differs from the SHA-1 of what was read")
			}
		})
	}
}

func sha1Sum(b []byte) []byte { s := sha1.Sum(b); return s[:] }

// TestAheadReaderStop stops the reader before the source is read to the
// end; stop must return and the source must not be read after it.
func TestAheadReaderStop(t *testing.T) {
	a := newAheadReader(endless{}, sha1.New())
	if _, err := io.ReadFull(a, make([]byte, 3*aheadChunkSize)); err != nil {
		t.Fatal(err)
	}
	a.stop()
	a.stop()
}
