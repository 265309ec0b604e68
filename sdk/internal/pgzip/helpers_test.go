package pgzip

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"hash"
	"math/rand/v2"
	"sync"
	"testing"
)

// noise returns n pseudo-random bytes, the same for the same seed.
func noise(n int, seed uint64) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// gzInput builds test inputs from pieces: r = random, z = zeros, t = text,
// each of n bytes.
func gzInput(pieces ...any) []byte {
	var b []byte
	for i := 0; i < len(pieces); i += 2 {
		n := pieces[i+1].(int)
		switch pieces[i].(string) {
		case "r":
			b = append(b, noise(n, uint64(len(b)+1))...)
		case "z":
			b = append(b, make([]byte, n)...)
		case "t":
			b = append(b, bytes.Repeat([]byte("tar stream text "), n/16+1)[:n]...)
		}
	}
	return b
}

// mixedImage is an image of a little over 8 MiB: runs of random bytes, text and
// zeros, as in a file system, that do not line up with the blocks (one
// whole block is zeros).
var mixedImage = sync.OnceValue(func() []byte {
	return gzInput("r", 2<<20+333, "t", 1<<20+4000, "z", 2<<20+77, "r", 1<<20, "t", 900<<10, "z", 1<<20, "r", 200<<10)
})

// ourGzip compresses data with Writer in blocks of BlockSize, the format
// Reader inflates in parallel.
func ourGzip(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	return compress(t, data, level, BlockSize, nil)
}

// compress compresses data with Writer, on two goroutines, at level in
// blocks of blockSize bytes, feeding h unless it is nil.
func compress(t testing.TB, data []byte, level, blockSize int, h hash.Hash) []byte {
	t.Helper()
	var b bytes.Buffer
	z, err := NewWriter(context.Background(), &b, level, blockSize, 2, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := z.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// stdGzip compresses data at level as one deflate stream with Go's
// compress/gzip, flushing (sync flush, window kept) every flushEvery bytes if not 0.
func stdGzip(t testing.TB, data []byte, level, flushEvery int, hdr gzip.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Header = hdr
	for len(data) > 0 {
		k := len(data)
		if flushEvery > 0 {
			k = min(k, flushEvery)
		}
		if _, err := w.Write(data[:k]); err != nil {
			t.Fatal(err)
		}
		if flushEvery > 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		data = data[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sha1Sum(b []byte) []byte { s := sha1.Sum(b); return s[:] }

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// failWriter fails every write after n bytes.
type failWriter struct {
	n   int
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

// endless yields text forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return len(p), nil
}
