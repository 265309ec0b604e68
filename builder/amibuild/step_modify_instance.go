package amibuild

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/config"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// StepModifyInstance sets the attributes of the stopped build instance that
// the AMI inherits from it: ENA support (ena_support) and SR-IOV support
// (sriov_support). It does nothing when no such attribute is configured.
//
// State used: StateSession, StateUI, StateInstanceID.
// State produced: none.
type StepModifyInstance struct {
	// Region is the build region.
	Region string
	// ENASupport turns ENA support on or off; unset leaves it.
	ENASupport config.Trilean
	// SriovNetSupport turns SR-IOV enhanced networking on.
	SriovNetSupport bool
}

// Run implements multistep.Step.
func (s *StepModifyInstance) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if s.ENASupport == config.TriUnset && !s.SriovNetSupport {
		return multistep.ActionContinue
	}
	u := UI(state)
	id, api, err := BuildInstance(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	if s.ENASupport != config.TriUnset {
		on := s.ENASupport.True()
		u.Sayf("Setting ENA support of %s to %t...", id, on)
		if _, err := instance.SetENASupport(ctx, api, &instance.SetENASupportInput{InstanceID: id, Enabled: on}); err != nil {
			return Halt(state, u, fmt.Errorf("ena_support: %w", err))
		}
	}
	if s.SriovNetSupport {
		u.Sayf("Turning on SR-IOV support of %s...", id)
		if _, err := instance.SetSriovNetSupport(ctx, api, &instance.SetSriovNetSupportInput{InstanceID: id}); err != nil {
			return Halt(state, u, fmt.Errorf("sriov_support: %w", err))
		}
	}
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the instance is terminated anyway.
func (s *StepModifyInstance) Cleanup(multistep.StateBag) {}
