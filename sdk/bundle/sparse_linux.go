package bundle

import (
	"errors"
	"io"
	"math"
	"os"
	"syscall"
)

// Linux lseek whence values for finding holes.
const (
	seekData = 3
	seekHole = 4
)

// sparseFile reads a regular file sequentially from where its offset
// stood, but does not read its holes: it asks the file system where data
// is (lseek SEEK_DATA / SEEK_HOLE, as GNU tar's --sparse does) and returns
// zeros for the holes without a system call. Reading a hole costs the
// kernel as much as reading data (it allocates and zeroes page-cache pages),
// so this matters for sparse images. It uses ReadAt and leaves the file's
// offset undefined.
type sparseFile struct {
	f       *os.File
	off     int64
	holeEnd int64 // [off, holeEnd) is known to be a hole
	dataEnd int64 // [off, dataEnd) is known to be data
	seek    bool  // the file system answers SEEK_DATA
	read    int64 // bytes read from the file (tests)
}

// sparseReader returns r itself, or a sparseFile reading it when r is a
// regular file.
func sparseReader(r io.Reader) io.Reader {
	f, ok := r.(*os.File)
	if !ok {
		return r
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return r
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return r
	}
	return &sparseFile{f: f, off: off, holeEnd: off, dataEnd: off, seek: true}
}

func (s *sparseFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.off >= s.holeEnd && s.off >= s.dataEnd {
		s.locate()
	}
	if s.off < s.holeEnd {
		k := int(min(int64(len(p)), s.holeEnd-s.off))
		clear(p[:k])
		s.off += int64(k)
		return k, nil
	}
	want := p[:min(int64(len(p)), s.dataEnd-s.off)]
	n, err := s.f.ReadAt(want, s.off)
	s.off += int64(n)
	s.read += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// locate finds the extent at s.off: a hole up to the next data, or data up
// to the next hole. On any surprise it falls back to reading everything.
func (s *sparseFile) locate() {
	s.holeEnd, s.dataEnd = s.off, math.MaxInt64
	if !s.seek {
		return
	}
	d, err := s.f.Seek(s.off, seekData)
	if errors.Is(err, syscall.ENXIO) {
		// No data from off on: a hole to the end of the file, or off is
		// at or past the end.
		if st, err := s.f.Stat(); err == nil && st.Size() > s.off {
			s.holeEnd = st.Size()
		}
		return
	}
	if err != nil || d < s.off {
		s.seek = false
		return
	}
	if d > s.off {
		s.holeEnd, s.dataEnd = d, d
		return
	}
	h, err := s.f.Seek(s.off, seekHole)
	if err != nil || h <= s.off {
		s.seek = false
		return
	}
	s.dataEnd = h
}
