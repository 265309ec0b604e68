package pgzip

// CRC-32 (IEEE) combination, after zlib's crc32_combine: the CRC of the
// concatenation A‖B from crc(A), crc(B) and len(B), without the bytes. The
// compressor checksums its blocks independently and combines the results in
// order for the gzip trailer; the reader does the same with the segments it
// inflates in parallel.

// crcPoly is the reflected IEEE polynomial.
const crcPoly = 0xedb88320

// crcX2n[k] is x^(2^k) modulo the polynomial, in reflected form.
var crcX2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < len(t); k++ {
		p = crcMultModP(p, p)
		t[k] = p
	}
	return t
}()

// crcMultModP returns a·b modulo the polynomial (reflected: bit 31 is x^0).
func crcMultModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
}

// crcX8n returns x^(8·n) modulo the polynomial: the operator that appends n
// zero bytes.
func crcX8n(n int64) uint32 {
	p := uint32(1) << 31 // x^0
	k := 3               // 8·n = n·2^3
	for u := uint64(n); u != 0; u >>= 1 {
		if u&1 != 0 {
			p = crcMultModP(crcX2n[k&31], p)
		}
		k++
	}
	return p
}

// crc32Combine returns the CRC-32 of A‖B given crc1 = crc(A), crc2 =
// crc(B) and len2 = len(B).
func crc32Combine(crc1, crc2 uint32, len2 int64) uint32 {
	return crcMultModP(crcX8n(len2), crc1) ^ crc2
}
