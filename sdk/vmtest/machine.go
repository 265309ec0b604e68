//go:build linux

package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Machine is a running qemu guest started by [Boot]. Its methods are safe
// for concurrent use. Close it on every path.
type Machine struct {
	// Host is 127.0.0.1 and Port the host port forwarded to the guest's
	// SSH port.
	Host string
	Port int
	// Dir is the machine's temporary directory (overlay, extra disks,
	// console log); Close removes it. Overlay is the root disk's qcow2
	// overlay in Dir, backed read-only by BootOptions.Disk.
	Dir, Overlay string
	// BootTime is how long the guest took from qemu's start until SSH
	// answered.
	BootTime time.Duration

	image       *Image
	consolePath string
	stderr      *capBuffer

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	waitErr   error
	hostKey   ssh.PublicKey
	clients   map[string]*ssh.Client
	closed    bool
	console   []byte
	closeOnce sync.Once
	closeErr  error
}

// Addr returns the SSH address, 127.0.0.1:Port.
func (m *Machine) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// Image returns the image whose kernel and key the machine uses.
func (m *Machine) Image() *Image { return m.image }

// PID returns qemu's process id.
func (m *Machine) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Done returns a channel closed when qemu has exited (the guest powered off
// or rebooted, which -no-reboot turns into an exit, or Close killed it).
func (m *Machine) Done() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done
}

// HostKey returns the host key the guest's SSH server presented at boot
// (its Ed25519 key when it has one). Later connections insist on it.
func (m *Machine) HostKey() ssh.PublicKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hostKey
}

// Console returns the guest's serial console output so far (kernel and
// systemd messages). After Close it returns the output up to Close.
func (m *Machine) Console() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return string(m.console)
	}
	data, _ := os.ReadFile(m.consolePath)
	return string(data)
}

// ConsoleTail returns the last n lines of [Machine.Console].
func (m *Machine) ConsoleTail(n int) string { return lastLines(m.Console(), n) }

// Client returns the SSH connection as root that Boot made. The machine
// owns it: do not close it.
func (m *Machine) Client() *ssh.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clients["root"]
}

// Dial opens a new SSH connection as user (root or [User]) with the
// harness key, checking the host key against [Machine.HostKey]. The caller
// closes it.
func (m *Machine) Dial(ctx context.Context, user string) (*ssh.Client, error) {
	c, _, err := m.dialOnce(ctx, user, m.HostKey(), 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("ssh %s@%s: %w", user, m.Addr(), err)
	}
	return c, nil
}

// Run runs cmd as root with the guest's shell and returns its output. An
// error names the command and includes the end of its stderr; a non-zero
// exit status is a *ssh.ExitError inside it (errors.As).
func (m *Machine) Run(ctx context.Context, cmd string) (stdout, stderr string, err error) {
	return m.RunAs(ctx, "root", cmd)
}

// RunAs is [Machine.Run] as user, e.g. [User] to test sudo.
func (m *Machine) RunAs(ctx context.Context, user, cmd string) (stdout, stderr string, err error) {
	var out, errOut capBuffer
	err = m.Exec(ctx, user, cmd, nil, &out, &errOut)
	stdout, stderr = out.String(), errOut.String()
	if err != nil {
		tail := ""
		if s := strings.TrimSpace(stderr); s != "" {
			tail = "\n" + indent(lastLines(s, 10))
		}
		return stdout, stderr, fmt.Errorf("run %q as %s on %s: %w%s", cmd, user, m.Addr(), err, tail)
	}
	return stdout, stderr, nil
}

// Exec runs cmd as user with stdin (may be nil) and streams its output to
// stdout and stderr (nil discards). When ctx ends first the session is
// closed and Exec returns ctx's error.
func (m *Machine) Exec(ctx context.Context, user, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := m.client(ctx, user)
	if err != nil {
		return err
	}
	sess, err := c.NewSession()
	if err != nil {
		return fmt.Errorf("ssh session: %w", err)
	}
	defer sess.Close()
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, stderr
	if err := sess.Start(cmd); err != nil {
		return fmt.Errorf("ssh start: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		// The output goroutines end when the channel closes.
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
		return ctx.Err()
	}
}

// client returns the cached connection as user, dialling it first.
func (m *Machine) client(ctx context.Context, user string) (*ssh.Client, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("machine %s is closed", m.Addr())
	}
	c := m.clients[user]
	key := m.hostKey
	m.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, _, err := m.dialOnce(ctx, user, key, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("ssh %s@%s: %w", user, m.Addr(), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		c.Close()
		return nil, fmt.Errorf("machine %s is closed", m.Addr())
	}
	if old := m.clients[user]; old != nil {
		c.Close()
		return old, nil
	}
	m.clients[user] = c
	return c, nil
}

// hostKeyAlgorithms prefers Ed25519, so that the recorded host key is of the
// same type on every machine.
var hostKeyAlgorithms = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// dialOnce makes one SSH connection as user with the harness key, giving up
// after timeout, when ctx ends or when qemu exits. want, when not nil, is the
// only host key accepted. It returns the host key presented.
func (m *Machine) dialOnce(ctx context.Context, user string, want ssh.PublicKey, timeout time.Duration) (*ssh.Client, ssh.PublicKey, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if done := m.Done(); done != nil {
		go func() {
			select {
			case <-done:
				cancel()
			case <-actx.Done():
			}
		}()
	}
	var d net.Dialer
	conn, err := d.DialContext(actx, "tcp", m.Addr())
	if err != nil {
		return nil, nil, err
	}
	// The handshake takes no context: closing the connection ends it.
	stopClosing := context.AfterFunc(actx, func() { conn.Close() })
	var got ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(m.image.Signer)},
		HostKeyAlgorithms: hostKeyAlgorithms,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if want != nil && !bytes.Equal(key.Marshal(), want.Marshal()) {
				return fmt.Errorf("host key %s is not the one presented at boot (%s)", ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(want))
			}
			got = key
			return nil
		},
	}
	sconn, chans, reqs, err := ssh.NewClientConn(conn, m.Addr(), cfg)
	if err != nil {
		conn.Close()
		if actx.Err() != nil {
			return nil, nil, fmt.Errorf("%w (%v)", actx.Err(), err)
		}
		return nil, nil, err
	}
	if !stopClosing() {
		sconn.Close()
		return nil, nil, actx.Err()
	}
	return ssh.NewClient(sconn, chans, reqs), got, nil
}

// isAuthFailure reports whether the server refused every key offered.
// golang.org/x/crypto/ssh has no typed error for this on the client side.
func isAuthFailure(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to authenticate")
}

// waitSSH polls the guest's SSH server until it accepts the harness key for
// root, qemu exits or ctx ends. Each attempt is bounded, starting at 10 s
// and doubling up to a minute when attempts time out (on a loaded host the
// handshake of an emulated guest can be slow).
func (m *Machine) waitSSH(ctx context.Context) error {
	const interval = 500 * time.Millisecond
	attempt := 10 * time.Second
	authFailures := 0
	var lastErr error
	done := m.Done()
	for {
		select {
		case <-done:
			return m.exitedEarly()
		default:
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wait for SSH on %s: %w (last attempt: %v)%s", m.Addr(), err, lastErr, m.consoleTailMsg())
		}
		c, key, err := m.dialOnce(ctx, "root", nil, attempt)
		if err == nil {
			m.mu.Lock()
			m.hostKey = key
			m.clients["root"] = c
			m.mu.Unlock()
			return nil
		}
		lastErr = err
		if isAuthFailure(err) {
			if authFailures++; authFailures == 3 {
				return fmt.Errorf("SSH on %s refuses the harness key for root (is it in the disk's /root/.ssh/authorized_keys?): %w", m.Addr(), err)
			}
		} else {
			authFailures = 0
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && attempt < time.Minute {
			attempt = min(2*attempt, time.Minute)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
}

// exitedEarly explains why qemu exited before SSH answered.
func (m *Machine) exitedEarly() error {
	m.mu.Lock()
	waitErr := m.waitErr
	m.mu.Unlock()
	stderr := strings.TrimSpace(m.stderr.String())
	if isPortBusy(stderr) {
		return fmt.Errorf("%w: %s", errPortBusy, stderr)
	}
	status := "exit status 0"
	if waitErr != nil {
		status = waitErr.Error()
	}
	msg := fmt.Sprintf("qemu exited (%s) before SSH answered", status)
	if stderr != "" {
		msg += "; qemu said:\n" + indent(lastLines(stderr, 10))
	}
	return errors.New(msg + m.consoleTailMsg())
}

// consoleTailMsg returns the end of the console for an error message.
func (m *Machine) consoleTailMsg() string {
	tail := strings.TrimSpace(m.ConsoleTail(30))
	if tail == "" {
		return "\n(the serial console is empty)"
	}
	return "\nlast lines of the serial console:\n" + indent(tail)
}

// Close kills qemu by its PID if it still runs, waits until it has exited,
// closes the SSH connections and removes the machine's directory with the
// overlay. It is safe to call more than once and on a machine whose boot
// failed; later calls return the first call's result.
func (m *Machine) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		clients := m.clients
		m.clients = nil
		m.mu.Unlock()
		for _, c := range clients {
			c.Close()
		}
		m.stop()
		console, _ := os.ReadFile(m.consolePath)
		m.mu.Lock()
		m.closed, m.console = true, console
		m.mu.Unlock()
		if err := os.RemoveAll(m.Dir); err != nil {
			m.closeErr = fmt.Errorf("close VM %s: %w", m.Addr(), err)
		}
	})
	return m.closeErr
}

// capBuffer is a goroutine-safe buffer that keeps at most max bytes (0: no
// limit) and drops the rest.
type capBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 && b.buf.Len()+len(p) > b.max {
		b.buf.Write(p[:max(0, b.max-b.buf.Len())])
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
