package instance

//lint:file-ignore SA1019 Packer's Ui.Message prints the indented detail lines this output is made of; Say would make each a "==>" heading

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// bundleSink stores a bundle: the parts as bundle.Bundle makes them, then
// the manifest (Finish), or nothing more (Abort).
type bundleSink interface {
	bundle.PartSink
	Finish(ctx context.Context, manifestName string, manifest []byte) error
	Abort()
}

// streamInput describes one run of the bundle script and what is made of
// its output.
type streamInput struct {
	// Comm runs the script on the build instance.
	Comm packersdk.Communicator
	// Command is the command line that reads the script from stdin.
	Command string
	// Script is the bundle script.
	Script string
	// Bundle is the bundle to make; Image, Size and Sink are filled in.
	Bundle bundle.BundleInput
	// Sink stores the bundle.
	Sink bundleSink
	// Options tune the bundler.
	Options bundle.Options
	// UI shows progress and the script's diagnostics; may be nil.
	UI packersdk.Ui
	// StopScript, when set, is run with Command after the stream failed or
	// was cancelled, to stop the bundle script and have it clean up on the
	// instance (see stopScript).
	StopScript string
	// WaitAfterFailure bounds the wait for the remote command to end after
	// the stream failed. Zero means 30 seconds.
	WaitAfterFailure time.Duration
}

// streamOutput describes the bundle made.
type streamOutput struct {
	Bundle *bundle.BundleOutput
	// ImageSize is the image's size in bytes.
	ImageSize int64
	// Transferred is the number of compressed bytes read from the instance.
	Transferred int64
}

// maxTrailing is how much output after the image stream is read and
// ignored with a warning; more is an error.
const maxTrailing = 64 << 10

// maxStderr is how much of the script's standard error is kept for error
// messages.
const maxStderr = 8 << 10

// streamBundle runs the bundle script on the instance, reads the image it
// streams, bundles it into in.Sink as it arrives and, once the script has
// succeeded and every part is stored, stores the manifest. On failure the
// sink is aborted; the parts it stored are its owner's to remove.
func streamBundle(parent context.Context, in *streamInput) (_ *streamOutput, err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	run, err := startScript(ctx, in)
	if err != nil {
		in.Sink.Abort()
		return nil, err
	}
	// Cancellation stops reading, which ends the remote command.
	stop := context.AfterFunc(ctx, func() { run.pr.CloseWithError(context.Cause(ctx)) })
	defer stop()
	defer func() {
		if err != nil {
			err = run.fail(parent, err)
		}
	}()

	size, zr, err := run.openImage()
	if err != nil {
		return nil, err
	}
	var image io.Reader = zr
	if in.UI != nil {
		tracked := in.UI.TrackProgress("bundle", 0, size, io.NopCloser(zr))
		defer tracked.Close()
		image = tracked
	}
	bin := in.Bundle
	bin.Image = image
	bin.Size = size
	bin.Sink = in.Sink
	opts := in.Options
	out, err := bundle.Bundle(ctx, &bin, func(o *bundle.Options) { *o = opts })
	if err != nil {
		return nil, fmt.Errorf("bundle the image: %w", err)
	}
	run.made = out
	if err := run.finish(ctx); err != nil {
		return nil, err
	}
	return &streamOutput{Bundle: out, ImageSize: size, Transferred: run.counted.n}, nil
}

// scriptRun is one run of the bundle script on the instance: the stream
// its standard output arrives on, the tail of its standard error, its exit
// and, once made, the bundle of the image it streamed.
type scriptRun struct {
	in *streamInput
	// pr is read through counted, which counts the bytes transferred from
	// the instance, and, after the size line, through br.
	pr      *io.PipeReader
	counted *countingReader
	br      *bufio.Reader
	stderr  *tailBuffer
	exit    *exitWaiter
	// made is the bundle once every part is stored.
	made *bundle.BundleOutput
}

// startScript starts the bundle script on the instance, with its standard
// output going into a pipe that the image is read from.
func startScript(ctx context.Context, in *streamInput) (*scriptRun, error) {
	pr, pw := io.Pipe()
	r := &scriptRun{
		in:      in,
		pr:      pr,
		counted: &countingReader{r: pr},
		stderr:  &tailBuffer{max: maxStderr, ui: in.UI},
	}
	cmd := &packersdk.RemoteCmd{
		Command: in.Command,
		Stdin:   strings.NewReader(in.Script),
		Stdout:  pw,
		Stderr:  r.stderr,
	}
	if err := in.Comm.Start(ctx, cmd); err != nil {
		return nil, fmt.Errorf("start the bundle script on the instance: %w", err)
	}
	r.exit = newExitWaiter(cmd, pw)
	return r, nil
}

// openImage reads the size line the script sends first and opens the
// compressed image that follows it.
func (r *scriptRun) openImage() (int64, *gzip.Reader, error) {
	size, err := readSizeHeader(r.counted)
	if err != nil {
		return 0, nil, r.sizeLineError(err)
	}
	r.br = bufio.NewReader(r.counted)
	zr, err := gzip.NewReader(r.br)
	if err != nil {
		return 0, nil, fmt.Errorf("read the image stream from the instance: %w%s", err, r.stderr.suffix())
	}
	zr.Multistream(false)
	return size, zr, nil
}

// sizeLineError explains why the size line could not be read. Most likely
// the script failed before streaming, so its exit status is reported when
// it has ended with one.
func (r *scriptRun) sizeLineError(err error) error {
	// A line without an end is still being written; the script cannot
	// exit until reading stops.
	if errors.Is(err, errSizeLineTooLong) {
		return fmt.Errorf("read the image size from the bundle script: %w%s", err, r.stderr.suffix())
	}
	if status, ok := r.exit.wait(5 * time.Second); ok && status != 0 {
		return fmt.Errorf("the bundle script on the instance exited %d without streaming an image%s", status, r.stderr.suffix())
	}
	return fmt.Errorf("read the image size from the bundle script: %w%s", err, r.stderr.suffix())
}

// finish completes a run whose image is bundled: it reads what the script
// wrote after the image, waits for the script to succeed and only then
// stores the manifest, so that a bundle is complete only when the script
// vouched for the whole image.
func (r *scriptRun) finish(ctx context.Context) error {
	if err := r.drainTrailing(); err != nil {
		return err
	}
	select {
	case <-r.exit.done:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if status := r.exit.status; status != 0 {
		return fmt.Errorf("the bundle script on the instance exited %d%s", status, r.stderr.suffix())
	}
	if err := r.in.Sink.Finish(ctx, r.made.ManifestName, r.made.ManifestBytes); err != nil {
		return fmt.Errorf("store the bundle manifest: %w", err)
	}
	return nil
}

// drainTrailing reads what the script wrote after the image. It should
// write nothing; should it, reading lets its writes complete so that it
// can exit. A little is only a warning (the image is complete and
// verified), much is an error.
func (r *scriptRun) drainTrailing() error {
	trailing, err := io.Copy(io.Discard, io.LimitReader(r.br, maxTrailing+1))
	switch {
	case err != nil:
		return fmt.Errorf("read the end of the stream from the instance: %w%s", err, r.stderr.suffix())
	case trailing > maxTrailing:
		return fmt.Errorf("the bundle script wrote more than %d bytes after the image; the stream is not what the script should send%s", maxTrailing, r.stderr.suffix())
	case trailing > 0 && r.in.UI != nil:
		r.in.UI.Error(fmt.Sprintf("Warning: ignored %d bytes the bundle script wrote after the image", trailing))
	}
	return nil
}

// fail ends a run that failed or was cancelled with err, and returns the
// error to report. It removes the parts of a bundle that was made but not
// completed, as the bundler does when it fails itself, aborts the sink,
// and stops the script: with nobody reading, its output would block until
// the connection closed. It then waits a while for the script to exit, so
// that the error can say how it ended.
func (r *scriptRun) fail(parent context.Context, err error) error {
	in := r.in
	var rmErr error
	if r.made != nil {
		rmErr = removeParts(in.Sink, r.made.Manifest)
	}
	in.Sink.Abort()
	r.pr.CloseWithError(errors.New("bundling stopped"))
	var serr error
	if in.StopScript != "" {
		serr = stopRemote(in.Comm, in.Command, in.StopScript, in.UI)
	}
	status, ok := r.exit.wait(cmp.Or(in.WaitAfterFailure, 30*time.Second))
	switch {
	case context.Cause(parent) != nil:
		// Cancelled: the script was stopped; its output says nothing
		// about why.
		err = fmt.Errorf("bundling stopped: %w", context.Cause(parent))
	case ok && status != 0:
		suffix := r.stderr.suffix()
		if strings.Contains(err.Error(), suffix) {
			suffix = ""
		}
		err = fmt.Errorf("%w (the bundle script exited %d%s)", err, status, suffix)
	}
	return errors.Join(err, rmErr, serr)
}

// stopRemote runs the stop script on the instance, on a context of its
// own since the build's may be cancelled, and waits for it.
func stopRemote(comm packersdk.Communicator, command, script string, ui packersdk.Ui) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &tailBuffer{max: maxStderr, ui: ui}
	cmd := &packersdk.RemoteCmd{
		Command: command,
		Stdin:   strings.NewReader(script),
		Stdout:  out,
		Stderr:  out,
	}
	if err := comm.Start(ctx, cmd); err != nil {
		return fmt.Errorf("stop the bundle script on the instance: %w", err)
	}
	done := make(chan int, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case status := <-done:
		if status != 0 {
			return fmt.Errorf("stop the bundle script on the instance: exit status %d%s", status, out.suffix())
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop the bundle script on the instance: no answer within 2 minutes; check %s on the instance", "bundle_scratch_dir")
	}
}

// removeParts deletes the parts of m from sink when it can remove parts.
func removeParts(sink bundleSink, m *bundle.Manifest) error {
	r, ok := sink.(bundle.PartRemover)
	if !ok || m == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var errs []error
	for _, p := range m.Parts {
		if err := r.RemovePart(ctx, p.Filename); err != nil {
			errs = append(errs, fmt.Errorf("remove part %s: %w", p.Filename, err))
		}
	}
	return errors.Join(errs...)
}

// exitWaiter waits for a remote command to end, once, and remembers its
// exit status.
type exitWaiter struct {
	done   chan struct{}
	status int
}

// newExitWaiter starts waiting for cmd; when it ends, w is closed, since
// everything the command wrote has been delivered.
func newExitWaiter(cmd *packersdk.RemoteCmd, w io.Closer) *exitWaiter {
	e := &exitWaiter{done: make(chan struct{})}
	go func() {
		e.status = cmd.Wait()
		w.Close()
		close(e.done)
	}()
	return e
}

// wait returns the exit status and true once the command has ended, or
// false after d.
func (e *exitWaiter) wait(d time.Duration) (int, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-e.done:
		return e.status, true
	case <-t.C:
		return 0, false
	}
}

// maxSizeLine bounds the size line, newline included: the header and at
// most 11 digits (10 GiB) fit with room to spare.
const maxSizeLine = 64

// errSizeLineTooLong is returned for a first line longer than maxSizeLine.
var errSizeLineTooLong = fmt.Errorf("the first line is longer than %d bytes; it is not a size line", maxSizeLine)

// readSizeHeader reads the "AMI-BUNDLE-SIZE <bytes>" line from r, one byte
// at a time so that it reads nothing after the line and at most
// maxSizeLine bytes of it, whatever the instance sends.
func readSizeHeader(r io.Reader) (int64, error) {
	var buf [maxSizeLine]byte
	n := 0
	for {
		if n == len(buf) {
			return 0, errSizeLineTooLong
		}
		m, err := r.Read(buf[n : n+1])
		n += m
		if m == 1 && buf[n-1] == '\n' {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, errors.New("the stream ended before the size line")
			}
			return 0, err
		}
	}
	line := string(buf[:n])
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), sizeHeader)
	if !ok {
		return 0, fmt.Errorf("unexpected first line %.60q", line)
	}
	size, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || size <= 0 || size > bundle.MaxImageSize {
		return 0, fmt.Errorf("image size %q is not 1 byte to 10 GiB", rest)
	}
	return size, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// tailBuffer keeps the last max bytes written to it and shows each
// complete line on the UI.
type tailBuffer struct {
	max int
	ui  packersdk.Ui

	mu   sync.Mutex
	buf  []byte
	line []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	t.line = append(t.line, p...)
	for {
		i := bytes.IndexByte(t.line, '\n')
		if i < 0 {
			break
		}
		if s := strings.TrimSpace(string(t.line[:i])); s != "" && t.ui != nil {
			t.ui.Message(s)
		}
		t.line = t.line[i+1:]
	}
	if len(t.line) > t.max {
		t.line = t.line[len(t.line)-t.max:]
	}
	return len(p), nil
}

// suffix returns ": <last lines of standard error>" or "".
func (t *tailBuffer) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return ": " + strings.Join(lines, "; ")
}
