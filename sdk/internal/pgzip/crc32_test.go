package pgzip

import (
	"bytes"
	"hash/crc32"
	"testing"
)

func TestCRC32Combine(t *testing.T) {
	data := noise(5000, 51)
	for _, cut := range []int{0, 1, 7, 16, 100, 2500, 4999, 5000} {
		a, b := data[:cut], data[cut:]
		got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b)))
		if want := crc32.ChecksumIEEE(data); got != want {
			t.Errorf("cut at %d: combined %08x, want %08x", cut, got, want)
		}
	}
	// Long zero runs, as in sparse images.
	zeros := make([]byte, 3<<20)
	if got, want := crc32Combine(crc32.ChecksumIEEE(data), crc32.ChecksumIEEE(zeros), int64(len(zeros))), crc32.ChecksumIEEE(append(bytes.Clone(data), zeros...)); got != want {
		t.Errorf("with zeros: combined %08x, want %08x", got, want)
	}
}
