//go:build unix

package awstest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHDInstallHint tells how to install the OpenSSH server when it is missing.
const SSHDInstallHint = "install the OpenSSH server, e.g. apt-get install openssh-server (Debian/Ubuntu) or dnf install openssh-server"

// SSHDBinary returns the absolute path of the OpenSSH server
// (/usr/sbin/sshd, else sshd from PATH), or an error that explains how to
// install it.
func SSHDBinary() (string, error) {
	if fi, err := os.Stat("/usr/sbin/sshd"); err == nil && !fi.IsDir() {
		return "/usr/sbin/sshd", nil
	}
	p, err := exec.LookPath("sshd")
	if err != nil {
		return "", fmt.Errorf("sshd not found in /usr/sbin or on PATH; %s", SSHDInstallHint)
	}
	// sshd refuses to run from a relative path.
	return filepath.Abs(p)
}

// SSHDOption changes how [StartSSHD] configures the server.
type SSHDOption func(*sshdOptions)

type sshdOptions struct {
	anyKey  bool
	timeout time.Duration
	env     map[string]string
}

// AcceptAnyKey makes the server accept every public key offered for User,
// not only the generated one. Use it when the client's key is made during
// the test, e.g. the temporary key pair a builder creates in the emulator.
func AcceptAnyKey() SSHDOption { return func(o *sshdOptions) { o.anyKey = true } }

// SSHDSetEnv sets environment variables in every session (sshd's SetEnv),
// as a profile on a real instance would, for example EC2_AMITOOL_HOME.
func SSHDSetEnv(env map[string]string) SSHDOption {
	return func(o *sshdOptions) {
		if o.env == nil {
			o.env = map[string]string{}
		}
		for k, v := range env {
			o.env[k] = v
		}
	}
}

// SSHDStartTimeout bounds the wait until the server listens (default 15s).
func SSHDStartTimeout(d time.Duration) SSHDOption { return func(o *sshdOptions) { o.timeout = d } }

// SSHD is an OpenSSH server on 127.0.0.1 for provisioning tests. Every
// command a client runs is appended to a log (see [SSHD.CommandLog]) and then
// executed with /bin/sh -c; sftp and scp work.
type SSHD struct {
	// Host is 127.0.0.1 and Port the TCP port the server listens on.
	Host string
	Port int
	// User is the login name: the user running the test.
	User string
	// PrivateKeyPath is the client's private key (OpenSSH PEM, ed25519,
	// mode 0600) and PublicKeyPath its authorized_keys line.
	PrivateKeyPath, PublicKeyPath string
	// HostPublicKey is the server's host key.
	HostPublicKey ssh.PublicKey
	// Dir holds the keys, configuration, logs and pid file.
	Dir string

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	logPath  string
	signer   ssh.Signer
	stopOnce sync.Once
	stopErr  error
}

// commandWrapper is the ForceCommand: it appends the client's command,
// NUL-terminated, to the command log, then runs it.
const commandWrapper = `#!/bin/sh
# Records every command sshd runs for a client, then runs it.
log=%s
cmd=$SSH_ORIGINAL_COMMAND
if [ -z "$cmd" ]; then
	printf '%%s\000' '<login shell>' >>"$log"
	exec /bin/sh -l
fi
printf '%%s\000' "$cmd" >>"$log"
case "$cmd" in
internal-sftp) exec %s ;;
esac
exec /bin/sh -c "$cmd"
`

// StartSSHD generates keys in dir (created if missing), writes an sshd_config there and starts
// sshd on a free 127.0.0.1 port. ctx bounds the start only; the server runs
// until [SSHD.Stop].
func StartSSHD(ctx context.Context, dir string, opts ...SSHDOption) (*SSHD, error) {
	o := sshdOptions{timeout: 15 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := SSHDBinary()
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("start sshd: current user: %w", err)
	}
	// sshd needs its privilege separation directory even with -D.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		return nil, fmt.Errorf("start sshd: create /run/sshd: %w", err)
	}

	s := &SSHD{
		Host:           "127.0.0.1",
		User:           u.Username,
		Dir:            dir,
		PrivateKeyPath: filepath.Join(dir, "id_ed25519"),
		PublicKeyPath:  filepath.Join(dir, "id_ed25519.pub"),
		logPath:        filepath.Join(dir, "commands.log"),
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	hostSigner, err := writeKeyPair(hostKeyPath, hostKeyPath+".pub")
	if err != nil {
		return nil, fmt.Errorf("start sshd: host key: %w", err)
	}
	s.HostPublicKey = hostSigner.PublicKey()
	if s.signer, err = writeKeyPair(s.PrivateKeyPath, s.PublicKeyPath); err != nil {
		return nil, fmt.Errorf("start sshd: user key: %w", err)
	}
	if err := os.WriteFile(s.logPath, nil, 0o600); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	wrapper := filepath.Join(dir, "record-command")
	sftpServer := findSFTPServer()
	if err := os.WriteFile(wrapper, fmt.Appendf(nil, commandWrapper, shellQuote(s.logPath), shellQuote(sftpServer)), 0o755); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := s.start(ctx, bin, wrapper, sftpServer, hostKeyPath, o)
		if err == nil {
			return s, nil
		}
		if attempt == 2 || ctx.Err() != nil || !errors.Is(err, errExitedEarly) {
			return nil, err
		}
	}
}

func (s *SSHD) start(ctx context.Context, bin, wrapper, sftpServer, hostKeyPath string, o sshdOptions) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	s.Port = port
	q := strconv.Quote
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "ListenAddress 127.0.0.1:%d\n", port)
	fmt.Fprintf(&cfg, "HostKey %s\n", q(hostKeyPath))
	fmt.Fprintf(&cfg, "PidFile %s\n", q(filepath.Join(s.Dir, "sshd.pid")))
	fmt.Fprintf(&cfg, "AuthorizedKeysFile %s\n", q(s.PublicKeyPath))
	if o.anyKey {
		// Print the offered key as an authorized_keys line: any key passes.
		cfg.WriteString("AuthorizedKeysCommand /bin/echo %t %k\nAuthorizedKeysCommandUser " + s.User + "\n")
	}
	if len(o.env) > 0 {
		keys := make([]string, 0, len(o.env))
		for k := range o.env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		cfg.WriteString("SetEnv")
		for _, k := range keys {
			cfg.WriteString(" " + q(k+"="+o.env[k]))
		}
		cfg.WriteString("\n")
	}
	fmt.Fprintf(&cfg, "ForceCommand %s\n", q(wrapper))
	fmt.Fprintf(&cfg, "Subsystem sftp %s\n", q(sftpServer))
	cfg.WriteString(`UsePAM no
StrictModes no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 64
MaxSessions 64
LogLevel VERBOSE
`)
	cfgPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}

	logf, err := os.OpenFile(filepath.Join(s.Dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, "-D", "-e", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd (%s): %w", bin, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitListening(ctx); err != nil {
		_ = killGroup(cmd, s.done, 5*time.Second)
		return err
	}
	return nil
}

func (s *SSHD) waitListening(ctx context.Context) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			// A listening sshd greets first with its version line.
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4)
			_, rerr := c.Read(buf)
			c.Close()
			if rerr == nil && string(buf) == "SSH-" {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("start sshd on port %d: %w (%v); output:\n%s", s.Port, errExitedEarly, s.waitErr, s.Output())
		case <-ctx.Done():
			return fmt.Errorf("start sshd on port %d: not listening: %w; output:\n%s", s.Port, ctx.Err(), s.Output())
		case <-tick.C:
		}
	}
}

// Addr returns "127.0.0.1:PORT".
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Signer returns the client key as an ssh.Signer.
func (s *SSHD) Signer() ssh.Signer { return s.signer }

// ClientConfig returns a client configuration that logs in as User with the
// generated key and accepts only the server's host key.
func (s *SSHD) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostPublicKey),
		Timeout:         10 * time.Second,
	}
}

// CommandLog returns every command clients asked the server to run, in
// order, exactly as sent (the login shell appears as "<login shell>", an
// sftp session as the sftp server's path).
func (s *SSHD) CommandLog() []string {
	data, err := os.ReadFile(s.logPath)
	if err != nil || len(data) == 0 {
		return nil
	}
	parts := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	return parts
}

// Output returns the last 16 KiB of the server's log (Dir/sshd.log).
func (s *SSHD) Output() string {
	data, _ := os.ReadFile(filepath.Join(s.Dir, "sshd.log"))
	if len(data) > 16<<10 {
		data = data[len(data)-16<<10:]
	}
	return string(data)
}

// Stop kills the server and its process group and waits for it to exit.
// It is safe to call more than once.
func (s *SSHD) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = killGroup(s.cmd, s.done, 10*time.Second)
	})
	return s.stopErr
}

// NewSSHD starts an SSH server in a temporary directory for a test and stops
// it in t.Cleanup. It fails the test (never skips it) when sshd is missing.
func NewSSHD(t testing.TB, opts ...SSHDOption) *SSHD {
	t.Helper()
	if _, err := SSHDBinary(); err != nil {
		t.Fatalf("awstest: %v", err)
	}
	s, err := StartSSHD(context.Background(), t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("awstest: stop sshd: %v", err)
		}
	})
	return s
}

// writeKeyPair generates an ed25519 key, writes the private key in OpenSSH
// format (0600) and the public key as an authorized_keys line.
func writeKeyPair(privPath, pubPath string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "awstest")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(privPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(pubPath, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		return nil, err
	}
	return signer, nil
}

// findSFTPServer returns the sftp-server binary; sshd's internal-sftp
// cannot be used because the ForceCommand wrapper runs every session.
func findSFTPServer() string {
	for _, p := range []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server", "/usr/lib/ssh/sftp-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "internal-sftp"
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
