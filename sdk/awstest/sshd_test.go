//go:build unix

package awstest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"
)

func dialSSHD(t *testing.T, s *SSHD, cfg *ssh.ClientConfig) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr(), cfg)
	if err != nil {
		t.Fatalf("ssh dial %s: %v\nsshd log:\n%s", s.Addr(), err, s.Output())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pipedSession opens a session on c, closed when the test ends, with pipes
// to its standard input and output.
func pipedSession(t *testing.T, c *ssh.Client) (*ssh.Session, io.WriteCloser, io.Reader) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	return sess, stdin, stdout
}

func runSSH(t *testing.T, c *ssh.Client, cmd string, stdin io.Reader) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	sess.Stdin = stdin
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("run %q: %v; output: %s", cmd, err, out)
	}
	return string(out)
}

func TestSSHDRunsAndLogsCommands(t *testing.T) {
	s := NewSSHD(t)
	if s.Host != "127.0.0.1" || s.Port == 0 || s.User == "" {
		t.Fatalf("SSHD = %+v", s)
	}
	fi, err := os.Stat(s.PrivateKeyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key %s: %v, mode %v", s.PrivateKeyPath, err, fi.Mode())
	}
	// The key file on disk is what packer's ssh_private_key_file would use.
	pemBytes, err := os.ReadFile(s.PrivateKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatalf("parse %s: %v", s.PrivateKeyPath, err)
	}
	cfg := s.ClientConfig()
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(signer)}
	c := dialSSHD(t, s, cfg)

	commands := []struct{ cmd, want string }{
		{"echo hello from $(whoami)", "hello from " + s.User + "\n"},
		{"printf '%s|' \"a b\" 'c'", "a b|c|"},
		{"cat; echo", "piped\n"},
		{"echo line1\necho line2", "line1\nline2\n"},
	}
	for _, tc := range commands {
		var stdin io.Reader
		if strings.HasPrefix(tc.cmd, "cat") {
			stdin = strings.NewReader("piped")
		}
		if got := runSSH(t, c, tc.cmd, stdin); got != tc.want {
			t.Errorf("%q printed %q, want %q", tc.cmd, got, tc.want)
		}
	}
	var want []string
	for _, tc := range commands {
		want = append(want, tc.cmd)
	}
	if got := s.CommandLog(); !reflect.DeepEqual(got, want) {
		t.Errorf("CommandLog() = %q, want %q", got, want)
	}

	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Run("exit 3"); err == nil {
		t.Error("exit 3 reported success")
	} else if ee, ok := err.(*ssh.ExitError); !ok || ee.ExitStatus() != 3 {
		t.Errorf("exit 3 gave %v", err)
	}
}

// TestSSHDFileTransfer covers the ways packer uploads files: legacy scp
// ("scp -t") and the sftp subsystem.
func TestSSHDFileTransfer(t *testing.T) {
	s := NewSSHD(t)
	c := dialSSHD(t, s, s.ClientConfig())
	dest := t.TempDir()

	t.Run("scp", func(t *testing.T) {
		sess, stdin, stdout := pipedSession(t, c)
		if err := sess.Start("scp -vt " + dest); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		ack := func(step string) {
			t.Helper()
			b, err := r.ReadByte()
			if err != nil || b != 0 {
				line, _ := r.ReadString('\n')
				t.Fatalf("scp %s: ack %d %v %s", step, b, err, line)
			}
		}
		ack("start")
		content := "#!/bin/sh\necho provisioned\n"
		fmt.Fprintf(stdin, "C0755 %d script.sh\n", len(content))
		ack("header")
		io.WriteString(stdin, content)
		stdin.Write([]byte{0})
		ack("data")
		stdin.Close()
		if err := sess.Wait(); err != nil {
			t.Fatalf("scp: %v", err)
		}
		if got := runSSH(t, c, filepath.Join(dest, "script.sh"), nil); got != "provisioned\n" {
			t.Errorf("uploaded script printed %q", got)
		}
	})

	t.Run("sftp", func(t *testing.T) {
		sess, stdin, stdout := pipedSession(t, c)
		if err := sess.RequestSubsystem("sftp"); err != nil {
			t.Fatalf("sftp subsystem: %v", err)
		}
		// SSH_FXP_INIT version 3; expect SSH_FXP_VERSION.
		stdin.Write([]byte{0, 0, 0, 5, 1, 0, 0, 0, 3})
		var hdr [9]byte
		if _, err := io.ReadFull(stdout, hdr[:]); err != nil {
			t.Fatalf("read sftp version: %v\nsshd log:\n%s", err, s.Output())
		}
		if hdr[4] != 2 || binary.BigEndian.Uint32(hdr[5:]) != 3 {
			t.Fatalf("sftp answered %v", hdr)
		}
	})
	log := s.CommandLog()
	if want := []string{"scp -vt " + dest, filepath.Join(dest, "script.sh"), findSFTPServer()}; !reflect.DeepEqual(log, want) {
		t.Errorf("CommandLog() = %q, want %q", log, want)
	}
}

func TestSSHDKeys(t *testing.T) {
	_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewSignerFromKey(otherPriv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		opts   []SSHDOption
		wantOK bool
	}{
		{"generated key only", nil, false},
		{"accept any key", []SSHDOption{AcceptAnyKey()}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSSHD(t, tc.opts...)
			cfg := s.ClientConfig()
			cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(other)}
			c, err := ssh.Dial("tcp", s.Addr(), cfg)
			if (err == nil) != tc.wantOK {
				t.Fatalf("login with another key: err = %v, want success %v\nsshd log:\n%s", err, tc.wantOK, s.Output())
			}
			if err == nil {
				defer c.Close()
				if got := runSSH(t, c, "echo ok", nil); got != "ok\n" {
					t.Errorf("echo printed %q", got)
				}
			}
			// The generated key always works.
			dialSSHD(t, s, s.ClientConfig())
		})
	}
}

func TestSSHDStop(t *testing.T) {
	// The directory is created when missing.
	s, err := StartSSHD(t.Context(), filepath.Join(t.TempDir(), "not", "yet"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := ssh.Dial("tcp", s.Addr(), s.ClientConfig()); err == nil {
		t.Fatal("sshd still answers after Stop")
	}
	if !bytes.Contains([]byte(SSHDInstallHint), []byte("apt-get install openssh-server")) {
		t.Errorf("install hint %q", SSHDInstallHint)
	}
}

// TestSSHDAcceptsEmulatorKeyPair is the end-to-end path of a builder: it
// creates a temporary key pair in the emulator and logs in with it.
func TestSSHDAcceptsEmulatorKeyPair(t *testing.T) {
	tests := []struct {
		name    string
		keyType ec2types.KeyType
	}{
		{"rsa", ec2types.KeyTypeRsa},
		{"ed25519", ec2types.KeyTypeEd25519},
	}
	s := NewSSHD(t, AcceptAnyKey())
	ec2c, _ := Clients(sharedMoto.Endpoint, "ap-northeast-1")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kp, err := ec2c.CreateKeyPair(t.Context(), &ec2.CreateKeyPairInput{KeyName: aws.String("sshd-" + tc.name), KeyType: tc.keyType})
			if err != nil {
				t.Fatal(err)
			}
			signer, err := ssh.ParsePrivateKey([]byte(aws.ToString(kp.KeyMaterial)))
			if err != nil {
				t.Fatalf("parse moto's %s key material: %v", tc.name, err)
			}
			cfg := s.ClientConfig()
			cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(signer)}
			c := dialSSHD(t, s, cfg)
			if got := runSSH(t, c, "echo ok", nil); got != "ok\n" {
				t.Errorf("echo printed %q", got)
			}
		})
	}
}

func TestSSHDSetEnv(t *testing.T) {
	s := NewSSHD(t, SSHDSetEnv(map[string]string{"AMI_TOOLS_HOME": "/opt/tools dir", "AMI_OTHER": "x"}))
	pemBytes, err := os.ReadFile(s.PrivateKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.ClientConfig()
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(signer)}
	c := dialSSHD(t, s, cfg)
	if got := runSSH(t, c, `printf '%s|%s' "$AMI_TOOLS_HOME" "$AMI_OTHER"`, nil); got != "/opt/tools dir|x" {
		t.Errorf("session environment gave %q, want the values set", got)
	}
}
