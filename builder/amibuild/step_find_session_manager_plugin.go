package amibuild

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/sdk/ssmtunnel"
)

// StepFindSessionManagerPlugin looks for AWS's session-manager-plugin on
// PATH when the build instance is reached through Session Manager, so that
// a missing plugin stops the build before anything is created.
//
// State used: StateUI.
// State produced: StateSessionManagerPlugin.
type StepFindSessionManagerPlugin struct {
	// Enabled is RunConfig.SessionManagerEnabled.
	Enabled bool
}

// Run implements multistep.Step.
func (s *StepFindSessionManagerPlugin) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if !s.Enabled {
		return multistep.ActionContinue
	}
	path, err := ssmtunnel.FindPlugin()
	if err != nil {
		return Halt(state, UI(state), err)
	}
	StateSessionManagerPlugin.Put(state, path)
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; there is nothing to clean.
func (s *StepFindSessionManagerPlugin) Cleanup(multistep.StateBag) {}
