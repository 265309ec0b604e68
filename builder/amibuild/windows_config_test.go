//go:build unix

package amibuild

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// winrmRaw is a valid configuration with the WinRM communicator and no
// winrm_password, with set applied (a nil value removes the key).
func winrmRaw(set map[string]any) map[string]any {
	raw := validRaw()
	delete(raw, "ssh_username")
	raw["communicator"] = "winrm"
	raw["winrm_username"] = "Administrator"
	for k, v := range set {
		if v == nil {
			delete(raw, k)
			continue
		}
		raw[k] = v
	}
	return raw
}

func TestWindowsConfig(t *testing.T) {
	keyFile := writeTestKey(t, t.TempDir())
	tests := []struct {
		name  string
		raw   map[string]any
		check func(t *testing.T, c *testConfig)
	}{
		{"winrm without password", winrmRaw(nil), func(t *testing.T, c *testConfig) {
			if !c.NeedsWindowsPassword() {
				t.Error("the password must be read from EC2")
			}
			if !c.NeedsTemporaryKeyPair() || c.Comm.SSHTemporaryKeyPairName == "" {
				t.Errorf("a temporary key pair is needed to decrypt the password (name %q)", c.Comm.SSHTemporaryKeyPairName)
			}
			if c.Comm.SSHTemporaryKeyPairType != "rsa" {
				t.Errorf("temporary_key_pair_type = %q, want rsa: EC2 encrypts Windows passwords only for RSA key pairs", c.Comm.SSHTemporaryKeyPairType)
			}
			if c.WindowsPasswordTimeout != 20*time.Minute {
				t.Errorf("windows_password_timeout = %s, want HashiCorp's default 20m", c.WindowsPasswordTimeout)
			}
		}},
		{"rsa and a timeout", winrmRaw(map[string]any{"temporary_key_pair_type": "rsa", "windows_password_timeout": "10m"}), func(t *testing.T, c *testConfig) {
			if c.WindowsPasswordTimeout != 10*time.Minute {
				t.Errorf("windows_password_timeout = %s, want 10m", c.WindowsPasswordTimeout)
			}
		}},
		{"winrm with password", winrmRaw(map[string]any{"winrm_password": "x"}), func(t *testing.T, c *testConfig) {
			if c.NeedsWindowsPassword() || c.NeedsTemporaryKeyPair() {
				t.Error("with winrm_password neither the EC2 password nor a temporary key pair is needed")
			}
		}},
		{"winrm with password keeps ed25519", winrmRaw(map[string]any{"winrm_password": "x", "temporary_key_pair_type": "ed25519"}), nil},
		{"own key pair", winrmRaw(map[string]any{"ssh_keypair_name": "windows-build", "ssh_private_key_file": keyFile}), func(t *testing.T, c *testConfig) {
			if !c.NeedsWindowsPassword() || c.NeedsTemporaryKeyPair() {
				t.Errorf("NeedsWindowsPassword = %t, NeedsTemporaryKeyPair = %t; want true, false", c.NeedsWindowsPassword(), c.NeedsTemporaryKeyPair())
			}
		}},
		{"ssh keeps ed25519", validRaw(), func(t *testing.T, c *testConfig) {
			if c.Comm.SSHTemporaryKeyPairType != "ed25519" || c.NeedsWindowsPassword() {
				t.Errorf("temporary_key_pair_type = %q, NeedsWindowsPassword = %t; want ed25519, false", c.Comm.SSHTemporaryKeyPairType, c.NeedsWindowsPassword())
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, errs := prepareRaw(t, tc.raw)
			if len(errs) > 0 {
				t.Fatalf("Prepare rejected a valid configuration:\n%s", joinErrs(errs))
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestWindowsConfigErrors(t *testing.T) {
	keyFile := writeTestKey(t, t.TempDir())
	tests := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"ed25519 key pair", winrmRaw(map[string]any{"temporary_key_pair_type": "ed25519"}),
			[]string{`temporary_key_pair_type: "ed25519" cannot decrypt the Windows password`, `"rsa"`, "winrm_password"}},
		{"negative timeout", winrmRaw(map[string]any{"windows_password_timeout": "-5m"}),
			[]string{"windows_password_timeout: -5m0s is negative"}},
		{"key pair without private key", winrmRaw(map[string]any{"ssh_keypair_name": "windows-build"}),
			[]string{"ssh_private_key_file: required with ssh_keypair_name to decrypt the Windows password"}},
		{"key pair with agent only", winrmRaw(map[string]any{"ssh_keypair_name": "windows-build", "ssh_agent_auth": true}),
			[]string{"ssh_private_key_file: required with ssh_keypair_name to decrypt the Windows password"}},
		{"private key without key pair", winrmRaw(map[string]any{"ssh_private_key_file": keyFile}),
			[]string{"ssh_private_key_file: decrypts the Windows password only with ssh_keypair_name"}},
		{"private key file missing", winrmRaw(map[string]any{"ssh_keypair_name": "windows-build", "ssh_private_key_file": filepath.Join(t.TempDir(), "nope")}),
			[]string{"ssh_private_key_file: cannot read"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := prepareRaw(t, tc.raw)
			got := joinErrs(errs)
			if len(errs) == 0 {
				t.Fatalf("Prepare accepted the configuration; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors do not contain %q:\n%s", w, got)
				}
			}
		})
	}
}
