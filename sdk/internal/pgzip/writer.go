package pgzip

// The parallel compressor. The input is cut into blocks of blockSize
// bytes, each compressed on its own (no dictionary from the block before)
// by one of several goroutines. Every block but the last ends with a sync
// flush, which leaves the deflate stream byte-aligned between two deflate
// blocks, so the compressed blocks written one after the other form a
// single valid deflate stream; the last block ends with the final deflate
// block. The whole is one gzip member: header, that stream, and a trailer
// with the CRC-32 (per block, combined in order) and the length. Decoders
// see an ordinary gzip file. Losing the 32 KiB window at each boundary of
// BlockSize bytes costs well under one percent of size.
//
// An all-zero block compresses to the same bytes wherever it is, so those
// bytes are computed once per level and reused: the sparse regions of an
// image cost a zero check instead of a compression.
//
// Optionally a hash is fed the uncompressed blocks in order by a goroutine
// of its own, so hashing runs beside compression instead of before it.
//
// Memory is bounded: at most buffers(workers) blocks exist, each with an
// input and an output buffer of about blockSize, recycled.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
)

// BlockSize is the block size Reader inflates in parallel: streams that
// Writer made with blocks of this size are read on several cores.
const BlockSize = 1 << 20

// gzHeader is the gzip member header: deflate, no flags, no time, the
// extra flags byte from the level (as gzip(1) and Go's writers set it),
// operating system unknown.
func gzHeader(level int) []byte {
	xfl := byte(0)
	switch level {
	case flate.BestCompression:
		xfl = 2
	case flate.BestSpeed:
		xfl = 4
	}
	return []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255}
}

// gzBlock is one block of the stream on its way through the compressor.
type gzBlock struct {
	in    []byte // uncompressed bytes, len ≤ blockSize
	out   []byte // compressed bytes: buf, or the shared zero block
	buf   []byte // the block's own output buffer
	crc   uint32 // CRC-32 of in
	final bool   // last block: ends with the final deflate block
	done  chan struct{}
	refs  atomic.Int32 // stages still using the block (hasher, writer)
}

// zeroBlocks caches the compressed form of an all-zero non-final block per
// level and block size.
var zeroBlocks sync.Map // zeroKey → *zeroBlock

type zeroKey struct{ level, size int }

type zeroBlock struct {
	once sync.Once
	out  []byte
	crc  uint32
	err  error
}

// compressedZeros returns the compressed form of a non-final block of size
// zeros at level, computing it on first use.
func compressedZeros(level, size int) (*zeroBlock, error) {
	v, _ := zeroBlocks.LoadOrStore(zeroKey{level, size}, &zeroBlock{})
	z := v.(*zeroBlock)
	z.once.Do(func() {
		in := make([]byte, size)
		var b bytes.Buffer
		fw, err := flate.NewWriter(&b, level)
		if err != nil {
			z.err = err
			return
		}
		if _, err := fw.Write(in); err != nil {
			z.err = err
			return
		}
		if err := fw.Flush(); err != nil {
			z.err = err
			return
		}
		z.out = b.Bytes()
		z.crc = crc32.ChecksumIEEE(in)
	})
	return z, z.err
}

// buffers is the number of blocks a compressor with that many workers
// keeps: enough that every worker has one block to compress while the
// hasher and the writer each hold one and the producer fills another.
func buffers(workers int) int { return 2*workers + 2 }

// Writer is the parallel gzip compressor, an io.WriteCloser (and
// io.ReaderFrom, which reads straight into its block buffers). Errors are
// sticky; Close flushes and must be checked. It is not safe for concurrent
// use, except Consumed; it runs goroutines of its own until Close returns.
type Writer struct {
	w         io.Writer
	level     int
	blockSize int
	zero      *zeroBlock
	// consumed counts the uncompressed bytes whose compressed form has
	// been written to w.
	consumed atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	free   chan *gzBlock
	jobs   chan *gzBlock
	hashq  chan *gzBlock // nil without a hash
	outq   chan *gzBlock
	wg     sync.WaitGroup
	nbufs  int // blocks allocated
	maxBuf int

	cur     *gzBlock // being filled
	pending *gzBlock // full, held back until we know whether it is the last
	closed  bool

	mu  sync.Mutex
	err error
}

// NewWriter returns a compressor writing one gzip member to w at the
// given flate level, in blocks of blockSize bytes. If h is not nil it is
// fed the uncompressed stream, in order. workers is the number of
// compressing goroutines (at least 1). Cancelling ctx stops the compressor
// with ctx's error.
func NewWriter(ctx context.Context, w io.Writer, level, blockSize, workers int, h hash.Hash) (*Writer, error) {
	if level < flate.HuffmanOnly || level > flate.BestCompression {
		return nil, errors.New("gzip: invalid compression level")
	}
	workers = max(workers, 1)
	zero, err := compressedZeros(level, blockSize)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	n := buffers(workers)
	z := &Writer{
		w: w, level: level, blockSize: blockSize, zero: zero,
		ctx: ctx, cancel: cancel, maxBuf: n,
		free:  make(chan *gzBlock, n),
		jobs:  make(chan *gzBlock, n),
		hashq: make(chan *gzBlock, n),
		outq:  make(chan *gzBlock, n),
	}
	z.wg.Add(workers + 1)
	for range workers {
		go z.compress()
	}
	go z.write()
	if h != nil {
		z.wg.Add(1)
		go z.hash(h)
	} else {
		z.hashq = nil
	}
	return z, nil
}

// Consumed returns how many uncompressed bytes have had their compressed
// form written to the underlying writer so far. It may be called from any
// goroutine, for instance to estimate the compression ratio while the
// stream is being written.
func (z *Writer) Consumed() int64 { return z.consumed.Load() }

func (z *Writer) setErr(err error) {
	z.mu.Lock()
	if z.err == nil {
		z.err = err
		z.cancel()
	}
	z.mu.Unlock()
}

func (z *Writer) getErr() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

// writable returns the error that refuses more input: the sticky error,
// or a complaint about writing after Close.
func (z *Writer) writable() error {
	if err := z.getErr(); err != nil {
		return err
	}
	if z.closed {
		return errors.New("gzip: write after close")
	}
	return nil
}

// block returns an empty block, waiting for one to be recycled if all are
// in use.
func (z *Writer) block() (*gzBlock, error) {
	var b *gzBlock
	select {
	case b = <-z.free:
	default:
		if z.nbufs < z.maxBuf {
			z.nbufs++
			b = &gzBlock{in: make([]byte, 0, z.blockSize)}
		} else {
			select {
			case b = <-z.free:
			case <-z.ctx.Done():
				if err := z.getErr(); err != nil {
					return nil, err
				}
				return nil, z.ctx.Err()
			}
		}
	}
	b.in = b.in[:0]
	b.out = nil
	b.final = false
	b.done = make(chan struct{})
	return b, nil
}

// release gives a block back for reuse once no stage uses it any more.
func (z *Writer) release(b *gzBlock) {
	if b.refs.Add(-1) == 0 {
		z.free <- b
	}
}

// submit hands a block to the workers, the hasher and the writer.
// The channels hold every block there is, so these sends never block.
func (z *Writer) submit(b *gzBlock) {
	if z.hashq != nil {
		b.refs.Store(2)
		z.hashq <- b
	} else {
		b.refs.Store(1)
	}
	z.jobs <- b
	z.outq <- b
}

// fill makes z.cur a block with room, submitting the pending block first.
func (z *Writer) fill() error {
	if z.cur != nil && len(z.cur.in) < z.blockSize {
		return nil
	}
	if z.cur != nil {
		// cur is full: it becomes pending; the previous pending block is
		// known not to be the last.
		if z.pending != nil {
			z.submit(z.pending)
		}
		z.pending, z.cur = z.cur, nil
	}
	b, err := z.block()
	if err != nil {
		return err
	}
	z.cur = b
	return nil
}

// Write compresses p.
func (z *Writer) Write(p []byte) (int, error) {
	if err := z.writable(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		if err := z.fill(); err != nil {
			z.setErr(err)
			return n - len(p), err
		}
		k := min(len(p), z.blockSize-len(z.cur.in))
		z.cur.in = append(z.cur.in, p[:k]...)
		p = p[k:]
	}
	return n, z.getErr()
}

// ReadFrom reads r to its end straight into the block buffers.
func (z *Writer) ReadFrom(r io.Reader) (int64, error) {
	if err := z.writable(); err != nil {
		return 0, err
	}
	var total int64
	for {
		if err := z.fill(); err != nil {
			z.setErr(err)
			return total, err
		}
		b := z.cur
		n, err := io.ReadFull(r, b.in[len(b.in):z.blockSize])
		b.in = b.in[:len(b.in)+n]
		total += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, z.getErr()
		}
		if err != nil {
			return total, err
		}
		if err := z.getErr(); err != nil {
			return total, err
		}
	}
}

// Close compresses what is left, writes the gzip trailer and waits for the
// goroutines. It does not close the underlying writer.
func (z *Writer) Close() error {
	if z.closed {
		return z.getErr()
	}
	z.closed = true
	if z.getErr() == nil {
		z.submitLast()
	}
	close(z.jobs)
	close(z.outq)
	if z.hashq != nil {
		close(z.hashq)
	}
	z.wg.Wait()
	z.cancel()
	return z.getErr()
}

// submitLast submits the blocks still held, marking the last one final so
// that the deflate stream ends with it. An empty input still gets one
// (empty) final block, which a gzip member needs.
func (z *Writer) submitLast() {
	last := z.cur
	if last != nil && len(last.in) == 0 {
		last = nil
	}
	if last == nil && z.pending == nil {
		if b, err := z.block(); err != nil {
			z.setErr(err)
		} else {
			last = b
		}
	}
	if z.pending != nil {
		if last == nil {
			last, z.pending = z.pending, nil
		} else {
			z.submit(z.pending)
			z.pending = nil
		}
	}
	if last != nil && z.getErr() == nil {
		last.final = true
		z.submit(last)
	}
}

// Abort stops the compressor after a failure upstream, making err its
// sticky error; nothing more is written to the underlying writer.
func (z *Writer) Abort(err error) {
	z.setErr(err)
	z.Close()
}

// compress is a worker: it compresses blocks until jobs is closed.
func (z *Writer) compress() {
	defer z.wg.Done()
	var fw *flate.Writer
	for b := range z.jobs {
		if z.ctx.Err() == nil {
			z.compressBlock(b, &fw)
		}
		close(b.done)
	}
}

// compressBlock compresses one block with the worker's flate writer *fw,
// or takes the cached bytes when the block is all zeros.
func (z *Writer) compressBlock(b *gzBlock, fw **flate.Writer) {
	if !b.final && len(b.in) == z.blockSize && IsZero(b.in) {
		b.out, b.crc = z.zero.out, z.zero.crc
		return
	}
	buf := bytes.NewBuffer(b.buf[:0])
	if *fw == nil {
		w, err := flate.NewWriter(buf, z.level)
		if err != nil {
			z.setErr(err)
			return
		}
		*fw = w
	} else {
		(*fw).Reset(buf)
	}
	_, err := (*fw).Write(b.in)
	if err == nil {
		if b.final {
			err = (*fw).Close()
		} else {
			err = (*fw).Flush()
		}
	}
	if err != nil {
		z.setErr(err)
		return
	}
	b.buf = buf.Bytes()
	b.out = b.buf
	b.crc = crc32.ChecksumIEEE(b.in)
}

// hash feeds h the blocks in order.
func (z *Writer) hash(h hash.Hash) {
	defer z.wg.Done()
	for b := range z.hashq {
		if z.ctx.Err() == nil {
			h.Write(b.in)
		}
		z.release(b)
	}
}

// write writes the header, the compressed blocks in order and the trailer.
func (z *Writer) write() {
	defer z.wg.Done()
	var (
		crc  uint32
		size int64
		ok   = true
	)
	put := func(p []byte) {
		if !ok {
			return
		}
		if _, err := z.w.Write(p); err != nil {
			z.setErr(err)
			ok = false
		}
	}
	put(gzHeader(z.level))
	for b := range z.outq {
		select {
		case <-b.done:
		case <-z.ctx.Done():
			ok = false
		}
		if ok && z.ctx.Err() != nil {
			ok = false
		}
		// The block's fields are read only once its worker is done.
		if ok {
			put(b.out)
		}
		if ok {
			crc = crc32Combine(crc, b.crc, int64(len(b.in)))
			size += int64(len(b.in))
			z.consumed.Add(int64(len(b.in)))
			if b.final {
				var t [8]byte
				binary.LittleEndian.PutUint32(t[:4], crc)
				binary.LittleEndian.PutUint32(t[4:], uint32(size))
				put(t[:])
			}
		}
		// Wait for the worker before recycling (it may still be running
		// after a cancellation).
		<-b.done
		z.release(b)
	}
}

var zeroPage [4096]byte

// IsZero reports whether b holds only zero bytes. The codecs use it to
// recognise the zero blocks of sparse images; it is fast enough to run over
// every byte of an image.
func IsZero(b []byte) bool {
	for len(b) >= len(zeroPage) {
		if !bytes.Equal(b[:len(zeroPage)], zeroPage[:]) {
			return false
		}
		b = b[len(zeroPage):]
	}
	return bytes.Equal(b, zeroPage[:len(b)])
}
