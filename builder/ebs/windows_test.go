//go:build unix

package ebs

import (
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
)

// TestBuilderPrepareWinRMWithoutPassword: the Windows password is read from
// EC2, so WinRM without winrm_password is a plain configuration.
func TestBuilderPrepareWinRMWithoutPassword(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	raw := validRaw()
	delete(raw, "ssh_username")
	raw["communicator"] = "winrm"
	raw["winrm_username"] = "Administrator"
	var b Builder
	_, warnings, err := b.Prepare(raw)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if !b.config.NeedsWindowsPassword() || b.config.Comm.SSHTemporaryKeyPairType != "rsa" {
		t.Errorf("NeedsWindowsPassword = %t, temporary_key_pair_type = %q; want true, rsa", b.config.NeedsWindowsPassword(), b.config.Comm.SSHTemporaryKeyPairType)
	}
	var found bool
	for _, s := range b.config.LaunchSteps(amibuild.LaunchInput{Region: "us-east-1"}) {
		if gp, ok := s.(*amibuild.StepGetPassword); ok {
			found = true
			if gp.Timeout != b.config.WindowsPasswordTimeout || gp.Comm != &b.config.Comm {
				t.Errorf("StepGetPassword has timeout %s and its own communicator config; want windows_password_timeout (%s) and the builder's", gp.Timeout, b.config.WindowsPasswordTimeout)
			}
		}
	}
	if !found {
		t.Error("the launch steps do not read the Windows password")
	}
}
