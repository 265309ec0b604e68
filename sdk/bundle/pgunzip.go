package bundle

// The parallel decompressor. Bundles made by this package hold one gzip
// member whose deflate stream is cut every gzBlockSize bytes of input by a
// sync flush (an empty stored block, the bytes 00 00 ff ff), and every block
// is compressed without the window of the block before (see blockgzip.go).
// So from a point just after such a flush the stream can be inflated by a
// fresh decoder, independently of what comes before.
//
// The reader does not know where those points are: it guesses. A splitter
// cuts the compressed stream into segments just after occurrences of
// 00 00 ff ff (candidates), workers inflate the segments in parallel each
// with a fresh decoder, and a resolver takes the results in order and keeps
// only those it can prove right. By induction the start of the segment in
// hand is a true block boundary of the stream (the first one is the start
// of the deflate stream). A fresh decoder started at a true boundary
// follows the stream's own parse; a back reference to bytes before the
// segment fails (the decoder has no history), so when it succeeds its
// output is exactly what in-order inflating produces. To know that the
// segment's end is a block boundary too, the worker appends an empty final
// block (03 00) after the segment's bytes: the decode must end there
// cleanly, having consumed every byte, and produce a whole number of
// gzBlockSize blocks. A segment that fails any of this is retried in order
// with the real 32 KiB history and, if need be, joined with the segments
// after it; if that does not work either, the rest of the stream is
// inflated in order, like any gzip stream (the format Amazon's tools write,
// or several members). The trailer's CRC-32 and length are checked against
// the output either way, and the caller checks the SHA-1 of it all.
//
// Output is handed out in order, to Read and to a hash fed by a goroutine
// of its own. Memory is bounded by the number of segments in flight.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

const (
	// pgzInTarget: a segment is cut at the first candidate once it holds
	// this many compressed bytes, or after pgzMaxBlocks candidates.
	pgzInTarget  = 128 << 10
	pgzMaxBlocks = 1
	// pgzInMax bounds a segment's compressed bytes: one incompressible
	// block and its stored blocks' headers, with room to spare.
	pgzInMax = gzBlockSize + 64<<10
	// pgzOutMax bounds a segment's output.
	pgzOutMax  = pgzMaxBlocks * gzBlockSize
	pgzReadMax = 64 << 10
	// A segment that fails is joined with those after it, in order, until
	// the joined segments hold pgzJoinIn compressed bytes or inflate to
	// more than pgzJoinOut.
	pgzJoinIn  = 2 * pgzInMax
	pgzJoinOut = 4 * gzBlockSize
	pgzSeqOut  = 1 << 20 // output chunks when inflating in order
	pgzSeqBufs = 3
	windowSize = 32 << 10
)

var (
	syncMarker = []byte{0, 0, 0xff, 0xff}
	// emptyFinalBlock is a final block with fixed Huffman codes holding
	// only the end-of-block code.
	emptyFinalBlock = []byte{0x03, 0x00}
)

// pgzSeg is a segment of the compressed stream.
type pgzSeg struct {
	in    []byte // compressed bytes; cap ≥ pgzInMax+len(emptyFinalBlock)
	final bool   // the input ends after in
	err   error  // error of the input after in (not io.EOF)
	spec  bool   // given to a worker
	done  chan struct{}

	// Set by the worker.
	out []byte // cap pgzOutMax
	n   int
	crc uint32
	ok  bool

	chunk pgzChunk
}

type zeroSeg struct {
	in  []byte
	crc uint32
}

// pgzChunk is output handed to the hasher and to Read; release is called
// when both are done with it.
type pgzChunk struct {
	data    []byte
	err     error // terminal: io.EOF or the stream's error, no data
	refs    atomic.Int32
	release func()
}

func (c *pgzChunk) done() {
	if c.refs.Add(-1) == 0 && c.release != nil {
		c.release()
	}
}

// pgzReader is an io.Reader of the decompressed stream that also feeds h.
type pgzReader struct {
	src     io.Reader
	h       hash.Hash
	workers int
	nsegs   int

	free   chan *pgzSeg
	jobs   chan *pgzSeg
	order  chan *pgzSeg
	hashq  chan *pgzChunk
	ready  chan *pgzChunk
	seqBuf chan *pgzChunk
	quit   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	inSeq  atomic.Bool // the resolver inflates in order: stop guessing
	// zeros holds the bytes of a segment that inflated to one block of
	// zeros: the same bytes inflate to the same block again.
	zeros  atomic.Pointer[zeroSeg]
	nalloc int // segments allocated (splitter only)

	// Counters, for tests and diagnostics; read after stop.
	parallel, merged, sequential int
	zeroHits                     atomic.Int64

	err error // the stream's error, set by the resolver (read after stop)

	cur  *pgzChunk
	off  int
	rerr error // sticky, for Read
}

func newPgzReader(src io.Reader, h hash.Hash, workers int) *pgzReader {
	workers = max(workers, 1)
	n := 2*workers + 3
	z := &pgzReader{
		src: src, h: h, workers: workers, nsegs: n,
		free:   make(chan *pgzSeg, n),
		jobs:   make(chan *pgzSeg, n),
		order:  make(chan *pgzSeg, n),
		hashq:  make(chan *pgzChunk, n+pgzSeqBufs+2),
		ready:  make(chan *pgzChunk, 2),
		seqBuf: make(chan *pgzChunk, pgzSeqBufs),
		quit:   make(chan struct{}),
	}
	z.wg.Add(3 + workers)
	go z.split()
	for range workers {
		go z.work()
	}
	go z.resolve()
	go z.hash()
	return z
}

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// getSeg returns an empty segment, nil after stop.
func (z *pgzReader) getSeg() *pgzSeg {
	var s *pgzSeg
	select {
	case s = <-z.free:
	default:
		if z.nalloc < z.nsegs {
			z.nalloc++
			s = &pgzSeg{in: make([]byte, 0, pgzInMax+len(emptyFinalBlock))}
			s.chunk.release = func() { z.free <- s }
		} else {
			select {
			case s = <-z.free:
			case <-z.quit:
				return nil
			}
		}
	}
	s.in, s.final, s.err, s.spec, s.ok, s.n = s.in[:0], false, nil, false, false, 0
	s.done = make(chan struct{})
	return s
}

// split reads the gzip header, then cuts the rest of the input into
// segments and hands them to the workers and to the resolver.
func (z *pgzReader) split() {
	defer z.wg.Done()
	defer close(z.order)
	defer close(z.jobs)
	br := bufio.NewReaderSize(z.src, pgzReadMax)
	hdrErr := readGzipHeader(br)
	seg := z.getSeg()
	if seg == nil {
		return
	}
	if hdrErr != nil {
		seg.err = hdrErr
		close(seg.done)
		z.order <- seg
		return
	}
	guess := true
	scanned := 0 // bytes of seg.in searched for candidates
	blocks, last := 0, 0
	for {
		if len(seg.in) == pgzInMax {
			// No candidate where one was due: cut at the last one, or
			// stop guessing.
			cut := len(seg.in)
			if guess && last > 0 {
				cut = last
			} else {
				guess = false
			}
			if seg = z.dispatch(seg, cut, guess); seg == nil {
				return
			}
			scanned, blocks, last = 0, 0, 0
			continue
		}
		n, err := br.Read(seg.in[len(seg.in):min(len(seg.in)+pgzReadMax, pgzInMax)])
		seg.in = seg.in[:len(seg.in)+n]
		if err != nil {
			if err != io.EOF {
				seg.err = err
			}
			seg.final = true
			z.dispatch(seg, len(seg.in), guess && err == io.EOF)
			return
		}
		if guess && z.inSeq.Load() {
			guess = false
		}
		for guess {
			i := bytes.Index(seg.in[max(scanned-len(syncMarker)+1, 0):], syncMarker)
			if i < 0 {
				scanned = len(seg.in)
				break
			}
			e := max(scanned-len(syncMarker)+1, 0) + i + len(syncMarker)
			scanned = e
			// A sync flush is an empty stored block: its three header
			// bits and the padding to the byte boundary are zeros, so
			// the byte before the marker has its top three bits clear.
			if e < len(syncMarker)+1 || seg.in[e-len(syncMarker)-1]&0xe0 != 0 {
				continue
			}
			blocks++
			last = e
			if blocks < pgzMaxBlocks && e < pgzInTarget {
				continue
			}
			if seg = z.dispatch(seg, e, true); seg == nil {
				return
			}
			scanned, blocks, last = 0, 0, 0
		}
	}
}

// dispatch sends seg.in[:cut] on its way and returns a new segment holding
// the bytes after cut (nil after stop, or if seg is final).
func (z *pgzReader) dispatch(seg *pgzSeg, cut int, guess bool) *pgzSeg {
	var next *pgzSeg
	if !seg.final {
		if next = z.getSeg(); next == nil {
			return nil
		}
		next.in = append(next.in, seg.in[cut:]...)
		seg.in = seg.in[:cut]
	}
	seg.spec = guess && seg.err == nil && !z.inSeq.Load()
	if seg.spec {
		z.jobs <- seg
	} else {
		close(seg.done)
	}
	z.order <- seg
	return next
}

// readGzipHeader reads a gzip member header (RFC 1952).
func readGzipHeader(br *bufio.Reader) error {
	var h [10]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || h[3]&0xe0 != 0 {
		return gzip.ErrHeader
	}
	flg := h[3]
	if flg&0x04 != 0 { // FEXTRA
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return noEOF(err)
		}
		if _, err := br.Discard(int(binary.LittleEndian.Uint16(l[:]))); err != nil {
			return noEOF(err)
		}
	}
	for _, f := range []byte{0x08, 0x10} { // FNAME, FCOMMENT
		if flg&f != 0 {
			if _, err := br.ReadSlice(0); err != nil {
				if err == bufio.ErrBufferFull {
					// Longer than the buffer: read on.
					for err == bufio.ErrBufferFull {
						_, err = br.ReadSlice(0)
					}
				}
				if err != nil {
					return noEOF(err)
				}
			}
		}
	}
	if flg&0x02 != 0 { // FHCRC
		if _, err := br.Discard(2); err != nil {
			return noEOF(err)
		}
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// work inflates segments speculatively.
func (z *pgzReader) work() {
	defer z.wg.Done()
	var fr io.ReadCloser
	var rd bytes.Reader
	for s := range z.jobs {
		select {
		case <-z.quit:
		default:
			if !z.inSeq.Load() {
				if s.out == nil {
					s.out = make([]byte, pgzOutMax)
				}
				if zs := z.zeros.Load(); zs != nil && !s.final && bytes.Equal(s.in, zs.in) {
					s.n, s.ok, s.crc = gzBlockSize, true, zs.crc
					clear(s.out[:s.n])
					z.zeroHits.Add(1)
					break
				}
				s.n, s.ok = inflateSegment(&fr, &rd, s.in, s.final, nil, s.out)
				if s.ok {
					s.crc = crc32.ChecksumIEEE(s.out[:s.n])
					if !s.final && s.n == gzBlockSize && z.zeros.Load() == nil && isZero(s.out[:s.n]) {
						z.zeros.Store(&zeroSeg{in: bytes.Clone(s.in), crc: s.crc})
					}
				}
			}
		}
		close(s.done)
	}
}

// inflateSegment inflates in (which has room for emptyFinalBlock after
// it unless final) into out with the given history, and reports whether
// in is one or more whole blocks of our format: the decoder ends cleanly
// having read every byte (the final segment: all but the 8-byte trailer),
// and, unless final, produced a whole number of gzBlockSize blocks.
func inflateSegment(fr *io.ReadCloser, rd *bytes.Reader, in []byte, final bool, dict, out []byte) (int, bool) {
	if !final {
		in = append(in, emptyFinalBlock...)
	}
	rd.Reset(in)
	if *fr == nil {
		*fr = flate.NewReaderDict(rd, dict)
	} else if err := (*fr).(flate.Resetter).Reset(rd, dict); err != nil {
		return 0, false
	}
	n := 0
	for {
		if n == len(out) {
			// Full: the stream must end here.
			var one [1]byte
			m, err := (*fr).Read(one[:])
			if m != 0 || err != io.EOF {
				return n, false
			}
			break
		}
		m, err := (*fr).Read(out[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, false
		}
	}
	if final {
		return n, rd.Len() == 8
	}
	return n, rd.Len() == 0 && n > 0 && n%gzBlockSize == 0
}

// resolve takes the segments in order, emits the output it can prove
// right, and falls back to inflating in order.
func (z *pgzReader) resolve() {
	defer z.wg.Done()
	defer close(z.hashq)
	var (
		hist = make([]byte, 0, 2*windowSize)
		crc  uint32
		size int64
		fr   io.ReadCloser
		rd   bytes.Reader
	)
	// The bookkeeping is done before the chunk is handed out: once
	// released, its buffer may be reused.
	emit := func(c *pgzChunk, data []byte) bool {
		crc = crc32.Update(crc, crc32.IEEETable, data)
		size += int64(len(data))
		if len(data) >= windowSize {
			hist = append(hist[:0], data[len(data)-windowSize:]...)
		} else {
			hist = append(hist, data...)
			if len(hist) > windowSize {
				hist = append(hist[:0], hist[len(hist)-windowSize:]...)
			}
		}
		c.data, c.err = data, nil
		c.refs.Store(2)
		z.hashq <- c
		select {
		case z.ready <- c:
			return true
		case <-z.quit:
			return false
		}
	}
	// emitSeg is emit for a speculatively inflated segment, whose CRC is
	// known.
	emitSeg := func(s *pgzSeg) bool {
		crc = crc32Combine(crc, s.crc, int64(s.n))
		size += int64(s.n)
		hist = append(hist[:0], s.out[max(s.n-windowSize, 0):s.n]...)
		c := &s.chunk
		c.data, c.err = s.out[:s.n], nil
		c.refs.Store(2)
		z.hashq <- c
		select {
		case z.ready <- c:
			return true
		case <-z.quit:
			return false
		}
	}
	finish := func(err error) {
		if err == nil {
			err = io.EOF
		} else {
			z.err = err
		}
		select {
		case z.ready <- &pgzChunk{err: err}:
		case <-z.quit:
		}
	}
	next := z.nextSeg
	trailer := func(t []byte) error {
		if binary.LittleEndian.Uint32(t) != crc || binary.LittleEndian.Uint32(t[4:]) != uint32(size) {
			return gzip.ErrChecksum
		}
		return nil
	}
	for {
		s := next()
		if s == nil {
			finish(io.ErrUnexpectedEOF) // stopped
			return
		}
		if s.ok {
			final := s.final
			var t [8]byte
			if final {
				copy(t[:], s.in[len(s.in)-8:])
			}
			if !emitSeg(s) {
				return
			}
			z.parallel++
			if final {
				finish(trailer(t[:]))
				return
			}
			continue
		}
		// In order, with the history, joining the segments after it when
		// the segment ends inside a block (a false candidate).
		// The segments' bytes are copied, and the segments released, so
		// that the splitter can go on.
		joined := append([]byte(nil), s.in...)
		final, serr := s.final, s.err
		s.chunk.release()
		var out []byte
		ok := false
		for serr == nil {
			if out == nil {
				out = make([]byte, pgzJoinOut)
			}
			var n int
			if n, ok = inflateSegment(&fr, &rd, joined, final, hist, out); ok {
				if !emit(&pgzChunk{}, out[:n]) {
					return
				}
				z.merged++
				if final {
					finish(trailer(joined[len(joined)-8:]))
					return
				}
				break
			}
			if final || len(joined) > pgzJoinIn {
				break
			}
			if s = next(); s == nil {
				finish(io.ErrUnexpectedEOF) // stopped
				return
			}
			joined = append(joined, s.in...)
			final, serr = s.final, s.err
			s.chunk.release()
		}
		if ok {
			continue
		}
		z.sequential++
		z.inSeq.Store(true)
		finish(z.inOrder(&segStream{z: z, head: joined, final: final, err: serr}, hist, crc, size))
		return
	}
}

// inOrder inflates the rest of the stream in order, starting with segs,
// like a gzip reader reading several members. crc and size are those of
// the first member's output so far, hist its last 32 KiB.
func (z *pgzReader) inOrder(sr *segStream, hist []byte, crc uint32, size int64) error {
	defer sr.close()
	br := bufio.NewReaderSize(sr, pgzReadMax)
	fr := flate.NewReaderDict(br, hist)
	nbuf := 0
	emit := func(r io.Reader) error {
		for {
			var c *pgzChunk
			select {
			case c = <-z.seqBuf:
			default:
				if nbuf < pgzSeqBufs {
					nbuf++
					c = &pgzChunk{data: make([]byte, pgzSeqOut)}
					c.release = func() { z.seqBuf <- c }
				} else {
					select {
					case c = <-z.seqBuf:
					case <-z.quit:
						return errors.New("bundle: reader stopped")
					}
				}
			}
			n, err := io.ReadFull(r, c.data[:cap(c.data)])
			if n > 0 {
				crc = crc32.Update(crc, crc32.IEEETable, c.data[:n])
				size += int64(n)
				c.data = c.data[:n]
				c.refs.Store(2)
				z.hashq <- c
				select {
				case z.ready <- c:
				case <-z.quit:
					return errors.New("bundle: reader stopped")
				}
			} else {
				c.release()
			}
			switch err {
			case nil:
			case io.ErrUnexpectedEOF:
				if n > 0 {
					return nil // io.ReadFull: the reader returned io.EOF
				}
				return err
			case io.EOF:
				return nil
			default:
				return err
			}
		}
	}
	// io.ReadFull cannot tell the decoder's io.EOF after a short read from
	// its io.ErrUnexpectedEOF: eofReader does.
	er := &eofReader{r: fr}
	if err := emit(er); err != nil {
		return err
	}
	if !er.eof {
		return io.ErrUnexpectedEOF
	}
	var t [8]byte
	if _, err := io.ReadFull(br, t[:]); err != nil {
		return noEOF(err)
	}
	if binary.LittleEndian.Uint32(t[:]) != crc || binary.LittleEndian.Uint32(t[4:]) != uint32(size) {
		return gzip.ErrChecksum
	}
	if _, err := br.Peek(1); err == io.EOF {
		return nil
	} else if err != nil {
		return err
	}
	// More members follow.
	gz, err := gzip.NewReader(br)
	if err != nil {
		return err
	}
	er = &eofReader{r: gz}
	if err := emit(er); err != nil {
		return err
	}
	if !er.eof {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// eofReader records whether its reader returned io.EOF.
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

// segStream reads head, then (unless final or err is set) the bytes of the
// segments the splitter sends.
type segStream struct {
	z     *pgzReader
	head  []byte
	final bool  // the input ends after head
	err   error // error of the input after head
	cur   *pgzSeg
}

func (s *segStream) Read(p []byte) (int, error) {
	for len(s.head) == 0 {
		if s.cur != nil {
			s.cur.chunk.release()
			s.cur = nil
		}
		if s.err != nil {
			return 0, s.err
		}
		if s.final {
			return 0, io.EOF
		}
		if s.cur = s.z.nextSeg(); s.cur == nil {
			return 0, errors.New("bundle: reader stopped")
		}
		s.head, s.final, s.err = s.cur.in, s.cur.final, s.cur.err
	}
	n := copy(p, s.head)
	s.head = s.head[n:]
	return n, nil
}

func (s *segStream) close() {
	if s.cur != nil {
		s.cur.chunk.release()
		s.cur = nil
	}
}

// nextSeg is the next segment in order once its worker is done, nil after
// stop.
func (z *pgzReader) nextSeg() *pgzSeg {
	select {
	case s, ok := <-z.order:
		if !ok {
			return nil
		}
		select {
		case <-s.done:
			return s
		case <-z.quit:
			return nil
		}
	case <-z.quit:
		return nil
	}
}

// hash feeds h the output in order.
func (z *pgzReader) hash() {
	defer z.wg.Done()
	for c := range z.hashq {
		z.h.Write(c.data)
		c.done()
	}
}

func (z *pgzReader) Read(p []byte) (int, error) {
	select {
	case <-z.quit:
		if z.rerr == nil {
			z.rerr = io.ErrClosedPipe
		}
		return 0, z.rerr
	default:
	}
	for z.cur == nil || z.off == len(z.cur.data) {
		if z.cur != nil {
			z.cur.done()
			z.cur = nil
		}
		if z.rerr != nil {
			return 0, z.rerr
		}
		var c *pgzChunk
		select {
		case c = <-z.ready:
		case <-z.quit:
			z.rerr = io.ErrClosedPipe
			return 0, z.rerr
		}
		if c.err != nil {
			z.rerr = c.err
			return 0, z.rerr
		}
		z.cur, z.off = c, 0
	}
	n := copy(p, z.cur.data[z.off:])
	z.off += n
	return n, nil
}

// hashed waits until every byte of output is in the hash. Call it after
// Read returned the final error.
func (z *pgzReader) hashed() { z.stop() }

// stop ends the goroutines and waits for them; after it the source is not
// read any more.
func (z *pgzReader) stop() {
	z.once.Do(func() { close(z.quit) })
	z.wg.Wait()
}
