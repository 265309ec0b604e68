package bundle

import (
	"archive/tar"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/pgzip"
)

// UnbundleInput describes a bundle to read.
type UnbundleInput struct {
	// Manifest is the manifest's bytes. Required.
	Manifest []byte
	// Source opens the parts named in the manifest. Required.
	Source PartSource
	// UserKey is the private key of the user the bundle was made for; it
	// decrypts the AES key and IV. Required.
	UserKey *rsa.PrivateKey
	// UserCert, if set, is the user's certificate; the manifest's
	// signature is verified with it before any part is read.
	UserCert *x509.Certificate
}

// UnbundleOutput is the result of Unbundle, UnbundleToDir and Verify.
type UnbundleOutput struct {
	Manifest *Manifest
	// EntryName is the name of the tar entry (normally Manifest.Name).
	EntryName string
	// Size is the number of image bytes written.
	Size int64
	// SignatureVerified reports whether the signature was checked.
	SignatureVerified bool
	// Path is the image file UnbundleToDir wrote; empty for Unbundle and
	// Verify.
	Path string
}

// Reader reads the image of a bundle. Every check of the bundle is made
// before Read returns io.EOF: each part's SHA-1 (before its bytes are
// decrypted), the bundled size, the cipher padding, the gzip stream, the
// tar entry's size, and the SHA-1 of the tar stream. A failed check is
// returned by Read as *PartDigestError, *PartError, *SizeError,
// *ImageDigestError, *FormatError or an error wrapping ErrPadding.
type Reader struct {
	m         *Manifest
	verified  bool
	parts     *partReader
	cbc       *cbcReader
	gz        *pgzip.Reader // inflates (in parallel) and hashes ahead of tr
	h         hash.Hash
	tr        *tar.Reader
	entry     string
	n         int64
	progress  func(done, total int64)
	err       error
	finalized bool
}

// Open parses and checks the manifest, verifies its signature if
// in.UserCert is set, decrypts the bundle key and starts reading parts. The
// caller must Close the Reader.
func Open(ctx context.Context, in *UnbundleInput, optFns ...func(*Options)) (*Reader, error) {
	o := opts.Apply(optFns)
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	if o.Concurrency < 1 {
		return nil, &InputError{Field: "Options.Concurrency", Reason: "must be positive"}
	}
	if in == nil {
		return nil, &InputError{Field: "UnbundleInput", Reason: "nil"}
	}
	if in.Source == nil {
		return nil, &InputError{Field: "Source", Reason: "missing"}
	}
	if in.UserKey == nil {
		return nil, &InputError{Field: "UserKey", Reason: "missing"}
	}
	m, err := ParseManifest(in.Manifest)
	if err != nil {
		return nil, err
	}
	r := &Reader{m: m, progress: o.Progress}
	if in.UserCert != nil {
		if err := m.Verify(in.UserCert); err != nil {
			return nil, err
		}
		r.verified = true
	}
	key, iv, err := m.DecryptKey(in.UserKey)
	if err != nil {
		return nil, err
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyDecrypt, err)
	}
	r.parts = newPartReader(ctx, in.Source, m, o.Concurrency)
	r.cbc = &cbcReader{r: r.parts, mode: cipher.NewCBCDecrypter(blk, iv), buf: make([]byte, aes.BlockSize+cbcChunk)}
	r.h = sha1.New()
	r.gz = pgzip.NewReader(r.cbc, r.h, runtime.GOMAXPROCS(0))
	r.tr = tar.NewReader(r.gz)
	hdr, err := r.tr.Next()
	if err != nil {
		r.Close()
		return nil, r.classify(err, "tar", "no entry")
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, '\x00':
	default:
		r.Close()
		return nil, &FormatError{Stage: "tar", Reason: fmt.Sprintf("entry %q has type %q, want a regular file", hdr.Name, hdr.Typeflag)}
	}
	if hdr.Size != m.Size {
		r.Close()
		return nil, &SizeError{What: "size", Want: m.Size, Got: hdr.Size}
	}
	r.entry = hdr.Name
	return r, nil
}

// Manifest returns the bundle's parsed manifest.
func (r *Reader) Manifest() *Manifest { return r.m }

// EntryName returns the name of the bundle's tar entry.
func (r *Reader) EntryName() string { return r.entry }

// SignatureVerified reports whether Open verified the signature.
func (r *Reader) SignatureVerified() bool { return r.verified }

// Read reads image bytes. It returns io.EOF only after every check passed.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.tr.Read(p)
	r.n += int64(n)
	if n > 0 && r.progress != nil {
		r.progress(r.n, r.m.Size)
	}
	if err == io.EOF {
		err = r.finish()
	} else if err != nil {
		err = r.classify(err, "tar", "reading the entry")
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

// finish makes the checks that need the whole stream.
func (r *Reader) finish() error {
	if r.n != r.m.Size {
		return &SizeError{What: "size", Want: r.m.Size, Got: r.n}
	}
	if hdr, err := r.tr.Next(); err == nil {
		return &FormatError{Stage: "tar", Reason: fmt.Sprintf("more than one entry (%q follows)", hdr.Name)}
	} else if err != io.EOF {
		return r.classify(err, "tar", "after the entry")
	}
	// The rest of the tar stream (end blocks, record padding) counts for
	// the digest, and reading to the end checks gzip, padding and parts.
	if _, err := io.Copy(io.Discard, onlyReader{r.gz}); err != nil {
		return r.classify(err, "gzip", "after the tar stream")
	}
	r.gz.Hashed()
	if err := r.parts.finished(); err != nil {
		return err
	}
	var got [sha1.Size]byte
	r.h.Sum(got[:0])
	if got != r.m.Digest {
		return &ImageDigestError{Want: hex.EncodeToString(r.m.Digest[:]), Got: hex.EncodeToString(got[:])}
	}
	r.finalized = true
	return io.EOF
}

// classify returns the error of the earliest failing stage: parts, cipher,
// gzip, then tar (stage, with reason, for err).
func (r *Reader) classify(err error, stage, reason string) error {
	// The stages' errors are set by the decoding goroutine: stop it first.
	r.stopAhead()
	if perr := r.parts.getErr(); perr != nil {
		return perr
	}
	if r.cbc.err != nil && r.cbc.err != io.EOF {
		return r.cbc.err
	}
	if r.gz != nil {
		if gerr := r.gz.Err(); gerr != nil && gerr != io.EOF {
			return &FormatError{Stage: "gzip", Reason: "corrupt", Err: gerr}
		}
	}
	if err == io.ErrUnexpectedEOF {
		reason += ": truncated"
	}
	return &FormatError{Stage: stage, Reason: reason, Err: err}
}

// Close stops reading parts and releases them. It returns nil after a
// complete, checked read.
func (r *Reader) Close() error {
	r.parts.cancel()
	r.stopAhead()
	r.parts.close()
	if r.err == nil && !r.finalized {
		r.err = errors.New("bundle: reader closed")
	}
	return nil
}

func (r *Reader) stopAhead() {
	if r.gz != nil {
		r.gz.Stop()
	}
}

// Unbundle reads the bundle and writes its image to w. See Reader for the
// checks made.
func Unbundle(ctx context.Context, in *UnbundleInput, w io.Writer, optFns ...func(*Options)) (*UnbundleOutput, error) {
	if w == nil {
		return nil, &InputError{Field: "w", Reason: "missing"}
	}
	r, err := Open(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(onlyWriter{w}, r, buf)
	if err != nil {
		return nil, err
	}
	return &UnbundleOutput{Manifest: r.m, EntryName: r.entry, Size: n, SignatureVerified: r.verified}, nil
}

// Verify checks a bundle completely, signature included, without writing
// the image. in.UserCert is required.
func Verify(ctx context.Context, in *UnbundleInput, optFns ...func(*Options)) (*UnbundleOutput, error) {
	if in != nil && in.UserCert == nil {
		return nil, &InputError{Field: "UserCert", Reason: "required to verify the signature"}
	}
	return Unbundle(ctx, in, io.Discard, optFns...)
}

// onlyWriter hides io.ReaderFrom so that copies go through Reader.Read.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// onlyReader hides io.WriterTo.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// cbcReader decrypts AES-CBC and removes PKCS #7 padding. It holds back the
// last decrypted block until its reader reaches io.EOF.
type cbcReader struct {
	r     io.Reader
	mode  cipher.BlockMode
	buf   []byte // aes.BlockSize of headroom, then ciphertext
	ready []byte // plaintext to return
	pend  [aes.BlockSize]byte
	npend int
	last  [aes.BlockSize]byte
	has   bool // last holds a block
	err   error
}

func (c *cbcReader) Read(p []byte) (int, error) {
	for len(c.ready) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		c.fill()
	}
	n := copy(p, c.ready)
	c.ready = c.ready[n:]
	return n, nil
}

func (c *cbcReader) fill() {
	const hr = aes.BlockSize
	body := c.buf[hr:]
	copy(body, c.pend[:c.npend])
	n, err := io.ReadAtLeast(c.r, body[c.npend:], 1)
	total := c.npend + n
	full := total / aes.BlockSize * aes.BlockSize
	c.npend = copy(c.pend[:], body[full:total])
	if full > 0 {
		c.mode.CryptBlocks(body[:full], body[:full])
		start := hr
		if c.has {
			copy(c.buf[:hr], c.last[:])
			start = 0
		}
		copy(c.last[:], body[full-aes.BlockSize:full])
		c.has = true
		c.ready = c.buf[start : hr+full-aes.BlockSize]
	}
	switch {
	case err == io.EOF:
		c.finish()
	case err != nil:
		c.err = err
	}
}

func (c *cbcReader) finish() {
	if c.npend != 0 || !c.has {
		c.err = fmt.Errorf("%w: ciphertext is not a whole number of blocks", ErrPadding)
		return
	}
	pad := int(c.last[aes.BlockSize-1])
	if pad < 1 || pad > aes.BlockSize {
		c.err = ErrPadding
		return
	}
	for _, b := range c.last[aes.BlockSize-pad:] {
		if int(b) != pad {
			c.err = ErrPadding
			return
		}
	}
	// ready may still hold data from this fill; append the last block's
	// plaintext after it (ready ends right where buf has room for it).
	tail := c.last[:aes.BlockSize-pad]
	c.ready = append(c.ready, tail...)
	c.has = false
	c.err = io.EOF
}

// partReader fetches the parts in index order, up to concurrency ahead,
// checks each part's size bounds and SHA-1 while fetching, and serves their
// bytes in order. Bytes of a part are served only after its digest matched.
type partReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	src    PartSource
	m      *Manifest
	res    []chan fetched
	free   chan []byte
	wg     sync.WaitGroup

	next  int    // index of the next part to serve
	cur   []byte // unread bytes of the part being served
	buf   []byte // buffer of the part being served
	total int64  // bytes of parts served
	done  bool

	mu  sync.Mutex
	err error
}

type fetched struct {
	buf []byte
	err error
}

func newPartReader(ctx context.Context, src PartSource, m *Manifest, concurrency int) *partReader {
	ctx, cancel := context.WithCancel(ctx)
	p := &partReader{ctx: ctx, cancel: cancel, src: src, m: m, free: make(chan []byte, concurrency)}
	p.res = make([]chan fetched, len(m.Parts))
	for i := range p.res {
		p.res[i] = make(chan fetched, 1)
	}
	for range concurrency {
		p.free <- nil
	}
	p.wg.Add(1)
	go p.produce()
	return p
}

// produce starts one fetch per part, in index order, each when a buffer is
// free.
func (p *partReader) produce() {
	defer p.wg.Done()
	// A part holds at most PartSize bytes and at most the bundled size;
	// the sum of the sizes is checked as the parts are served.
	limit := p.m.MaxPartSize()
	for i := range p.m.Parts {
		if p.ctx.Err() != nil {
			return
		}
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.ctx.Done():
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			b, err := p.fetch(i, buf, limit)
			p.res[i] <- fetched{buf: b, err: err}
		}()
	}
}

func (p *partReader) fetch(i int, buf []byte, limit int64) ([]byte, error) {
	info := p.m.Parts[i]
	rc, err := p.src.OpenPart(p.ctx, info.Filename)
	if err != nil {
		return buf, &PartError{Index: i, Filename: info.Filename, Err: err}
	}
	defer rc.Close()
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(cap(buf)) > limit {
				return buf, &PartError{Index: i, Filename: info.Filename, Err: fmt.Errorf("larger than %d bytes", limit)}
			}
			grown := make([]byte, len(buf), min(limit+1, max(2*int64(cap(buf)), 64<<10)))
			copy(grown, buf)
			buf = grown
		}
		n, err := rc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, &PartError{Index: i, Filename: info.Filename, Err: err}
		}
	}
	if int64(len(buf)) > limit {
		return buf, &PartError{Index: i, Filename: info.Filename, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	if got := sha1.Sum(buf); got != info.Digest {
		return buf, &PartDigestError{Index: i, Filename: info.Filename, Want: hex.EncodeToString(info.Digest[:]), Got: hex.EncodeToString(got[:])}
	}
	return buf, nil
}

func (p *partReader) setErr(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
	return p.err
}

func (p *partReader) getErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *partReader) Read(b []byte) (int, error) {
	if err := p.getErr(); err != nil {
		return 0, err
	}
	for len(p.cur) == 0 {
		if p.buf != nil {
			p.free <- p.buf
			p.buf = nil
		}
		if p.next == len(p.m.Parts) {
			p.done = true
			if p.total != p.m.BundledSize {
				return 0, p.setErr(&SizeError{What: "bundled_size", Want: p.m.BundledSize, Got: p.total})
			}
			return 0, io.EOF
		}
		if err := p.ctx.Err(); err != nil {
			return 0, p.setErr(err)
		}
		var f fetched
		select {
		case f = <-p.res[p.next]:
		case <-p.ctx.Done():
			return 0, p.setErr(p.ctx.Err())
		}
		if f.err != nil {
			return 0, p.setErr(f.err)
		}
		p.total += int64(len(f.buf))
		if p.total > p.m.BundledSize {
			return 0, p.setErr(&SizeError{What: "bundled_size", Want: p.m.BundledSize, Got: p.total})
		}
		p.buf, p.cur = f.buf, f.buf
		p.next++
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// finished reports an error unless every part was served.
func (p *partReader) finished() error {
	if err := p.getErr(); err != nil {
		return err
	}
	if !p.done {
		return &FormatError{Stage: "gzip", Reason: "the compressed stream ends before the last part"}
	}
	return nil
}

func (p *partReader) close() {
	p.cancel()
	p.wg.Wait()
}
