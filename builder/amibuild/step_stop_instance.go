package amibuild

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// StepStopInstance stops the provisioned build instance and waits until it
// is stopped, so that the image is taken from consistent volumes.
//
// State used: StateSession, StateUI, StateInstanceID.
// State produced: none.
type StepStopInstance struct {
	// Region is the build region.
	Region string
	// Wait bounds the wait for stopped.
	Wait instance.WaitOptions
	// DisableStop waits for the instance to stop by itself
	// (disable_stop_instance): the provisioners shut it down.
	DisableStop bool
}

// Run implements multistep.Step.
func (s *StepStopInstance) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	id, api, err := BuildInstance(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	if s.DisableStop {
		u.Sayf("Waiting for the build instance %s to stop by itself (disable_stop_instance)...", id)
		if _, err := instance.Wait(ctx, api, &instance.WaitInput{InstanceIDs: []string{id}, State: types.InstanceStateNameStopped, Wait: s.Wait}); err != nil {
			return Halt(state, u, fmt.Errorf("disable_stop_instance: the build instance %s in %s did not stop; the last provisioner must shut it down: %w", id, s.Region, err))
		}
		return multistep.ActionContinue
	}
	u.Sayf("Stopping the build instance %s...", id)
	if _, err := instance.Stop(ctx, api, &instance.StopInput{InstanceID: id, Wait: s.Wait}); err != nil {
		return Halt(state, u, fmt.Errorf("stop build instance %s in %s: %w", id, s.Region, err))
	}
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; StepRunInstance terminates the
// instance.
func (s *StepStopInstance) Cleanup(multistep.StateBag) {}
