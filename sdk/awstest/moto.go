//go:build unix

package awstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MotoInstallHint tells how to install moto_server when it is missing.
const MotoInstallHint = "install it with: pip install 'moto[server]'"

// MotoOptions configures [StartMoto]. The zero value starts moto_server from
// PATH with moto's defaults.
type MotoOptions struct {
	// Env holds extra environment variables for the server, on top of the
	// current process environment (for example MOTO_AMIS_PATH).
	Env map[string]string
	// LoadDefaultAMIs sets MOTO_EC2_LOAD_DEFAULT_AMIS. nil keeps moto's
	// default (load them). Disabling them makes the first call per region
	// faster and keeps DescribeImages and DescribeSnapshots small.
	LoadDefaultAMIs *bool
	// Binary is the moto_server executable. Empty means "moto_server" from PATH.
	Binary string
	// StartTimeout bounds the wait until the server answers. Zero means 30s.
	StartTimeout time.Duration
	// Output, when set, receives the server's stdout and stderr.
	Output io.Writer
}

// Moto is a running moto_server.
type Moto struct {
	// Endpoint is the base URL, http://127.0.0.1:PORT.
	Endpoint string
	// Port is the TCP port on 127.0.0.1.
	Port int

	cmd      *exec.Cmd
	out      *tailBuffer
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// StartMoto starts moto_server on a free 127.0.0.1 port and waits until it
// answers. ctx bounds the start only; the server runs until [Moto.Stop].
func StartMoto(ctx context.Context, opts MotoOptions) (*Moto, error) {
	bin := opts.Binary
	if bin == "" {
		bin = "moto_server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("start moto: %s not found on PATH: %w; %s", bin, err, MotoInstallHint)
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The free port may be taken between probing and binding; retry then.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		m, err := startMotoOnce(ctx, path, opts)
		if err == nil {
			return m, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errExitedEarly) {
			break
		}
	}
	return nil, lastErr
}

var errExitedEarly = errors.New("exited before answering")

func startMotoOnce(ctx context.Context, path string, opts MotoOptions) (*Moto, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = os.Environ()
	if opts.LoadDefaultAMIs != nil {
		cmd.Env = append(cmd.Env, "MOTO_EC2_LOAD_DEFAULT_AMIS="+strconv.FormatBool(*opts.LoadDefaultAMIs))
	}
	for k, v := range opts.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &tailBuffer{max: 16 << 10}
	var w io.Writer = out
	if opts.Output != nil {
		w = io.MultiWriter(out, opts.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto (%s): %w", path, err)
	}
	m := &Moto{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		Port:     port,
		cmd:      cmd,
		out:      out,
		done:     make(chan struct{}),
	}
	go func() {
		m.waitErr = cmd.Wait()
		close(m.done)
	}()
	if err := m.waitReady(ctx); err != nil {
		_ = m.Stop()
		return nil, err
	}
	return m, nil
}

func (m *Moto) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/moto-api/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-m.done:
			return fmt.Errorf("start moto on port %d: %w (%v); output:\n%s", m.Port, errExitedEarly, m.waitErr, m.out.String())
		case <-ctx.Done():
			return fmt.Errorf("start moto on port %d: not answering: %w; output:\n%s", m.Port, ctx.Err(), m.out.String())
		case <-tick.C:
		}
	}
}

// Reset clears all of moto's state (POST /moto-api/reset). It affects every
// user of this server.
func (m *Moto) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// Output returns the tail of the server's output (last 16 KiB).
func (m *Moto) Output() string { return m.out.String() }

// Stop kills the server and its process group and waits for it to exit.
// It is safe to call more than once.
func (m *Moto) Stop() error {
	m.stopOnce.Do(func() {
		m.stopErr = killGroup(m.cmd, m.done, 10*time.Second)
	})
	return m.stopErr
}

// NewMoto starts moto_server for a test and stops it in t.Cleanup. It fails
// the test (never skips it) when moto_server cannot be started.
func NewMoto(t testing.TB, opts MotoOptions) *Moto {
	t.Helper()
	m, err := StartMoto(context.Background(), opts)
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("awstest: stop moto: %v", err)
		}
	})
	return m
}

// killGroup sends SIGKILL to the process group of cmd and waits until the
// process has been reaped (done is closed by the goroutine calling Wait).
func killGroup(cmd *exec.Cmd, done <-chan struct{}, wait time.Duration) error {
	select {
	case <-done:
		return nil
	default:
	}
	pid := cmd.Process.Pid
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = cmd.Process.Kill()
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("process %d did not exit within %s after SIGKILL", pid, wait)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
