package bundle

// The bundling pipeline is a chain of io.WriteClosers, each in the manner of
// archive/tar and crypto/cipher: the first error is sticky and returned by
// every later Write and by Close, and Close flushes what the layer holds
// and must be checked.
//
//	image → tarSource (an io.Reader) → pgzip.Writer (parallel gzip, and
//	SHA-1 of the tar stream beside it) → cbcWriter (AES-128-CBC, PKCS #7) →
//	splitter (parts, SHA-1 each) → PartSink

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"sync"
)

const (
	tarBlock  = 512
	tarRecord = 20 * tarBlock // GNU tar's default blocking factor 20
	cbcChunk  = 64 << 10
)

// tarSize returns the length of the tar stream of an image of size bytes
// whose header takes hdr bytes.
func tarSize(hdr int, size int64) int64 {
	n := int64(hdr) + roundUp(size, tarBlock) + 2*tarBlock
	return roundUp(n, tarRecord)
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// tarHeader returns the header block(s) of the bundle's single tar entry:
// GNU format, regular file, mode 0644, owner and group 0/root.
func tarHeader(name string, size int64, mtime int64) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		Uname:    "root",
		Gname:    "root",
		ModTime:  unixTime(mtime),
		Format:   tar.FormatGNU,
	})
	if err != nil {
		return nil, fmt.Errorf("tar header: %w", err)
	}
	return b.Bytes(), nil
}

// tarSource reads as the tar stream of a single entry of a known size: the
// header, exactly size bytes of the image, then the data padding, the
// end-of-archive blocks and the padding to a whole 10240-byte record. It
// checks ctx before every read of the image, reports progress after it, and
// fails if the image has fewer or more than size bytes.
type tarSource struct {
	ctx      context.Context
	header   []byte
	image    io.Reader
	size     int64 // entry size
	n        int64 // image bytes read
	trailer  int64 // padding bytes still to produce after the image
	progress func(done, total int64)
	checked  bool // the image was checked to end after size bytes
}

func newTarSource(ctx context.Context, header []byte, image io.Reader, size int64, progress func(done, total int64)) *tarSource {
	total := tarSize(len(header), size)
	return &tarSource{
		ctx: ctx, header: header, image: sparseReader(image), size: size, progress: progress,
		trailer: total - int64(len(header)) - size,
	}
}

func (t *tarSource) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	if len(t.header) > 0 {
		k := copy(p, t.header)
		t.header = t.header[k:]
		n += k
		p = p[k:]
	}
	if len(p) > 0 && t.n < t.size {
		if err := t.ctx.Err(); err != nil {
			return n, err
		}
		want := min(int64(len(p)), t.size-t.n)
		k, err := io.ReadFull(t.image, p[:want])
		t.n += int64(k)
		n += k
		p = p[k:]
		if k > 0 && t.progress != nil {
			t.progress(t.n, t.size)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, fmt.Errorf("read image: it ended after %d of %d bytes: %w", t.n, t.size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return n, fmt.Errorf("read image: %w", err)
		}
	}
	if t.n == t.size && !t.checked {
		t.checked = true
		var one [1]byte
		k, err := io.ReadFull(t.image, one[:])
		if k > 0 {
			return n, fmt.Errorf("read image: it has more than Size (%d) bytes", t.size)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, fmt.Errorf("read image after its last byte: %w", err)
		}
	}
	if len(p) > 0 && t.n == t.size && t.trailer > 0 {
		k := int(min(int64(len(p)), t.trailer))
		clear(p[:k])
		t.trailer -= int64(k)
		n += k
	}
	if n == 0 && t.trailer == 0 && t.n == t.size {
		return 0, io.EOF
	}
	return n, nil
}

// cbcWriter encrypts with AES-CBC and, on Close, PKCS #7 padding.
type cbcWriter struct {
	w      io.Writer
	mode   cipher.BlockMode
	buf    []byte // pending plaintext, len < cbcChunk after each Write
	err    error
	closed bool
}

func newCBCWriter(w io.Writer, key, iv []byte) (*cbcWriter, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &cbcWriter{w: w, mode: cipher.NewCBCEncrypter(blk, iv), buf: make([]byte, 0, cbcChunk)}, nil
}

func (c *cbcWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, errors.New("cbc: write after close")
	}
	n := len(p)
	for len(p) > 0 {
		k := copy(c.buf[len(c.buf):cbcChunk], p)
		c.buf = c.buf[:len(c.buf)+k]
		p = p[k:]
		if len(c.buf) == cbcChunk {
			c.flush()
			if c.err != nil {
				return n - len(p), c.err
			}
		}
	}
	return n, nil
}

func (c *cbcWriter) flush() {
	c.mode.CryptBlocks(c.buf, c.buf)
	_, c.err = c.w.Write(c.buf)
	c.buf = c.buf[:0]
}

// Close pads the last block (PKCS #7: 1 to 16 bytes), encrypts and writes it.
func (c *cbcWriter) Close() error {
	if c.closed || c.err != nil {
		c.closed = true
		return c.err
	}
	c.closed = true
	pad := aes.BlockSize - len(c.buf)%aes.BlockSize
	for range pad {
		c.buf = append(c.buf, byte(pad))
	}
	c.flush()
	return c.err
}

// splitter cuts its input into parts of partSize bytes and hands each part,
// with its SHA-1, to the sink from a goroutine of its own, at most
// concurrency at once. It holds at most concurrency+1 buffers of partSize.
type splitter struct {
	ctx      context.Context
	cancel   context.CancelFunc
	sink     PartSink
	name     string
	partSize int
	// width returns the digit count to name part index with, given the
	// number of bytes the splitter has received so far.
	width func(index int, received int64) int

	initial  int // capacity of a new buffer; it grows up to partSize
	cur      []byte
	free     chan []byte // buffers ready for reuse
	buffers  int         // buffers allocated
	max      int         // buffers allowed
	received int64
	wg       sync.WaitGroup
	closed   bool

	mu    sync.Mutex
	err   error      // first error, sticky
	parts []PartInfo // by index, with provisional file names
}

func newSplitter(ctx context.Context, sink PartSink, name string, partSize, concurrency int, width func(int, int64) int) *splitter {
	ctx, cancel := context.WithCancel(ctx)
	return &splitter{
		ctx: ctx, cancel: cancel, sink: sink, name: name, partSize: partSize, width: width,
		free: make(chan []byte, concurrency+1), max: concurrency + 1,
	}
}

func (s *splitter) setErr(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		s.cancel()
	}
	s.mu.Unlock()
}

func (s *splitter) getErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *splitter) Write(p []byte) (int, error) {
	if err := s.getErr(); err != nil {
		return 0, err
	}
	if s.closed {
		return 0, errors.New("split: write after close")
	}
	n := len(p)
	for len(p) > 0 {
		if s.cur == nil {
			if err := s.buffer(); err != nil {
				return n - len(p), err
			}
		}
		room := s.partSize - len(s.cur)
		k := min(room, len(p))
		if len(s.cur)+k > cap(s.cur) {
			// Grow towards partSize so that small bundles stay small.
			grown := make([]byte, len(s.cur), min(s.partSize, max(2*cap(s.cur), len(s.cur)+k)))
			copy(grown, s.cur)
			s.cur = grown
		}
		s.cur = append(s.cur, p[:k]...)
		p = p[k:]
		s.received += int64(k)
		if len(s.cur) == s.partSize {
			s.dispatch()
		}
	}
	return n, s.getErr()
}

// buffer sets s.cur to an empty buffer, waiting for one to be free if all
// are in flight.
func (s *splitter) buffer() error {
	if s.buffers < s.max {
		select {
		case b := <-s.free:
			s.cur = b[:0]
		default:
			s.buffers++
			s.cur = make([]byte, 0, min(s.partSize, max(s.initial, 256<<10)))
		}
		return nil
	}
	select {
	case b := <-s.free:
		s.cur = b[:0]
		return nil
	case <-s.ctx.Done():
		if err := s.getErr(); err != nil {
			return err
		}
		return s.ctx.Err()
	}
}

// dispatch hands s.cur to the sink in a new goroutine.
func (s *splitter) dispatch() {
	data := s.cur
	s.cur = nil
	index := len(s.parts)
	name := s.name + ".part." + padIndex(index, s.width(index, s.received))
	s.mu.Lock()
	s.parts = append(s.parts, PartInfo{Index: index, Filename: name})
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { s.free <- data }()
		p := &Part{Index: index, Name: name, Data: data, SHA1: sha1.Sum(data)}
		s.mu.Lock()
		s.parts[index].Digest = p.SHA1
		s.mu.Unlock()
		if err := s.ctx.Err(); err != nil {
			s.setErr(err)
			return
		}
		if err := s.sink.WritePart(s.ctx, p); err != nil {
			s.setErr(&PartError{Index: index, Filename: name, Err: err})
		}
	}()
}

// Close hands the last, possibly short, part to the sink and waits for all
// parts to be stored.
func (s *splitter) Close() error {
	if !s.closed {
		s.closed = true
		if len(s.cur) > 0 && s.getErr() == nil {
			s.dispatch()
		}
	}
	s.wg.Wait()
	s.cancel()
	return s.getErr()
}

// abort stops handing out parts and waits for those in flight.
func (s *splitter) abort(err error) {
	s.setErr(err)
	s.closed = true
	s.wg.Wait()
}

// written returns the parts stored, or being stored, in index order.
func (s *splitter) written() []PartInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PartInfo(nil), s.parts...)
}

// size returns the number of bytes received.
func (s *splitter) size() int64 { return s.received }
