package bundle

import (
	"hash"
	"io"
	"sync"
)

// aheadReader decodes its source in a goroutine of its own, up to a few
// chunks ahead of the consumer, and feeds a hash with the decoded bytes in
// another goroutine, so that inflating, hashing and the consumer's work
// (tar parsing, writing the image) run side by side. Read serves the bytes
// in order, then the source's error (io.EOF at the end).
type aheadReader struct {
	src   io.Reader
	h     hash.Hash
	ready chan *aheadChunk // decoded, for Read
	hashq chan *aheadChunk // decoded, for the hasher
	free  chan *aheadChunk
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	cur *aheadChunk
	off int
	err error // sticky, after the last chunk
}

type aheadChunk struct {
	buf  []byte
	n    int
	err  error // the source's error after buf[:n]
	refs sync.WaitGroup
}

const (
	aheadChunkSize = 1 << 20
	aheadChunks    = 4
)

func newAheadReader(src io.Reader, h hash.Hash) *aheadReader {
	a := &aheadReader{
		src: src, h: h,
		ready: make(chan *aheadChunk, aheadChunks),
		hashq: make(chan *aheadChunk, aheadChunks),
		free:  make(chan *aheadChunk, aheadChunks),
		quit:  make(chan struct{}),
	}
	for range aheadChunks {
		a.free <- &aheadChunk{buf: make([]byte, aheadChunkSize)}
	}
	a.wg.Add(2)
	go a.decode()
	go a.hash()
	return a
}

func (a *aheadReader) decode() {
	defer a.wg.Done()
	defer close(a.hashq)
	defer close(a.ready)
	for {
		var c *aheadChunk
		select {
		case c = <-a.free:
		case <-a.quit:
			return
		}
		// Wait until the hasher is done with the chunk's previous use.
		c.refs.Wait()
		c.n, c.err = io.ReadFull(a.src, c.buf)
		if c.err == io.ErrUnexpectedEOF {
			c.err = io.EOF
		}
		c.refs.Add(1)
		a.hashq <- c
		select {
		case a.ready <- c:
		case <-a.quit:
			return
		}
		if c.err != nil {
			return
		}
	}
}

func (a *aheadReader) hash() {
	defer a.wg.Done()
	for c := range a.hashq {
		a.h.Write(c.buf[:c.n])
		c.refs.Done()
	}
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for a.cur == nil || a.off == a.cur.n {
		if a.cur != nil {
			if a.cur.err != nil {
				a.err = a.cur.err
			}
			a.free <- a.cur
			a.cur = nil
		}
		if a.err != nil {
			return 0, a.err
		}
		c, ok := <-a.ready
		if !ok {
			a.err = io.ErrClosedPipe
			return 0, a.err
		}
		a.cur, a.off = c, 0
	}
	n := copy(p, a.cur.buf[a.off:a.cur.n])
	a.off += n
	return n, nil
}

// hashed waits until every byte read from the source is in the hash. Call
// it after Read returned the source's final error.
func (a *aheadReader) hashed() { a.stop() }

// stop ends the goroutines and waits for them; after it, the source is not
// read any more.
func (a *aheadReader) stop() {
	a.once.Do(func() { close(a.quit) })
	a.wg.Wait()
}
