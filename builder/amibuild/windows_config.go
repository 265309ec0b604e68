//go:generate packer-sdc mapstructure-to-hcl2 -type WindowsConfig
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
)

// defaultWindowsPasswordTimeout is HashiCorp's default for
// windows_password_timeout.
const defaultWindowsPasswordTimeout = 20 * time.Minute

// WindowsConfig is about Windows build instances reached over WinRM.
//
// With `communicator = "winrm"` and no `winrm_password`, the builder reads
// the Administrator password that Windows generates at first boot from EC2
// (GetPasswordData), decrypts it on the machine running Packer with the
// private key of the key pair the instance was launched with, and gives it
// to the WinRM communicator. The password is never printed or logged, not
// even with `-debug`. The key pair is the temporary one, which is then
// `rsa` (EC2 encrypts Windows passwords only for RSA key pairs), or
// `ssh_keypair_name` with its `ssh_private_key_file`. The source AMI must
// be set up to generate a random Administrator password (as Amazon's
// Windows AMIs are); otherwise set the password in `user_data` and give it
// in `winrm_password`.
type WindowsConfig struct {
	// How long to wait for EC2 to have the Administrator password of the
	// Windows build instance, as a duration such as `10m` or `1h`. Only
	// used with `communicator = "winrm"` and no `winrm_password`. Defaults
	// to `20m`.
	WindowsPasswordTimeout time.Duration `mapstructure:"windows_password_timeout" required:"false"`
}

// needsWindowsPassword reports whether the password of the WinRM
// communicator is read from EC2: WinRM without winrm_password.
func needsWindowsPassword(c *communicator.Config) bool {
	return c.Type == "winrm" && c.WinRMPassword == ""
}

// NeedsWindowsPassword reports whether the build reads the Windows
// Administrator password from EC2 (WinRM without winrm_password).
func (c *RunConfig) NeedsWindowsPassword() bool { return needsWindowsPassword(&c.Comm) }

// prepare validates the Windows options and, when the password is read
// from EC2, the key pair that decrypts it; it makes the temporary key pair
// RSA unless the template chose its type. It runs before the temporary key
// pair's type gets its default.
func (w *WindowsConfig) prepare(comm *communicator.Config) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if w.WindowsPasswordTimeout < 0 {
		add("windows_password_timeout: %s is negative; give a duration such as \"20m\" (the default)", w.WindowsPasswordTimeout)
	}
	if w.WindowsPasswordTimeout == 0 {
		w.WindowsPasswordTimeout = defaultWindowsPasswordTimeout
	}
	if !needsWindowsPassword(comm) {
		return errs
	}
	switch {
	case comm.SSHKeyPairName != "" && comm.SSHPrivateKeyFile == "":
		add("ssh_private_key_file: required with ssh_keypair_name to decrypt the Windows password (communicator winrm without winrm_password); or set winrm_password")
	case comm.SSHKeyPairName == "" && comm.SSHPrivateKeyFile != "":
		add("ssh_private_key_file: decrypts the Windows password only with ssh_keypair_name, the key pair the instance is launched with; set ssh_keypair_name, or remove ssh_private_key_file to use a temporary key pair")
	case comm.SSHPrivateKeyFile != "":
		if _, err := os.Stat(comm.SSHPrivateKeyFile); err != nil {
			add("ssh_private_key_file: cannot read %q: %v", comm.SSHPrivateKeyFile, err)
		}
	}
	switch comm.SSHTemporaryKeyPairType {
	case "":
		comm.SSHTemporaryKeyPairType = "rsa"
	case "ed25519":
		if comm.SSHKeyPairName == "" {
			add("temporary_key_pair_type: %q cannot decrypt the Windows password: EC2 encrypts it only for RSA key pairs; use \"rsa\" (the default with communicator winrm), or set winrm_password", comm.SSHTemporaryKeyPairType)
		}
	}
	return errs
}
