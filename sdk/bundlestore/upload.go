package bundlestore

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// CannedACL is the canned ACL every bundle object is stored with: it grants
// EC2 read access, which RegisterImage and instance launches need.
const CannedACL = types.ObjectCannedACLAwsExecRead

// UploadOutput is the result of Upload and Writer.Finish: a finished
// upload.
type UploadOutput struct {
	// Location is where the bundle now is.
	Location Location
	// ManifestKey is the manifest's object key.
	ManifestKey string
	// ImageLocation is the value for RegisterImage's ImageLocation:
	// "<bucket>/<manifest key>".
	ImageLocation string
	// Uploaded lists the keys sent, parts in the order they finished and
	// the manifest last.
	Uploaded []string
	// Skipped lists the keys of parts found already stored intact (resume).
	Skipped []string
	// BytesSent is the number of bytes sent (excluding skipped parts).
	BytesSent int64
}

// WriterInput says where a [Writer] stores a bundle.
type WriterInput struct {
	// Bucket is the S3 bucket. Required.
	Bucket string
	// Prefix is the key prefix ("folder") of the bundle's objects; empty
	// means the top of the bucket.
	Prefix string
	// Region is the bucket's region; it is used in messages and ledger
	// records only (the client decides where requests go).
	Region string
	// TotalSize, when known, is the bundle's total size in bytes (parts
	// and manifest), reported as the total to Options.Progress.
	TotalSize int64
	// ReplaceManifest lets the manifest replace one already at its key.
	// By default the manifest is stored only where no object is
	// (PutObject with If-None-Match "*"), so that an upload never
	// replaces the manifest of another bundle, even one stored after a
	// CheckLocation. Set it when the bundle there is meant to be replaced
	// (CheckLocationOutput.Exists: the image registered from it is being
	// deregistered).
	ReplaceManifest bool
}

// Writer uploads a bundle as its parts are produced. It is the S3
// bundle.PartSink (and bundle.PartRemover): hand it to bundle.Bundle as
// BundleInput.Sink, then call Finish with the manifest the bundler returns.
//
// Each part is sent in the background while the next one is being made, at
// most Options.Concurrency at once; WritePart copies the part into one of
// Concurrency buffers and blocks while all are in flight, so parts in
// flight hold at most Concurrency × 10 MiB. Finish sends the manifest only
// after every part succeeded.
//
// A Writer is safe for concurrent use. After the first failed upload the
// uploads in flight are cancelled and WritePart, RenamePart and Finish
// return the error. Objects already stored stay in the bucket (they are
// recorded in Options.Ledger, when set); call Abort for a Writer that will
// not be finished.
type Writer struct {
	api    UploadAPI
	in     WriterInput
	opts   Options
	ctx    context.Context // uploads of parts; cancelled on the first failure
	cancel context.CancelFunc
	g      errgroup.Group
	slots  chan *[]byte

	mu       sync.Mutex
	err      error
	done     int64
	sent     int64
	uploaded []string
	skipped  []string
	keys     map[string]bool
	finished bool
}

var (
	_ bundle.PartSink    = (*Writer)(nil)
	_ bundle.PartRemover = (*Writer)(nil)
)

// NewWriter returns a Writer that stores a bundle's objects in in.Bucket
// under in.Prefix. ctx bounds the part uploads of the Writer.
func NewWriter(ctx context.Context, api UploadAPI, in *WriterInput, optFns ...func(*Options)) (*Writer, error) {
	if in == nil || in.Bucket == "" {
		return nil, errors.New("bundlestore: upload: bucket is required")
	}
	opts := resolveOptions(optFns)
	ctx, cancel := context.WithCancel(ctx)
	w := &Writer{
		api:    api,
		in:     *in,
		opts:   opts,
		ctx:    ctx,
		cancel: cancel,
		slots:  make(chan *[]byte, opts.Concurrency),
		keys:   make(map[string]bool),
	}
	w.g.SetLimit(opts.Concurrency)
	for range opts.Concurrency {
		w.slots <- new([]byte)
	}
	return w, nil
}

// WritePart starts uploading p.Data as the object p.Name under the Writer's
// prefix and returns; the upload continues in the background. It copies
// p.Data, so the caller may reuse it at once. It blocks while
// Options.Concurrency uploads are in flight, and returns the first failure
// of an earlier upload.
func (w *Writer) WritePart(ctx context.Context, p *bundle.Part) error {
	return w.submit(ctx, p.Name, func(buf []byte) ([]byte, error) {
		return append(buf, p.Data...), nil
	})
}

// readAll appends r's bytes to buf. It grows buf only when r has more
// bytes than fit, so a part that fills the buffer exactly costs no copy.
func readAll(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			var probe [512]byte
			n, err := r.Read(probe[:])
			buf = append(buf, probe[:n]...)
			if err == io.EOF {
				return buf, nil
			}
			if err != nil {
				return buf, err
			}
			continue
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// submit takes a free buffer, lets fill put the part's bytes into it, and
// uploads them in the background.
func (w *Writer) submit(ctx context.Context, filename string, fill func(buf []byte) ([]byte, error)) error {
	if err := checkFilename(filename); err != nil {
		return err
	}
	key := Key(w.in.Prefix, filename)
	w.mu.Lock()
	switch {
	case w.finished:
		w.mu.Unlock()
		return fmt.Errorf("bundlestore: upload %s: writer already finished", w.where(key))
	case w.keys[key]:
		w.mu.Unlock()
		return fmt.Errorf("bundlestore: upload %s: part written twice", w.where(key))
	}
	w.keys[key] = true
	w.mu.Unlock()

	var slot *[]byte
	select {
	case slot = <-w.slots:
	case <-w.ctx.Done():
		return w.failure()
	case <-ctx.Done():
		return fmt.Errorf("bundlestore: upload %s: %w", w.where(key), ctx.Err())
	}
	if *slot == nil {
		*slot = make([]byte, 0, bundle.PartSize)
	}
	buf, err := fill((*slot)[:0])
	*slot = buf[:0]
	if err != nil {
		w.slots <- slot
		return fmt.Errorf("bundlestore: read part %s: %w", filename, err)
	}
	w.g.Go(func() error {
		defer func() { w.slots <- slot }()
		if err := w.put(w.ctx, key, buf, !w.opts.DisableResume); err != nil {
			w.setErr(err)
			w.cancel()
			return err
		}
		return nil
	})
	return nil
}

// wait waits for the uploads in flight and returns the first failure.
func (w *Writer) wait() error {
	if err := w.g.Wait(); err != nil {
		return w.failure()
	}
	return nil
}

// RenamePart moves the stored part from to the name to (server-side copy
// with the bundle ACL, then delete), after the uploads in flight finished.
// The bundler calls it when its early guess of a part name's zero padding
// was wrong.
func (w *Writer) RenamePart(ctx context.Context, from, to string) error {
	if err := checkFilename(from); err != nil {
		return err
	}
	if err := checkFilename(to); err != nil {
		return err
	}
	if err := w.wait(); err != nil {
		return err
	}
	fromKey, toKey := Key(w.in.Prefix, from), Key(w.in.Prefix, to)
	_, err := w.api.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:     aws.String(w.in.Bucket),
		Key:        aws.String(toKey),
		CopySource: aws.String(copySource(w.in.Bucket, fromKey)),
		ACL:        CannedACL,
	})
	if err != nil {
		return fmt.Errorf("bundlestore: rename %s to %s: %w", w.where(fromKey), toKey, err)
	}
	w.record(toKey)
	if err := w.deleteObject(ctx, fromKey); err != nil {
		return fmt.Errorf("bundlestore: rename %s to %s: %w", w.where(fromKey), toKey, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.keys, fromKey)
	w.keys[toKey] = true
	for _, list := range [][]string{w.uploaded, w.skipped} {
		if i := slices.Index(list, fromKey); i >= 0 {
			list[i] = toKey
		}
	}
	return nil
}

// RemovePart deletes the stored part name, after the uploads in flight
// finished. The bundler calls it to clean up when bundling fails.
func (w *Writer) RemovePart(ctx context.Context, name string) error {
	if err := checkFilename(name); err != nil {
		return err
	}
	_ = w.g.Wait()
	key := Key(w.in.Prefix, name)
	if err := w.deleteObject(ctx, key); err != nil {
		return fmt.Errorf("bundlestore: remove %s: %w", w.where(key), err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.uploaded = slices.DeleteFunc(w.uploaded, func(k string) bool { return k == key })
	w.skipped = slices.DeleteFunc(w.skipped, func(k string) bool { return k == key })
	return nil
}

// deleteObject deletes key and forgets it in the ledger.
func (w *Writer) deleteObject(ctx context.Context, key string) error {
	_, err := w.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(w.in.Bucket), Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		return err
	}
	if w.opts.Ledger != nil {
		w.opts.Ledger.Forget(ledger.KindS3Object, w.in.Bucket+"/"+key)
	}
	return nil
}

// copySource returns the URL-encoded "bucket/key" CopyObject expects.
func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return url.PathEscape(bucket) + "/" + strings.Join(segs, "/")
}

// Finish waits for every part, then uploads the manifest (stored as the
// object manifestName under the prefix) and returns what was stored. No
// manifest is uploaded when a part failed. Unless
// WriterInput.ReplaceManifest is set, the manifest is stored only if no
// object is at its key (If-None-Match "*"); another manifest there is a
// *BundleExistsError naming the location. With bundle.Bundle:
//
//	out, err := bundle.Bundle(ctx, &bundle.BundleInput{..., Sink: w})
//	if err != nil { w.Abort(); return err }
//	up, err := w.Finish(ctx, out.ManifestName, out.ManifestBytes)
func (w *Writer) Finish(ctx context.Context, manifestName string, manifest []byte) (*UploadOutput, error) {
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return nil, errors.New("bundlestore: upload: writer already finished")
	}
	w.finished = true
	w.mu.Unlock()
	defer w.cancel()

	if err := w.wait(); err != nil {
		return nil, err
	}
	if err := checkFilename(manifestName); err != nil {
		return nil, err
	}
	key := Key(w.in.Prefix, manifestName)
	loc := Location{Bucket: w.in.Bucket, Prefix: strings.Trim(w.in.Prefix, "/"), Name: strings.TrimSuffix(manifestName, manifestSuffix)}
	// The manifest is a few KiB: looking for an intact copy would cost the
	// same round trip as sending it.
	if w.in.ReplaceManifest {
		if err := w.put(ctx, key, manifest, false); err != nil {
			return nil, err
		}
	} else if err := w.putManifestIfAbsent(ctx, loc, key, manifest); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return &UploadOutput{
		Location:      loc,
		ManifestKey:   key,
		ImageLocation: w.in.Bucket + "/" + key,
		Uploaded:      slices.Clone(w.uploaded),
		Skipped:       slices.Clone(w.skipped),
		BytesSent:     w.sent,
	}, nil
}

// Abort cancels the uploads in flight and waits for them to stop. Objects
// already stored stay (see Options.Ledger). Abort after Finish does nothing.
func (w *Writer) Abort() {
	w.mu.Lock()
	w.finished = true
	w.mu.Unlock()
	w.cancel()
	_ = w.g.Wait()
}

func (w *Writer) setErr(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// failure returns the first upload error, or the context's error.
func (w *Writer) failure() error {
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("bundlestore: upload to bucket %q: %w", w.in.Bucket, err)
	}
	return errors.New("bundlestore: upload failed")
}

func (w *Writer) where(key string) string {
	s := "s3://" + w.in.Bucket + "/" + key
	if w.in.Region != "" {
		s += " (" + w.in.Region + ")"
	}
	return s
}

// putManifestIfAbsent stores the manifest at key only if no object is
// there: S3 checks If-None-Match "*" as it stores the object, so a
// manifest stored by another upload since the location was checked is
// never replaced (412 Precondition Failed, a *BundleExistsError). An
// object equal to the manifest (a retried request whose first answer was
// lost, or an identical upload before) counts as stored; it is reported in
// Skipped and not recorded in the ledger, as this Writer cannot tell that
// it stored it.
func (w *Writer) putManifestIfAbsent(ctx context.Context, loc Location, key string, manifest []byte) error {
	err := w.putObject(ctx, key, manifest, true)
	if err == nil || !isPreconditionFailed(err) {
		return err
	}
	intact, ierr := w.intact(ctx, key, manifest)
	if ierr != nil {
		return errors.Join(fmt.Errorf("bundlestore: upload %s: a manifest is already there: %w", w.where(key), err), ierr)
	}
	if !intact {
		return fmt.Errorf("bundlestore: upload %s: %w", w.where(key), &BundleExistsError{Location: loc, Region: w.in.Region, AtUpload: true, Err: err})
	}
	w.opts.logf("%s already holds this manifest; not sending it again", w.where(key))
	w.mu.Lock()
	w.skipped = append(w.skipped, key)
	w.mu.Unlock()
	w.progress(int64(len(manifest)))
	return nil
}

// put stores body at key with the bundle ACL and a CRC-32 checksum S3
// verifies, unless resume is true and an intact copy is already there.
func (w *Writer) put(ctx context.Context, key string, body []byte, resume bool) error {
	size := int64(len(body))
	if resume {
		intact, err := w.intact(ctx, key, body)
		if err != nil {
			return err
		}
		if intact {
			w.opts.logf("%s is already stored intact; not sending it again", w.where(key))
			w.mu.Lock()
			w.skipped = append(w.skipped, key)
			w.mu.Unlock()
			w.progress(size)
			return nil
		}
	}
	return w.putObject(ctx, key, body, false)
}

// putObject sends body to key with the bundle ACL and a CRC-32 checksum,
// only if no object is there when ifAbsent is set, and records it.
func (w *Writer) putObject(ctx context.Context, key string, body []byte, ifAbsent bool) error {
	size := int64(len(body))
	in := &s3.PutObjectInput{
		Bucket:        aws.String(w.in.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(size),
		// S3 refuses the object unless its CRC-32 matches. A CRC-32 costs
		// a tenth of an MD5 (Content-MD5) on the sender and catches the
		// same transfer errors; the SDK computes it.
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		ACL:               CannedACL,
	}
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := w.api.PutObject(ctx, in)
	if err != nil {
		if awserr.Code(err) == "AccessControlListNotSupported" {
			return fmt.Errorf("bundlestore: upload %s: %w", w.where(key), &BucketError{
				Bucket: w.in.Bucket, Problem: BucketACLsDisabled, Err: err,
			})
		}
		if ifAbsent && isPreconditionFailed(err) {
			return err // the caller describes it
		}
		return fmt.Errorf("bundlestore: upload %s: %w", w.where(key), err)
	}
	w.record(key)
	w.mu.Lock()
	w.uploaded = append(w.uploaded, key)
	w.sent += size
	w.mu.Unlock()
	w.progress(size)
	return nil
}

// intact reports whether key holds an object with body's size whose ETag
// is body's MD5 sum (the ETag of an object stored by a single PutObject).
// The MD5 is computed only when there is an object to compare with.
func (w *Writer) intact(ctx context.Context, key string, body []byte) (bool, error) {
	head, err := w.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(w.in.Bucket), Key: aws.String(key)})
	switch {
	case err == nil:
		if head.ContentLength != nil && *head.ContentLength != int64(len(body)) {
			return false, nil
		}
		sum := md5.Sum(body)
		etag := strings.Trim(aws.ToString(head.ETag), `"`)
		return strings.EqualFold(etag, hex.EncodeToString(sum[:])), nil
	case isNotFound(err), isForbidden(err):
		// Absent, or not allowed to look (S3 answers 403 for a missing
		// key without s3:ListBucket): send it.
		return false, nil
	default:
		return false, fmt.Errorf("bundlestore: look for %s: %w", w.where(key), err)
	}
}

// record records key in the ledger, with deleting it as the undo.
func (w *Writer) record(key string) {
	l := w.opts.Ledger
	if l == nil {
		return
	}
	api, bucket := w.api, w.in.Bucket
	l.Record(ledger.Resource{Kind: ledger.KindS3Object, ID: bucket + "/" + key, Region: w.in.Region},
		func(ctx context.Context) error {
			_, err := api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			return err
		})
}

func (w *Writer) progress(n int64) {
	if w.opts.Progress == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done += n
	w.opts.Progress(w.done, w.in.TotalSize)
}

// checkFilename refuses names that would escape the prefix.
func checkFilename(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("bundlestore: invalid bundle file name %q", name)
	}
	return nil
}

// UploadInput says which bundle [Upload] stores and where.
type UploadInput struct {
	// ManifestPath is the bundle's manifest file; the parts it lists are
	// read from the same directory. Required.
	ManifestPath string
	// Bucket is the S3 bucket. Required.
	Bucket string
	// Prefix is the key prefix of the bundle's objects; empty means the top
	// of the bucket.
	Prefix string
	// Region is the bucket's region, for messages and ledger records.
	Region string
	// ReplaceManifest lets the manifest replace one already at its key
	// (see WriterInput.ReplaceManifest).
	ReplaceManifest bool
}

// Upload stores a bundle from a directory in S3: every part listed in the
// manifest (concurrently, see Options.Concurrency), then the manifest, each
// with the canned ACL aws-exec-read and a CRC-32 checksum, at key
// "<prefix>/<file name>". Each part's SHA-1 is checked against the manifest
// before it is sent (a mismatch is a *bundle.PartDigestError). Parts
// already stored intact by an interrupted upload are not sent again unless
// Options.DisableResume is set. The manifest is sent only after every part
// succeeded.
func Upload(ctx context.Context, api UploadAPI, in *UploadInput, optFns ...func(*Options)) (*UploadOutput, error) {
	if in == nil || in.ManifestPath == "" {
		return nil, errors.New("bundlestore: upload: manifest path is required")
	}
	raw, err := os.ReadFile(in.ManifestPath)
	if err != nil {
		return nil, fmt.Errorf("bundlestore: upload: %w", err)
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("bundlestore: upload %s: %w", in.ManifestPath, err)
	}
	dir := filepath.Dir(in.ManifestPath)
	w, err := NewWriter(ctx, api, &WriterInput{
		Bucket:          in.Bucket,
		Prefix:          in.Prefix,
		Region:          in.Region,
		TotalSize:       m.BundledSize + int64(len(raw)),
		ReplaceManifest: in.ReplaceManifest,
	}, optFns...)
	if err != nil {
		return nil, err
	}
	for _, p := range m.Parts {
		err := w.submit(ctx, p.Filename, func(buf []byte) ([]byte, error) {
			return readPartFile(buf, bundle.Dir(dir), p, m.MaxPartSize())
		})
		if err != nil {
			w.Abort()
			return nil, err
		}
	}
	return w.Finish(ctx, filepath.Base(in.ManifestPath), raw)
}

// readPartFile reads the part file p in dir into buf and checks its SHA-1
// against the manifest. Only a regular file is a part (see
// bundle.Dir.OpenPart): a FIFO there is an error, not a wait for a writer.
// No more than limit+1 bytes are read (the largest part the manifest
// allows, and one byte to tell a larger file), so a part file of any size
// costs at most one part's memory.
func readPartFile(buf []byte, dir bundle.Dir, p bundle.PartInfo, limit int64) ([]byte, error) {
	f, err := dir.OpenPart(context.Background(), p.Filename)
	if err != nil {
		return buf, &bundle.PartError{Index: p.Index, Filename: p.Filename, Err: err}
	}
	defer f.Close()
	start := len(buf)
	buf, err = readAll(buf, io.LimitReader(f, limit+1))
	if err != nil {
		return buf, &bundle.PartError{Index: p.Index, Filename: p.Filename, Err: err}
	}
	if int64(len(buf)-start) > limit {
		return buf, &bundle.PartError{Index: p.Index, Filename: p.Filename, Err: fmt.Errorf("larger than %d bytes, the largest part the manifest allows", limit)}
	}
	if got := sha1.Sum(buf); got != p.Digest {
		return buf, &bundle.PartDigestError{Index: p.Index, Filename: p.Filename, Want: hex.EncodeToString(p.Digest[:]), Got: hex.EncodeToString(got[:])}
	}
	return buf, nil
}
