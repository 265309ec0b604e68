//go:build unix

package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// fakeComm is a packersdk.Communicator whose Start calls run, in the
// background, with the command; it logs every command and its stdin.
type fakeComm struct {
	packersdk.Communicator // other methods are not used
	run                    func(cmd string, stdin io.Reader, stdout, stderr io.Writer) int

	mu       sync.Mutex
	commands []string
	stdins   []string
}

func (f *fakeComm) Start(_ context.Context, c *packersdk.RemoteCmd) error {
	stdin, err := io.ReadAll(c.Stdin)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.commands = append(f.commands, c.Command)
	f.stdins = append(f.stdins, string(stdin))
	f.mu.Unlock()
	go func() {
		c.SetExited(f.run(c.Command, bytes.NewReader(stdin), c.Stdout, c.Stderr))
	}()
	return nil
}

// localShell runs commands with the local sh, as sshd would on the build
// instance.
func localShell(cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := exec.Command("sh", "-c", cmd)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	if err := c.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 255
	}
	return 0
}

// canned returns a run function that writes out to stdout, errText to
// stderr, and exits with status.
func canned(out []byte, errText string, status int) func(string, io.Reader, io.Writer, io.Writer) int {
	return func(_ string, _ io.Reader, stdout, stderr io.Writer) int {
		io.WriteString(stderr, errText)
		stdout.Write(out)
		return status
	}
}

// gzipStream returns the script protocol's output for img: the size header
// (announcing size) and img compressed.
func gzipStream(t *testing.T, img []byte, size int64) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%d\n", sizeHeader, size)
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(img); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dirSink is a bundleSink that stores the bundle in a directory.
type dirSink struct {
	bundle.Dir
	mu       sync.Mutex
	finished bool
	aborted  bool
}

func (d *dirSink) Finish(_ context.Context, name string, manifest []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finished = true
	return os.WriteFile(filepath.Join(string(d.Dir), name), manifest, 0o600)
}

func (d *dirSink) Abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
}

// testCerts returns a user and an EC2 certificate with keys.
func testCerts(t *testing.T) *certs {
	t.Helper()
	uc, uk, err := generateCert("user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ec, _, err := generateCert("ec2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &certs{UserCert: uc, UserKey: uk, EC2Cert: ec}
}

func streamTestInput(cs *certs, comm packersdk.Communicator, script string, sink bundleSink) *streamInput {
	return &streamInput{
		Comm:    comm,
		Command: bundleCommand(""),
		Script:  script,
		Bundle: bundle.BundleInput{
			Name:         "image",
			Architecture: bundle.ArchX86_64,
			User:         "123456789012",
			UserCert:     cs.UserCert,
			UserKey:      cs.UserKey,
			EC2Cert:      cs.EC2Cert,
			BlockDeviceMappings: manifestMappings("/dev/sda1", []bundleVirtual{
				{Virtual: "ephemeral0", Device: "/dev/sdb"},
			}),
		},
		Sink:             sink,
		UI:               &packersdk.BasicUi{Writer: io.Discard, ErrorWriter: io.Discard, PB: &packersdk.NoopProgressTracker{}},
		WaitAfterFailure: 5 * time.Second,
	}
}

// TestStreamBundleRoundTrip streams an image through the real file-mode
// script (run by the local shell standing in for the instance), bundles it
// into a directory, and reads the bundle back with the user's key.
func TestStreamBundleRoundTrip(t *testing.T) {
	cs := testCerts(t)
	tests := []struct {
		name string
		size int
	}{
		{"small", 4097},
		{"three parts", 2*bundle.PartSize + 5<<20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "root.img")
			img := testImage(tc.size)
			if err := os.WriteFile(src, img, 0o600); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			sink := &dirSink{Dir: bundle.Dir(out)}
			comm := &fakeComm{run: localShell}
			script := bundleScript(scriptOptions{Source: src})
			res, err := streamBundle(context.Background(), streamTestInput(cs, comm, script, sink))
			if err != nil {
				t.Fatalf("streamBundle: %v", err)
			}
			if !sink.finished || sink.aborted {
				t.Errorf("sink finished=%v aborted=%v, want finished only", sink.finished, sink.aborted)
			}
			if res.ImageSize != int64(len(img)) {
				t.Errorf("image size %d, want %d", res.ImageSize, len(img))
			}
			if res.Transferred <= 0 {
				t.Error("no transferred bytes counted")
			}

			// The instance ran only "sh -s"; the script came on stdin.
			if len(comm.commands) != 1 || comm.commands[0] != "sh -s" {
				t.Errorf("commands run = %q, want [\"sh -s\"]", comm.commands)
			}
			checkNoSecrets(t, comm.stdins[0])
			for _, pemText := range []string{"BEGIN", "PRIVATE"} {
				if strings.Contains(comm.commands[0]+comm.stdins[0], pemText) {
					t.Errorf("the instance was sent %q", pemText)
				}
			}

			manifest, err := os.ReadFile(filepath.Join(out, "image.manifest.xml"))
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			uo, err := bundle.Unbundle(context.Background(), &bundle.UnbundleInput{
				Manifest: manifest,
				Source:   bundle.Dir(out),
				UserKey:  cs.UserKey,
				UserCert: cs.UserCert,
			}, &got)
			if err != nil {
				t.Fatalf("unbundle: %v", err)
			}
			if !uo.SignatureVerified {
				t.Error("signature not verified")
			}
			if !bytes.Equal(got.Bytes(), img) {
				t.Errorf("unbundled image differs (%d bytes, want %d)", got.Len(), len(img))
			}
			m := uo.Manifest
			if want := (len(img) + bundle.PartSize) / bundle.PartSize; tc.size > bundle.PartSize && len(m.Parts) < 2 {
				t.Errorf("%d parts, want about %d", len(m.Parts), want)
			}
			bdm := fmt.Sprint(m.BlockDeviceMappings)
			for _, w := range []string{"{ami sda1}", "{root /dev/sda1}", "{ephemeral0 sdb}"} {
				if !strings.Contains(bdm, w) {
					t.Errorf("manifest mappings %s lack %s", bdm, w)
				}
			}
		})
	}
}

func TestStreamBundleFailures(t *testing.T) {
	cs := testCerts(t)
	img := testImage(100000)
	full := gzipStream(t, img, int64(len(img)))
	tests := []struct {
		name string
		run  func(string, io.Reader, io.Writer, io.Writer) int
		want []string
	}{
		{
			name: "script fails before streaming",
			run:  canned(nil, "bundle: bundle_source /nope is neither a block device nor a regular file\n", 2),
			want: []string{"exited 2", "neither a block device"},
		},
		{
			name: "script fails after streaming",
			run:  canned(full, "umount: target is busy\n", 4),
			want: []string{"exited 4", "target is busy"},
		},
		{
			name: "garbage instead of the header",
			run:  canned([]byte("Welcome to the instance!\n"), "", 0),
			want: []string{"unexpected first line", "Welcome"},
		},
		{
			name: "announced size too big",
			run:  canned(gzipStream(t, img, int64(len(img))+1), "", 0),
			want: []string{"bundle the image"},
		},
		{
			name: "more than announced",
			run:  canned(gzipStream(t, img, int64(len(img))-10), "", 0),
			want: []string{"more than"},
		},
		{
			name: "truncated stream",
			run:  canned(full[:len(full)/2], "", 0),
			want: []string{"bundle the image"},
		},
		{
			name: "not gzip",
			run:  canned(append([]byte(sizeHeader+"5\n"), "hello"...), "", 0),
			want: []string{"read the image stream"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			sink := &dirSink{Dir: bundle.Dir(out)}
			_, err := streamBundle(context.Background(), streamTestInput(cs, &fakeComm{run: tc.run}, "true", sink))
			if err == nil {
				t.Fatal("streamBundle succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if sink.finished {
				t.Error("manifest stored after a failure")
			}
			if !sink.aborted {
				t.Error("sink not aborted after a failure")
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("files left in the sink: %v", entries)
			}
		})
	}
}

// TestStreamBundleTrailingOutput checks that output after the image stream
// is read, so the script's writes cannot block it: a little is ignored with
// a warning, much fails the bundle. Neither may hang.
func TestStreamBundleTrailingOutput(t *testing.T) {
	cs := testCerts(t)
	img := testImage(100000)
	full := gzipStream(t, img, int64(len(img)))
	tests := []struct {
		name     string
		trailing []byte
		wantErr  string
		wantWarn string
	}{
		{"none", nil, "", ""},
		{"a stray line", []byte("done\n"), "", "ignored 5 bytes the bundle script wrote after the image"},
		{"a flood", bytes.Repeat([]byte("x"), 4<<20), "wrote more than 65536 bytes after the image", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out := t.TempDir()
			sink := &dirSink{Dir: bundle.Dir(out)}
			var warnings bytes.Buffer
			in := streamTestInput(cs, &fakeComm{run: canned(append(slices.Clip(full), tc.trailing...), "", 0)}, "true", sink)
			in.UI = &packersdk.BasicUi{Writer: io.Discard, ErrorWriter: &warnings, PB: &packersdk.NoopProgressTracker{}}
			_, err := streamBundle(ctx, in)
			if ctx.Err() != nil {
				t.Fatal("streamBundle hung on output after the image")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				if sink.finished || !sink.aborted {
					t.Errorf("sink finished %t, aborted %t; want aborted", sink.finished, sink.aborted)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sink.finished {
				t.Error("manifest not stored")
			}
			if tc.wantWarn == "" && warnings.Len() > 0 || !strings.Contains(warnings.String(), tc.wantWarn) {
				t.Errorf("warnings = %q, want %q", warnings.String(), tc.wantWarn)
			}
		})
	}
}

// TestStreamBundleCancel cancels while the instance is still streaming
// and checks that streamBundle returns promptly.
func TestStreamBundleCancel(t *testing.T) {
	cs := testCerts(t)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	run := func(_ string, _ io.Reader, stdout, _ io.Writer) int {
		fmt.Fprintf(stdout, "%s%d\n", sizeHeader, 1<<20)
		zw := gzip.NewWriter(stdout)
		zw.Write(make([]byte, 1000))
		zw.Flush()
		cancel()
		<-release // the "instance" hangs
		return 0
	}
	defer close(release)
	sink := &dirSink{Dir: bundle.Dir(t.TempDir())}
	in := streamTestInput(cs, &fakeComm{run: run}, "true", sink)
	in.WaitAfterFailure = 100 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := streamBundle(ctx, in)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("streamBundle succeeded after cancellation")
		}
		if !sink.aborted || sink.finished {
			t.Errorf("sink aborted=%v finished=%v after cancellation", sink.aborted, sink.finished)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("streamBundle did not return after cancellation")
	}
}

func TestProgressSayer(t *testing.T) {
	var buf bytes.Buffer
	u := &packersdk.BasicUi{Writer: &buf, ErrorWriter: &buf}
	p := progressSayer(u)
	for done := int64(0); done <= 100; done += 5 {
		p(done<<20, 100<<20)
	}
	got := strings.Count(buf.String(), "Bundled ")
	if got != 4 {
		t.Errorf("%d progress lines, want 4 (25, 50, 75, 100%%):\n%s", got, buf.String())
	}
}

// endlessLine is a size line that does not end: up to max bytes of 'A'
// without a newline, then EOF (a bound only so that a reader without one
// fails rather than exhausting memory).
type endlessLine struct{ max, n int64 }

func (e *endlessLine) Read(p []byte) (int, error) {
	if e.n >= e.max {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), e.max-e.n)]
	for i := range p {
		p[i] = 'A'
	}
	e.n += int64(len(p))
	return len(p), nil
}

// countingWriter counts the bytes its writer took.
type countingWriter struct {
	w  io.Writer
	mu sync.Mutex
	n  int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.mu.Lock()
	c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingWriter) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestStreamBundleSizeLineBound checks that a size line without an end
// fails once it is longer than a size line can be, having read no more of
// it from the instance than that.
func TestStreamBundleSizeLineBound(t *testing.T) {
	cs := testCerts(t)
	written := make(chan *countingWriter, 1)
	run := func(_ string, _ io.Reader, stdout, _ io.Writer) int {
		cw := &countingWriter{w: stdout}
		written <- cw
		// The host reads through a pipe: what it took is what it read.
		_, _ = io.Copy(cw, &endlessLine{max: 64 << 20})
		return 0
	}
	sink := &dirSink{Dir: bundle.Dir(t.TempDir())}
	_, err := streamBundle(context.Background(), streamTestInput(cs, &fakeComm{run: run}, "true", sink))
	if err == nil {
		t.Fatal("streamBundle succeeded, want an error")
	}
	if want := "longer than 64 bytes"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	if n := (<-written).count(); n > maxSizeLine {
		t.Errorf("read %d bytes of the size line, want at most %d", n, maxSizeLine)
	}
}

// TestReadSizeHeader checks the size line parser: it reads the line and
// nothing after it, and never more than maxSizeLine bytes.
func TestReadSizeHeader(t *testing.T) {
	long := sizeHeader + strings.Repeat("0", maxSizeLine-len(sizeHeader)-3) + "42\n"
	tests := []struct {
		name     string
		in       io.Reader
		want     int64
		wantErr  string
		wantRead int64
	}{
		{name: "size", in: strings.NewReader(sizeHeader + "4096\nrest"), want: 4096, wantRead: int64(len(sizeHeader) + 5)},
		{name: "crlf", in: strings.NewReader(sizeHeader + "7\r\nrest"), want: 7, wantRead: int64(len(sizeHeader) + 3)},
		{name: "longest line", in: strings.NewReader(long + "rest"), want: 42, wantRead: maxSizeLine},
		{name: "one byte too long", in: strings.NewReader("x" + long), wantErr: "longer than 64 bytes", wantRead: maxSizeLine},
		{name: "endless", in: &endlessLine{max: 1 << 30}, wantErr: "longer than 64 bytes", wantRead: maxSizeLine},
		{name: "empty", in: strings.NewReader(""), wantErr: "ended before the size line"},
		{name: "no newline", in: strings.NewReader(sizeHeader + "5"), wantErr: "ended before the size line", wantRead: int64(len(sizeHeader) + 1)},
		{name: "garbage", in: strings.NewReader("Welcome\n"), wantErr: "unexpected first line", wantRead: 8},
		{name: "zero", in: strings.NewReader(sizeHeader + "0\n"), wantErr: "not 1 byte to 10 GiB", wantRead: int64(len(sizeHeader) + 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: tc.in}
			got, err := readSizeHeader(cr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil || got != tc.want {
				t.Errorf("readSizeHeader = %d, %v, want %d", got, err, tc.want)
			}
			if cr.n != tc.wantRead {
				t.Errorf("read %d bytes, want %d", cr.n, tc.wantRead)
			}
		})
	}
}
