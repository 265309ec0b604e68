package amibuild

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// StepCreateKeyPair creates the temporary EC2 key pair the build instance
// is launched with, when the SSH communicator has no credentials of its own
// or the WinRM communicator's password is to be read from EC2 (see
// RunConfig.NeedsTemporaryKeyPair), and hands its private key to the
// communicator (StepGetPassword decrypts the Windows password with it). With ssh_keypair_name it passes that key pair on instead.
// The temporary key pair is always deleted in Cleanup.
//
// In debug mode the private key is written to DebugKeyPath, a file the step
// creates itself (readable by its owner only) and removes in Cleanup. An
// existing file or symlink at that path is refused before the key pair is
// created, and is never written to or removed.
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
	// debugKey is the file the step created at DebugKeyPath, as it was
	// when created; nil when it created none.
	debugKey os.FileInfo
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
	// The debug key file is created before the key pair, so that a path
	// that cannot take it stops the build before anything exists in AWS.
	var keyFile *os.File
	if s.Debug && s.DebugKeyPath != "" {
		keyFile, err = s.createDebugKeyFile()
		if err != nil {
			return Halt(state, u, err)
		}
		defer keyFile.Close()
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

	if keyFile != nil {
		_, err := keyFile.Write(out.PrivateKeyPEM)
		if cerr := keyFile.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Halt(state, u, fmt.Errorf("write debug private key to %s: %w", s.DebugKeyPath, err))
		}
		u.Sayf("Saved the temporary private key for debugging to %s", s.DebugKeyPath)
	}
	return multistep.ActionContinue
}

// createDebugKeyFile creates DebugKeyPath as a new file with mode 0600 and
// remembers it as the step's own. It fails when anything, a symlink
// included, is already at the path.
func (s *StepCreateKeyPair) createDebugKeyFile() (*os.File, error) {
	f, err := os.OpenFile(s.DebugKeyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("write debug private key: %s already exists; move or delete it, or run the build from another directory", s.DebugKeyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("create debug private key file %s: %w", s.DebugKeyPath, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		_ = os.Remove(s.DebugKeyPath)
		return nil, fmt.Errorf("create debug private key file %s: %w", s.DebugKeyPath, err)
	}
	s.debugKey = fi
	return f, nil
}

// removeDebugKeyFile removes the debug key file when it is still the one
// the step created.
func (s *StepCreateKeyPair) removeDebugKeyFile(u packersdk.Ui) {
	if s.debugKey == nil {
		return
	}
	fi, err := os.Lstat(s.DebugKeyPath)
	if err != nil || !os.SameFile(fi, s.debugKey) {
		// Gone, or replaced by something that is not the step's.
		s.debugKey = nil
		return
	}
	if err := os.Remove(s.DebugKeyPath); err != nil {
		u.Error(fmt.Sprintf("Cannot delete the debug private key %s; delete it by hand: %v", s.DebugKeyPath, err))
		return
	}
	s.debugKey = nil
}

// Cleanup deletes the temporary key pair and the debug key file the step
// created, whatever the outcome of the run.
func (s *StepCreateKeyPair) Cleanup(state multistep.StateBag) {
	u := UI(state)
	s.removeDebugKeyFile(u)
	if s.created == "" {
		return
	}
	api, err := EC2Client(state, s.Region)
	if err != nil {
		u.Error(fmt.Sprintf("Cannot delete temporary key pair %s: %v", s.created, err))
		return
	}
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	u.Sayf("Deleting temporary key pair %s...", s.created)
	if _, err := instance.DeleteKeyPair(ctx, api, &instance.DeleteKeyPairInput{KeyName: s.created}); err != nil {
		u.Error(fmt.Sprintf("Error deleting temporary key pair %s in %s; delete it by hand: %v", s.created, s.Region, err))
		return
	}
	s.created = ""
}
