//go:build unix

package amibuild

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/communicator"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// debugKeyStep returns a key pair step in debug mode writing to path.
func debugKeyStep(t *testing.T, path string) *StepCreateKeyPair {
	t.Helper()
	comm := &communicator.Config{Type: "ssh"}
	comm.SSHTemporaryKeyPairName = uniqueName(t)
	comm.SSHTemporaryKeyPairType = "ed25519"
	return &StepCreateKeyPair{Region: testRegion, Comm: comm, Debug: true, DebugKeyPath: path}
}

// assertFile fails unless path holds want with mode perm.
func assertFile(t *testing.T, path, want string, perm os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
}

// TestStepCreateKeyPairDebugKeyFile covers the private key file that -debug
// writes: a new file readable by its owner only, removed in Cleanup; never
// an existing file or the target of a symlink, which are refused before any
// key pair is made and left alone by Cleanup.
func TestStepCreateKeyPairDebugKeyFile(t *testing.T) {
	t.Run("new file", func(t *testing.T) {
		e := newTestEnv(t)
		path := filepath.Join(t.TempDir(), "ec2_test.pem")
		s := debugKeyStep(t, path)
		e.run(t, s)
		assertFile(t, path, string(s.Comm.SSHPrivateKey), 0o600)
		if !strings.Contains(string(s.Comm.SSHPrivateKey), "PRIVATE KEY") {
			t.Errorf("private key = %q", s.Comm.SSHPrivateKey)
		}
		s.Cleanup(e.state)
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("Cleanup left %s: %v", path, err)
		}
	})

	t.Run("existing file", func(t *testing.T) {
		e := newTestEnv(t)
		path := filepath.Join(t.TempDir(), "ec2_test.pem")
		if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := debugKeyStep(t, path)
		err := e.runHalt(t, s)
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "exists") {
			t.Errorf("error = %v, want one naming %s and saying it exists", err, path)
		}
		s.Cleanup(e.state)
		assertFile(t, path, "mine", 0o644)
		if a := e.actions(); slices.Contains(a, "CreateKeyPair") {
			t.Errorf("a key pair was created though its key had nowhere to go: %v", a)
		}
	})

	t.Run("symlink", func(t *testing.T) {
		e := newTestEnv(t)
		dir := t.TempDir()
		target := filepath.Join(dir, "authorized_keys")
		if err := os.WriteFile(target, []byte("theirs"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, to string }{
			{"to a file", target},
			{"dangling", filepath.Join(dir, "missing")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				path := filepath.Join(dir, "ec2_"+tc.name+".pem")
				if err := os.Symlink(tc.to, path); err != nil {
					t.Fatal(err)
				}
				s := debugKeyStep(t, path)
				err := e.runHalt(t, s)
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error = %v, want one naming %s", err, path)
				}
				s.Cleanup(e.state)
				if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("symlink %s was removed or replaced: %v", path, err)
				}
				if _, err := os.Lstat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
					t.Errorf("a file was created through the dangling symlink: %v", err)
				}
			})
		}
		assertFile(t, target, "theirs", 0o644)
	})

	// A failed CreateKeyPair must leave a file that was there before the
	// step alone, and remove only what the step created.
	t.Run("create key pair fails", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			existing bool
		}{{"existing file", true}, {"no file", false}} {
			t.Run(tc.name, func(t *testing.T) {
				e := newTestEnv(t)
				e.proxy.SetFault(awstest.FailAlways("ec2", "CreateKeyPair", awstest.ErrorFault("UnauthorizedOperation", 403)))
				path := filepath.Join(t.TempDir(), "ec2_test.pem")
				if tc.existing {
					if err := os.WriteFile(path, []byte("mine"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				s := debugKeyStep(t, path)
				e.runHalt(t, s)
				s.Cleanup(e.state)
				if tc.existing {
					assertFile(t, path, "mine", 0o600)
				} else if _, err := os.Lstat(path); !os.IsNotExist(err) {
					t.Errorf("Cleanup left %s: %v", path, err)
				}
			})
		}
	})

	// A file that replaced the step's own after it was written is not the
	// step's to remove.
	t.Run("replaced file", func(t *testing.T) {
		e := newTestEnv(t)
		path := filepath.Join(t.TempDir(), "ec2_test.pem")
		s := debugKeyStep(t, path)
		e.run(t, s)
		// Written beside it and renamed over it, so that it cannot reuse
		// the inode of the step's file.
		other := path + ".new"
		if err := os.WriteFile(other, []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, path); err != nil {
			t.Fatal(err)
		}
		s.Cleanup(e.state)
		assertFile(t, path, "mine", 0o600)
	})
}
