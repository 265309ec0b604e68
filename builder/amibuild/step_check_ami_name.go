package amibuild

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"golang.org/x/sync/errgroup"

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

// Run implements multistep.Step. The regions are looked up at once, and
// every region with a problem is reported.
func (s *StepCheckAMIName) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	regions := s.CopyRegions
	if !s.SkipBuildRegion {
		regions = append([]string{s.Region}, regions...)
	}
	u.Sayf("Checking that AMI name %q is free in %s...", s.AMIName, strings.Join(regions, ", "))
	notes := make([]string, len(regions))
	errs := make([]error, len(regions))
	var g errgroup.Group
	for i, region := range regions {
		g.Go(func() error {
			notes[i], errs[i] = s.check(ctx, state, region)
			return nil
		})
	}
	_ = g.Wait()
	for _, n := range notes {
		if n != "" {
			u.Say(n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Halt(state, u, err)
	}
	return multistep.ActionContinue
}

// check looks the name up in one region. It returns a note for the user
// when force_deregister will replace an AMI there.
func (s *StepCheckAMIName) check(ctx context.Context, state multistep.StateBag, region string) (string, error) {
	api, err := EC2Client(state, region)
	if err != nil {
		return "", err
	}
	found, err := image.FindByName(ctx, api, &image.FindByNameInput{Name: s.AMIName})
	if err != nil {
		return "", fmt.Errorf("look up AMIs named %q in %s: %w", s.AMIName, region, err)
	}
	imgs := found.Images
	if len(imgs) == 0 {
		return "", nil
	}
	ids := make([]string, len(imgs))
	for i, img := range imgs {
		ids[i] = aws.ToString(img.ImageId)
	}
	if s.ForceDeregister {
		return fmt.Sprintf("AMI name %q is used by %s in %s; it will be deregistered before the new AMI is created (force_deregister)", s.AMIName, strings.Join(ids, ", "), region), nil
	}
	return "", fmt.Errorf("ami_name: an AMI named %q already exists in %s (%s); choose another name, or set force_deregister = true (or run packer build -force) to replace it",
		s.AMIName, region, strings.Join(ids, ", "))
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *StepCheckAMIName) Cleanup(multistep.StateBag) {}
