package amibuild

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// StepCheckAMIName fails the build early when an AMI we own already has the
// name the build would give its AMI, unless ForceDeregister is set (the old
// AMI is then deregistered by StepDeregisterExisting, just before the new
// one is created).
//
// State used: StateSession, StateUI.
// State produced: none.
type StepCheckAMIName struct {
	// Region is the build region.
	Region string
	// AMIName is the name of the AMI to create.
	AMIName string
	// ForceDeregister allows an existing AMI with the same name.
	ForceDeregister bool
}

// Run implements multistep.Step.
func (s *StepCheckAMIName) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	api, err := EC2Client(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	u.Sayf("Checking that AMI name %q is free in %s...", s.AMIName, s.Region)
	imgs, err := image.FindByName(ctx, api, s.AMIName, nil)
	if err != nil {
		return Halt(state, u, fmt.Errorf("look up AMIs named %q in %s: %w", s.AMIName, s.Region, err))
	}
	if len(imgs) == 0 {
		return multistep.ActionContinue
	}
	ids := make([]string, len(imgs))
	for i, img := range imgs {
		ids[i] = aws.ToString(img.ImageId)
	}
	if s.ForceDeregister {
		u.Sayf("AMI name %q is used by %s; it will be deregistered before the new AMI is created (force_deregister)", s.AMIName, strings.Join(ids, ", "))
		return multistep.ActionContinue
	}
	return Halt(state, u, fmt.Errorf("ami_name: an AMI named %q already exists in %s (%s); choose another name, or set force_deregister = true (or run packer build -force) to replace it",
		s.AMIName, s.Region, strings.Join(ids, ", ")))
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *StepCheckAMIName) Cleanup(multistep.StateBag) {}
