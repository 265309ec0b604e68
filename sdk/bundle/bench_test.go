package bundle

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/pgzip"
)

// discardSink drops parts, to measure bundling without storage.
type discardSink struct{}

func (discardSink) WritePart(context.Context, *Part) error           { return nil }
func (discardSink) RenamePart(context.Context, string, string) error { return nil }

// benchImages are 64 MiB images of different compressibility.
var benchImages = sync.OnceValue(func() map[string][]byte {
	const size = 64 << 20
	text := bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit 0123456789\n"), size/67+1)[:size]
	mixed := make([]byte, size)
	// A file-system-like mix: a quarter random, a quarter text, half zeros.
	copy(mixed, randomBytes(size/4, 1))
	copy(mixed[size/4:], text[:size/4])
	return map[string][]byte{
		"random": randomBytes(size, 2),
		"zeros":  make([]byte, size),
		"text":   text,
		"mixed":  mixed,
	}
})

func BenchmarkBundle(b *testing.B) {
	k := loadKeys(b)
	for _, name := range []string{"mixed", "zeros", "random", "text"} {
		img := benchImages()[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(img)))
			b.ReportAllocs()
			for b.Loop() {
				in := bundleInput(k, img, discardSink{})
				if _, err := Bundle(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnbundle(b *testing.B) {
	k := loadKeys(b)
	img := benchImages()["mixed"]
	sink := newMemSink()
	out, err := Bundle(context.Background(), bundleInput(k, img, sink))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unbundle(context.Background(), &UnbundleInput{Manifest: out.ManifestBytes, Source: sink, UserKey: k.userKey}, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// The hot paths of the pipeline, one layer at a time, over the mixed image.

func BenchmarkLayerSHA1(b *testing.B) {
	img := benchImages()["mixed"]
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		sha1.Sum(img)
	}
}

func BenchmarkLayerGzip(b *testing.B) {
	img := benchImages()["mixed"]
	for _, level := range []int{1, 6, 9} {
		b.Run("level"+string(rune('0'+level)), func(b *testing.B) {
			b.SetBytes(int64(len(img)))
			b.ReportAllocs()
			for b.Loop() {
				zw, _ := gzip.NewWriterLevel(io.Discard, level)
				zw.Write(img)
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLayerCBC(b *testing.B) {
	img := benchImages()["random"]
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		w, err := newCBCWriter(io.Discard, make([]byte, 16), make([]byte, 16))
		if err != nil {
			b.Fatal(err)
		}
		for p := img; len(p) > 0; p = p[min(len(p), 32<<10):] {
			w.Write(p[:min(len(p), 32<<10)])
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLayerSplit(b *testing.B) {
	img := benchImages()["random"]
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		s := newSplitter(context.Background(), discardSink{}, "x", PartSize, 2, func(int, int64) int { return 1 })
		for p := img; len(p) > 0; p = p[min(len(p), 64<<10):] {
			s.Write(p[:min(len(p), 64<<10)])
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignManifest(b *testing.B) {
	k := loadKeys(b)
	m := sampleManifest()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Sign(k.userKey); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLayerTar(b *testing.B) {
	img := benchImages()["mixed"]
	hdr, err := tarHeader("img", int64(len(img)), 0)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, pgzip.BlockSize)
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		ts := newTarSource(context.Background(), hdr, bytes.NewReader(img), int64(len(img)), nil)
		if _, err := io.CopyBuffer(io.Discard, ts, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLayerBlockGzip is the parallel compressor over the images of
// BenchmarkBundle, with one worker and with one per CPU.
func BenchmarkLayerBlockGzip(b *testing.B) {
	for _, name := range []string{"mixed", "zeros", "text"} {
		img := benchImages()[name]
		for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/workers=%d", name, workers), func(b *testing.B) {
				b.SetBytes(int64(len(img)))
				b.ReportAllocs()
				for b.Loop() {
					z, err := pgzip.NewWriter(context.Background(), io.Discard, 6, pgzip.BlockSize, workers, sha1.New())
					if err != nil {
						b.Fatal(err)
					}
					if _, err := z.ReadFrom(bytes.NewReader(img)); err != nil {
						b.Fatal(err)
					}
					if err := z.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
