package amibuild

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// StepCreateKeyPair creates the temporary EC2 key pair the build instance
// is launched with, when the SSH communicator has no credentials of its own
// (see RunConfig.NeedsTemporaryKeyPair), and hands its private key to the
// communicator. With ssh_keypair_name it passes that key pair on instead.
// The temporary key pair is always deleted in Cleanup.
//
// State used: StateSession, StateUI.
// State produced: StateKeyPairName; Comm.SSHPrivateKey is set.
type StepCreateKeyPair struct {
	// Region is the build region.
	Region string
	// Comm is the communicator configuration; the private key is stored in
	// it.
	Comm *communicator.Config
	// Debug writes the private key to DebugKeyPath, so the user can log in
	// while the build is paused.
	Debug bool
	// DebugKeyPath is where the private key goes in debug mode.
	DebugKeyPath string

	created string
}

// Run implements multistep.Step.
func (s *StepCreateKeyPair) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	if s.Comm.SSHKeyPairName != "" {
		StateKeyPairName.Put(state, s.Comm.SSHKeyPairName)
		return multistep.ActionContinue
	}
	if !needsTemporaryKeyPair(s.Comm) || s.Comm.SSHTemporaryKeyPairName == "" {
		return multistep.ActionContinue
	}
	api, err := EC2Client(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	u.Sayf("Creating temporary %s key pair %s...", s.Comm.SSHTemporaryKeyPairType, s.Comm.SSHTemporaryKeyPairName)
	out, err := instance.CreateKeyPair(ctx, api, &instance.CreateKeyPairInput{
		Name:    s.Comm.SSHTemporaryKeyPairName,
		KeyType: s.Comm.SSHTemporaryKeyPairType,
	})
	if err != nil {
		return Halt(state, u, fmt.Errorf("create temporary key pair in %s: %w", s.Region, err))
	}
	s.created = out.Name
	s.Comm.SSHPrivateKey = out.PrivateKeyPEM
	StateKeyPairName.Put(state, out.Name)

	if s.Debug && s.DebugKeyPath != "" {
		if err := os.WriteFile(s.DebugKeyPath, out.PrivateKeyPEM, 0o600); err != nil {
			return Halt(state, u, fmt.Errorf("write debug private key: %w", err))
		}
		u.Sayf("Saved the temporary private key for debugging to %s", s.DebugKeyPath)
	}
	return multistep.ActionContinue
}

// Cleanup deletes the temporary key pair, whatever the outcome of the run.
func (s *StepCreateKeyPair) Cleanup(state multistep.StateBag) {
	if s.Debug && s.DebugKeyPath != "" {
		_ = os.Remove(s.DebugKeyPath)
	}
	if s.created == "" {
		return
	}
	u := UI(state)
	api, err := EC2Client(state, s.Region)
	if err != nil {
		u.Error(fmt.Sprintf("Cannot delete temporary key pair %s: %v", s.created, err))
		return
	}
	ctx, cancel := CleanupContext()
	defer cancel()
	u.Sayf("Deleting temporary key pair %s...", s.created)
	if err := instance.DeleteKeyPair(ctx, api, s.created); err != nil {
		u.Error(fmt.Sprintf("Error deleting temporary key pair %s in %s; delete it by hand: %v", s.created, s.Region, err))
		return
	}
	s.created = ""
}
