package pgzip

// The parallel decompressor. Streams made by Writer with blocks of
// BlockSize bytes hold one gzip member whose deflate stream is cut every
// BlockSize bytes of input by a sync flush (an empty stored block, the
// bytes 00 00 ff ff), and every block is compressed without the window of
// the block before (see writer.go). So from a point just after such a
// flush the stream can be inflated by a fresh decoder, independently of
// what comes before.
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
// BlockSize blocks. A segment that fails any of this is retried in order
// with the real 32 KiB history and, if need be, joined with the segments
// after it; if that does not work either, the rest of the stream is
// inflated in order, like any gzip stream (the format Amazon's tools write,
// or several members). The trailer's CRC-32 and length are checked against
// the output either way, and the caller checks its hash of it all.
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
	pgzInMax = BlockSize + 64<<10
	// pgzOutMax bounds a segment's output.
	pgzOutMax  = pgzMaxBlocks * BlockSize
	pgzReadMax = 64 << 10
	// A segment that fails is joined with those after it, in order, until
	// the joined segments hold pgzJoinIn compressed bytes or inflate to
	// more than pgzJoinOut.
	pgzJoinIn  = 2 * pgzInMax
	pgzJoinOut = 4 * BlockSize
	pgzSeqOut  = 1 << 20 // output chunks when inflating in order
	pgzSeqBufs = 3
	windowSize = 32 << 10
)

var (
	syncMarker = []byte{0, 0, 0xff, 0xff}
	// emptyFinalBlock is a final block with fixed Huffman codes holding
	// only the end-of-block code.
	emptyFinalBlock = []byte{0x03, 0x00}
	// errStopped ends inflating in order when the reader is stopped
	// under it.
	errStopped = errors.New("bundle: reader stopped")
)

// segment is a segment of the compressed stream.
type segment struct {
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

	chunk chunk
}

// zeroSeg is the compressed form of a block of zeros and its checksum.
type zeroSeg struct {
	in  []byte
	crc uint32
}

// chunk is output handed to the hasher and to Read; release is called
// when both are done with it.
type chunk struct {
	data    []byte
	err     error // terminal: io.EOF or the stream's error, no data
	refs    atomic.Int32
	release func()
}

// done drops one user of the chunk, releasing it after the last.
func (c *chunk) done() {
	if c.refs.Add(-1) == 0 && c.release != nil {
		c.release()
	}
}

// Reader is an io.Reader of a decompressed gzip stream that also feeds a
// hash. It runs goroutines of its own until Stop (or Hashed) returns; Read
// is not safe for concurrent use.
type Reader struct {
	src     io.Reader
	h       hash.Hash
	workers int
	nsegs   int

	free   chan *segment
	jobs   chan *segment
	order  chan *segment
	hashq  chan *chunk
	ready  chan *chunk
	seqBuf chan *chunk
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

	cur  *chunk
	off  int
	rerr error // sticky, for Read
}

// NewReader returns a Reader of the gzip stream src that feeds h the
// decompressed bytes, in order. workers is the number of inflating
// goroutines (at least 1). The caller must call Stop or Hashed.
func NewReader(src io.Reader, h hash.Hash, workers int) *Reader {
	workers = max(workers, 1)
	n := 2*workers + 3
	z := &Reader{
		src: src, h: h, workers: workers, nsegs: n,
		free:   make(chan *segment, n),
		jobs:   make(chan *segment, n),
		order:  make(chan *segment, n),
		hashq:  make(chan *chunk, n+pgzSeqBufs+2),
		ready:  make(chan *chunk, 2),
		seqBuf: make(chan *chunk, pgzSeqBufs),
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

// getSeg returns an empty segment, nil after stop.
func (z *Reader) getSeg() *segment {
	var s *segment
	select {
	case s = <-z.free:
	default:
		if z.nalloc < z.nsegs {
			z.nalloc++
			s = &segment{in: make([]byte, 0, pgzInMax+len(emptyFinalBlock))}
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
func (z *Reader) split() {
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
func (z *Reader) dispatch(seg *segment, cut int, guess bool) *segment {
	var next *segment
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

// noEOF turns io.EOF, which inside a gzip member means a truncated stream,
// into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// work inflates segments speculatively.
func (z *Reader) work() {
	defer z.wg.Done()
	var fr io.ReadCloser
	var rd bytes.Reader
	for s := range z.jobs {
		select {
		case <-z.quit:
		default:
			if !z.inSeq.Load() {
				z.inflateSpeculatively(s, &fr, &rd)
			}
		}
		close(s.done)
	}
}

// inflateSpeculatively inflates s with no history, with the worker's
// decoder fr reading from rd, and records whether s proved to be whole
// blocks. A segment with the bytes of a known block of zeros is not
// inflated again.
func (z *Reader) inflateSpeculatively(s *segment, fr *io.ReadCloser, rd *bytes.Reader) {
	if s.out == nil {
		s.out = make([]byte, pgzOutMax)
	}
	if zs := z.zeros.Load(); zs != nil && !s.final && bytes.Equal(s.in, zs.in) {
		s.n, s.ok, s.crc = BlockSize, true, zs.crc
		clear(s.out[:s.n])
		z.zeroHits.Add(1)
		return
	}
	s.n, s.ok = inflateSegment(fr, rd, s.in, s.final, nil, s.out)
	if s.ok {
		s.crc = crc32.ChecksumIEEE(s.out[:s.n])
		if !s.final && s.n == BlockSize && z.zeros.Load() == nil && IsZero(s.out[:s.n]) {
			z.zeros.Store(&zeroSeg{in: bytes.Clone(s.in), crc: s.crc})
		}
	}
}

// inflateSegment inflates in (which has room for emptyFinalBlock after
// it unless final) into out with the given history, and reports whether
// in is one or more whole blocks of our format: the decoder ends cleanly
// having read every byte (the final segment: all but the 8-byte trailer),
// and, unless final, produced a whole number of BlockSize blocks.
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
	return n, rd.Len() == 0 && n > 0 && n%BlockSize == 0
}

// resolver is the state of the goroutine that takes the segments in
// order: the first member's CRC-32 and length so far, the last 32 KiB of
// its output (the history a segment inflated in order needs), and a
// decoder of its own.
type resolver struct {
	z    *Reader
	hist []byte
	crc  uint32
	size int64
	fr   io.ReadCloser
	rd   bytes.Reader
	nbuf int // chunks allocated for inflating in order
}

// resolve takes the segments in order, emits the output it can prove
// right, and falls back to inflating in order.
func (z *Reader) resolve() {
	defer z.wg.Done()
	defer close(z.hashq)
	r := &resolver{z: z, hist: make([]byte, 0, 2*windowSize)}
	for {
		s := z.nextSeg()
		if s == nil {
			z.finish(io.ErrUnexpectedEOF) // stopped
			return
		}
		take := r.rejoin
		if s.ok {
			take = r.accept
		}
		if !take(s) {
			return
		}
	}
}

// accept emits a segment a worker inflated and proved right and, when it
// is the last, checks the trailer. It reports whether more segments are to
// be taken.
func (r *resolver) accept(s *segment) bool {
	final := s.final
	var t [8]byte
	if final {
		// Copied first: once emitted, the segment may be reused.
		copy(t[:], s.in[len(s.in)-8:])
	}
	if !r.emitSeg(s) {
		return false
	}
	r.z.parallel++
	if final {
		r.z.finish(r.checkTrailer(t[:]))
		return false
	}
	return true
}

// rejoin inflates a segment the worker could not prove right in order,
// with the history, joining the segments after it while the segment seems
// to end inside a block (a false candidate). When that fails too, the
// rest of the stream is inflated in order. It reports whether more
// segments are to be taken.
func (r *resolver) rejoin(s *segment) bool {
	// The segments' bytes are copied, and the segments released, so that
	// the splitter can go on.
	joined := append([]byte(nil), s.in...)
	final, serr := s.final, s.err
	s.chunk.release()
	var out []byte
	for serr == nil {
		if out == nil {
			out = make([]byte, pgzJoinOut)
		}
		if n, ok := inflateSegment(&r.fr, &r.rd, joined, final, r.hist, out); ok {
			if !r.emit(&chunk{}, out[:n]) {
				return false
			}
			r.z.merged++
			if final {
				r.z.finish(r.checkTrailer(joined[len(joined)-8:]))
				return false
			}
			return true
		}
		if final || len(joined) > pgzJoinIn {
			break
		}
		if s = r.z.nextSeg(); s == nil {
			r.z.finish(io.ErrUnexpectedEOF) // stopped
			return false
		}
		joined = append(joined, s.in...)
		final, serr = s.final, s.err
		s.chunk.release()
	}
	r.z.sequential++
	r.z.inSeq.Store(true)
	r.z.finish(r.inOrder(&segStream{z: r.z, head: joined, final: final, err: serr}))
	return false
}

// add counts data into the member's CRC-32 and length.
func (r *resolver) add(data []byte) {
	r.crc = crc32.Update(r.crc, crc32.IEEETable, data)
	r.size += int64(len(data))
}

// remember keeps the last 32 KiB of the output, data being the latest.
func (r *resolver) remember(data []byte) {
	if len(data) >= windowSize {
		r.hist = append(r.hist[:0], data[len(data)-windowSize:]...)
		return
	}
	r.hist = append(r.hist, data...)
	if len(r.hist) > windowSize {
		r.hist = append(r.hist[:0], r.hist[len(r.hist)-windowSize:]...)
	}
}

// emit hands out data in c. The bookkeeping is done before the chunk is
// handed out: once released, its buffer may be reused. It reports false
// when the reader is stopped.
func (r *resolver) emit(c *chunk, data []byte) bool {
	r.add(data)
	r.remember(data)
	c.data, c.err = data, nil
	return r.z.publish(c)
}

// emitSeg is emit for a speculatively inflated segment, whose CRC is
// known.
func (r *resolver) emitSeg(s *segment) bool {
	r.crc = crc32Combine(r.crc, s.crc, int64(s.n))
	r.size += int64(s.n)
	r.hist = append(r.hist[:0], s.out[max(s.n-windowSize, 0):s.n]...)
	c := &s.chunk
	c.data, c.err = s.out[:s.n], nil
	return r.z.publish(c)
}

// checkTrailer compares a member's trailer t with the CRC-32 and length of
// the output.
func (r *resolver) checkTrailer(t []byte) error {
	if binary.LittleEndian.Uint32(t) != r.crc || binary.LittleEndian.Uint32(t[4:]) != uint32(r.size) {
		return gzip.ErrChecksum
	}
	return nil
}

// publish hands a chunk of output to the hasher and to Read, in that
// order, so that the hash never lags behind what Read returned. It reports
// false when the reader is stopped.
func (z *Reader) publish(c *chunk) bool {
	c.refs.Store(2)
	z.hashq <- c
	select {
	case z.ready <- c:
		return true
	case <-z.quit:
		return false
	}
}

// finish hands Read the end of the stream: io.EOF when err is nil, else
// err, which is also recorded as the stream's error.
func (z *Reader) finish(err error) {
	if err == nil {
		err = io.EOF
	} else {
		z.err = err
	}
	select {
	case z.ready <- &chunk{err: err}:
	case <-z.quit:
	}
}

// inOrder inflates the rest of the stream in order, starting with the
// bytes of sr, like a gzip reader reading several members. The first
// member's CRC-32, length and history so far are r's.
func (r *resolver) inOrder(sr *segStream) error {
	defer sr.close()
	br := bufio.NewReaderSize(sr, pgzReadMax)
	if err := r.drain(flate.NewReaderDict(br, r.hist)); err != nil {
		return err
	}
	var t [8]byte
	if _, err := io.ReadFull(br, t[:]); err != nil {
		return noEOF(err)
	}
	if err := r.checkTrailer(t[:]); err != nil {
		return err
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
	return r.drain(gz)
}

// drain hands out everything src decodes, and requires src to end with
// io.EOF: a decoder that stops short has met a truncated stream.
func (r *resolver) drain(src io.Reader) error {
	// io.ReadFull cannot tell the decoder's io.EOF after a short read from
	// its io.ErrUnexpectedEOF: eofReader does.
	er := &eofReader{r: src}
	if err := r.copyOut(er); err != nil {
		return err
	}
	if !er.eof {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// copyOut hands out what src yields in chunks of pgzSeqOut bytes, until
// src ends.
func (r *resolver) copyOut(src io.Reader) error {
	for {
		c, err := r.seqChunk()
		if err != nil {
			return err
		}
		n, err := io.ReadFull(src, c.data[:cap(c.data)])
		if n > 0 {
			c.data = c.data[:n]
			r.add(c.data)
			if !r.z.publish(c) {
				return errStopped
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

// seqChunk returns an output buffer for inflating in order: one of
// pgzSeqBufs, recycled, waiting when all are in use.
func (r *resolver) seqChunk() (*chunk, error) {
	z := r.z
	select {
	case c := <-z.seqBuf:
		return c, nil
	default:
	}
	if r.nbuf < pgzSeqBufs {
		r.nbuf++
		c := &chunk{data: make([]byte, pgzSeqOut)}
		c.release = func() { z.seqBuf <- c }
		return c, nil
	}
	select {
	case c := <-z.seqBuf:
		return c, nil
	case <-z.quit:
		return nil, errStopped
	}
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
	z     *Reader
	head  []byte
	final bool  // the input ends after head
	err   error // error of the input after head
	cur   *segment
}

func (s *segStream) Read(p []byte) (int, error) {
	for len(s.head) == 0 {
		s.close()
		if s.err != nil {
			return 0, s.err
		}
		if s.final {
			return 0, io.EOF
		}
		if s.cur = s.z.nextSeg(); s.cur == nil {
			return 0, errStopped
		}
		s.head, s.final, s.err = s.cur.in, s.cur.final, s.cur.err
	}
	n := copy(p, s.head)
	s.head = s.head[n:]
	return n, nil
}

// close releases the segment being read, if any.
func (s *segStream) close() {
	if s.cur != nil {
		s.cur.chunk.release()
		s.cur = nil
	}
}

// nextSeg is the next segment in order once its worker is done, nil after
// stop.
func (z *Reader) nextSeg() *segment {
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
func (z *Reader) hash() {
	defer z.wg.Done()
	for c := range z.hashq {
		z.h.Write(c.data)
		c.done()
	}
}

// Read reads decompressed bytes. It returns io.EOF only after the whole
// stream was read and its trailers checked. After Stop it returns the
// error it had already returned (io.EOF included), else io.ErrClosedPipe.
func (z *Reader) Read(p []byte) (int, error) {
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
		var c *chunk
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

// Hashed waits until every byte of output is in the hash. Call it after
// Read returned the final error.
func (z *Reader) Hashed() { z.Stop() }

// Stop ends the goroutines and waits for them; after it the source is not
// read any more. It may be called more than once.
func (z *Reader) Stop() {
	z.once.Do(func() { close(z.quit) })
	z.wg.Wait()
}

// Err returns the error that ended the stream (a decoding or checksum
// error, or the source's error), nil if it ended cleanly or has not ended.
// Call it after Stop.
func (z *Reader) Err() error { return z.err }
