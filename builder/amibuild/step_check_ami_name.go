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
	// CopyRegions are the regions the AMI is copied to (ami_regions); the
	// name must be free there too.
	CopyRegions []string
	// SkipBuildRegion skips the build region, where the AMI gets a
	// temporary name (skip_save_build_region).
	SkipBuildRegion bool
}

// Run implements multistep.Step.
func (s *StepCheckAMIName) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	regions := s.CopyRegions
	if !s.SkipBuildRegion {
		regions = append([]string{s.Region}, regions...)
	}
	for _, region := range regions {
		if err := s.check(ctx, state, region); err != nil {
			return Halt(state, u, err)
		}
	}
	return multistep.ActionContinue
}

func (s *StepCheckAMIName) check(ctx context.Context, state multistep.StateBag, region string) error {
	u := UI(state)
	api, err := EC2Client(state, region)
	if err != nil {
		return err
	}
	u.Sayf("Checking that AMI name %q is free in %s...", s.AMIName, region)
	imgs, err := image.FindByName(ctx, api, s.AMIName, nil)
	if err != nil {
		return fmt.Errorf("look up AMIs named %q in %s: %w", s.AMIName, region, err)
	}
	if len(imgs) == 0 {
		return nil
	}
	ids := make([]string, len(imgs))
	for i, img := range imgs {
		ids[i] = aws.ToString(img.ImageId)
	}
	if s.ForceDeregister {
		u.Sayf("AMI name %q is used by %s in %s; it will be deregistered before the new AMI is created (force_deregister)", s.AMIName, strings.Join(ids, ", "), region)
		return nil
	}
	return fmt.Errorf("ami_name: an AMI named %q already exists in %s (%s); choose another name, or set force_deregister = true (or run packer build -force) to replace it",
		s.AMIName, region, strings.Join(ids, ", "))
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *StepCheckAMIName) Cleanup(multistep.StateBag) {}
