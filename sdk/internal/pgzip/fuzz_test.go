package pgzip

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"io"
	"testing"
)

// fuzzStream is a gzip stream built from fuzzed parameters, and the image
// it holds.
type fuzzStream struct {
	image []byte
	gz    []byte
}

// buildFuzzStream makes the image data ‖ zeros·64 KiB of zeros ‖ data
// and compresses it as members+1 members (at most 4) of about equal size.
// Member i is written by compress/gzip with a sync flush every 128 KiB
// when bit i of std is set, else by Writer in blocks of BlockSize bytes,
// or of 4 KiB + blockSize bytes when blockSize is not 0 (small blocks,
// which Reader cannot inflate in parallel). zeros is taken modulo 48 (so
// that the image can span several BlockSize blocks and hold whole blocks
// of zeros), or modulo 4 with small blocks. level (taken modulo 12) runs
// from HuffmanOnly (-2) to BestCompression (9). Writer's hash of each
// member it writes must be the member's SHA-1.
func buildFuzzStream(t *testing.T, data []byte, zeros, members, std uint8, blockSize uint16, level uint8) fuzzStream {
	t.Helper()
	bs, run := BlockSize, int(zeros%48)<<16
	if blockSize != 0 {
		// Every small block is a candidate that Reader joins to the
		// ones before, inflating them again: keep such images small.
		bs, run = 4<<10+int(blockSize), int(zeros%4)<<16
	}
	image := append(append(bytes.Clone(data), make([]byte, run)...), data...)
	lvl := int(level%12) - 2
	n := int(members%4) + 1
	var gz []byte
	for i := range n {
		piece := image[i*len(image)/n : (i+1)*len(image)/n]
		if std&(1<<i) != 0 {
			gz = append(gz, stdGzip(t, piece, lvl, 128<<10, gzip.Header{})...)
			continue
		}
		h := sha1.New()
		gz = append(gz, compress(t, piece, lvl, bs, h)...)
		if !bytes.Equal(h.Sum(nil), sha1Sum(piece)) {
			t.Fatalf("member %d: Writer's hash differs from the SHA-1 of its input", i)
		}
	}
	return fuzzStream{image: image, gz: gz}
}

// FuzzRoundTrip checks that streams mixing Writer's members and
// compress/gzip's come back whole through both compress/gzip and Reader,
// and that Reader's hash is the SHA-1 of the image. The seeds cover one
// member in one block, one member cut into BlockSize blocks (with a whole
// block of zeros), small blocks, several members, and members by
// compress/gzip.
func FuzzRoundTrip(f *testing.F) {
	text := gzInput("t", 3000)
	for _, seed := range []struct {
		data                []byte
		zeros, members, std uint8
		blockSize           uint16
		level               uint8
	}{
		{data: nil, level: 8},                                                      // empty, one member
		{data: text, level: 8},                                                     // one member, one block
		{data: noise(5000, 1), zeros: 20, level: 8},                                // one member, two blocks
		{data: noise(70000, 2), zeros: 40, level: 3},                               // three blocks, one all zeros
		{data: text, zeros: 2, blockSize: 1000, level: 11},                         // small blocks
		{data: []byte{0, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff}, zeros: 17, level: 2}, // stored blocks with markers
		{data: text, zeros: 30, members: 2, level: 8},                              // three members
		{data: nil, members: 3, level: 8},                                          // four empty members
		{data: noise(9000, 3), zeros: 20, members: 3, std: 0b1010, level: 1},       // members from both writers
		{data: text, zeros: 25, std: 1, level: 9},                                  // compress/gzip with sync flushes
	} {
		f.Add(seed.data, seed.zeros, seed.members, seed.std, seed.blockSize, seed.level)
	}
	f.Fuzz(func(t *testing.T, data []byte, zeros, members, std uint8, blockSize uint16, level uint8) {
		s := buildFuzzStream(t, data, zeros, members, std, blockSize, level)
		zr, err := gzip.NewReader(bytes.NewReader(s.gz))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, s.image) {
			t.Fatalf("compress/gzip: %d bytes, %v; want the %d bytes of the image", len(got), err, len(s.image))
		}
		h := sha1.New()
		z := NewReader(bytes.NewReader(s.gz), h, 2)
		got, err := io.ReadAll(z)
		z.Hashed()
		if err != nil || !bytes.Equal(got, s.image) {
			t.Fatalf("Reader: %d bytes, %v; want the %d bytes of the image", len(got), err, len(s.image))
		}
		t.Logf("%d segments in parallel, %d joined, %d in order", z.parallel, z.merged, z.sequential)
		if z.Err() != nil {
			t.Errorf("Reader recorded %v after a clean read", z.Err())
		}
		if !bytes.Equal(h.Sum(nil), sha1Sum(s.image)) {
			t.Error("Reader's hash differs from the SHA-1 of the image")
		}
	})
}

// FuzzReader feeds Reader arbitrary bytes: it must end (with the data or
// an error) and, when both it and compress/gzip accept the stream, give
// what compress/gzip gives, with the matching hash.
func FuzzReader(f *testing.F) {
	gz := ourGzip(f, gzInput("t", 5000, "z", BlockSize, "r", 3000), 6)
	for _, seed := range [][]byte{
		nil,
		gz,
		append(bytes.Clone(gz), gz...),
		gz[:len(gz)-3],
		append(bytes.Clone(gz), "garbage"...),
		ourGzip(f, []byte("tar stream text"), 1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h := sha1.New()
		z := NewReader(bytes.NewReader(in), h, 2)
		got, err := io.ReadAll(z)
		z.Hashed()
		if err != nil {
			return
		}
		if !bytes.Equal(h.Sum(nil), sha1Sum(got)) {
			t.Fatal("hash differs from the SHA-1 of what Read returned")
		}
		zr, err := gzip.NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		if want, err := io.ReadAll(zr); err == nil && !bytes.Equal(got, want) {
			t.Fatalf("Reader gives %d bytes, compress/gzip %d different ones", len(got), len(want))
		}
	})
}
