package amibuild

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// StepGetPassword reads the Windows Administrator password of the build
// instance from EC2 when the WinRM communicator has no winrm_password,
// decrypts it with the private key of the key pair the instance was
// launched with (the temporary key pair, or ssh_private_key_file with
// ssh_keypair_name) and sets it as the communicator's password, as
// HashiCorp's builders do. The password goes to Packer's secret filter at
// once and is never shown or logged, with -debug neither.
//
// State used: StateSession, StateUI, StateInstanceID.
// State produced: Comm.WinRMPassword is set.
type StepGetPassword struct {
	// Region is the build region.
	Region string
	// Comm is the communicator configuration; the password is stored in
	// it.
	Comm *communicator.Config
	// Timeout bounds the wait for the password (windows_password_timeout).
	Timeout time.Duration
	// Wait sets the delays between checks; its MaxWait is ignored.
	Wait instance.WaitOptions
}

// Run implements multistep.Step.
func (s *StepGetPassword) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if !needsWindowsPassword(s.Comm) {
		return multistep.ActionContinue
	}
	u := UI(state)
	id, ok := StateInstanceID.Get(state)
	if !ok || id == "" {
		return Halt(state, u, errors.New("get the Windows password: no build instance"))
	}
	key := s.Comm.SSHPrivateKey
	if len(key) == 0 && s.Comm.SSHPrivateKeyFile != "" {
		var err error
		if key, err = os.ReadFile(s.Comm.SSHPrivateKeyFile); err != nil {
			return Halt(state, u, fmt.Errorf("get the Windows password of instance %s: read ssh_private_key_file: %w", id, err))
		}
	}
	if len(key) == 0 {
		return Halt(state, u, fmt.Errorf("get the Windows password of instance %s: no private key to decrypt it; set winrm_password, or ssh_keypair_name with ssh_private_key_file", id))
	}
	api, err := EC2Client(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	wait := s.Wait
	wait.MaxWait = s.Timeout
	u.Sayf("Waiting for the Windows Administrator password of instance %s (up to %s, windows_password_timeout)...", id, s.Timeout)
	out, err := instance.GetWindowsPassword(ctx, api, &instance.GetWindowsPasswordInput{
		InstanceID:    id,
		PrivateKeyPEM: key,
		Wait:          wait,
	}, func(o *instance.Options) { o.Logf = log.Printf })
	var unavailable *instance.PasswordUnavailableError
	switch {
	case errors.As(err, &unavailable):
		return Halt(state, u, fmt.Errorf("%w. Use a source AMI that generates the password, raise windows_password_timeout if the instance boots slowly, or set the password in user_data and give it in winrm_password", err))
	case err != nil:
		return Halt(state, u, err)
	}
	packersdk.LogSecretFilter.Set(out.Password)
	s.Comm.WinRMPassword = out.Password
	u.Say("Got the Windows Administrator password; it is used for WinRM and not shown.")
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the step makes nothing to remove.
func (s *StepGetPassword) Cleanup(multistep.StateBag) {}
