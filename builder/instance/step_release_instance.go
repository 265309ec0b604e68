package instance

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
)

// stepReleaseInstance starts terminating the build instance once the bundle
// is in S3: registering the AMI does not need the instance, so its
// termination runs while the AMI registers and becomes available, instead
// of after. The launch step's Cleanup waits for it (and deletes the
// temporary security group and key pair after it, as always).
//
// State used: amibuild.StateReleaseInstance (absent for a spot instance,
// which is removed with its fleet at the end).
// State produced: none.
type stepReleaseInstance struct{}

// Run implements multistep.Step.
func (s *stepReleaseInstance) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if release, ok := amibuild.StateReleaseInstance.Get(state); ok && release != nil {
		release()
	}
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the launch step's Cleanup waits for
// the termination.
func (s *stepReleaseInstance) Cleanup(multistep.StateBag) {}
