package amibuild

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// StepDeregisterExisting deregisters the AMIs we own that have the name the
// new AMI will get, when force_deregister (or packer build -force) is set,
// and with force_delete_snapshot also deletes their snapshots, except those
// the template's block device mappings are given (ami-instance removes the
// build region's old AMIs its own way, RemoveInBuildRegion). It runs just
// before the new AMI is created, so a build that fails earlier leaves the
// old AMI in place. Deregistration cannot be undone, so Cleanup does
// nothing.
//
// State used: StateSession, StateUI.
// State produced: none.
type StepDeregisterExisting struct {
	// Region is the build region.
	Region string
	// AMIName is the name of the AMI about to be created.
	AMIName string
	// Force enables the step.
	Force bool
	// DeleteSnapshots also deletes the snapshots of deregistered AMIs.
	DeleteSnapshots bool
	// KeepSnapshotIDs are snapshots never deleted, even when an old AMI
	// refers to them: the snapshots the template's block device mappings
	// are given, which the new AMI is about to use too.
	KeepSnapshotIDs []string
	// CopyRegions are the regions the AMI is copied to (ami_regions),
	// where an AMI of the same name is deregistered too.
	CopyRegions []string
	// SkipBuildRegion leaves the build region alone: the AMI made there
	// gets a temporary name (skip_save_build_region).
	SkipBuildRegion bool

	// RemoveInBuildRegion, when set, removes each old AMI of the build
	// region in place of deregistering it and deleting its snapshots:
	// ami-instance deletes the AMI's bundle with it. The copy regions
	// always use the default.
	RemoveInBuildRegion func(ctx context.Context, state multistep.StateBag, api image.DeregisterAPI, img types.Image) error
	// EC2 returns the client for a region; nil uses the session's.
	EC2 func(region string) image.DeregisterAPI
}

// Run implements multistep.Step.
func (s *StepDeregisterExisting) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if !s.Force {
		return multistep.ActionContinue
	}
	u := UI(state)
	regions := s.CopyRegions
	if !s.SkipBuildRegion {
		regions = append([]string{s.Region}, regions...)
	}
	for _, region := range regions {
		if err := s.deregister(ctx, state, region); err != nil {
			return Halt(state, u, err)
		}
	}
	return multistep.ActionContinue
}

// deregister removes the AMIs named AMIName in region.
func (s *StepDeregisterExisting) deregister(ctx context.Context, state multistep.StateBag, region string) error {
	u := UI(state)
	api, err := s.client(state, region)
	if err != nil {
		return err
	}
	found, err := image.FindByName(ctx, api, &image.FindByNameInput{Name: s.AMIName})
	if err != nil {
		return fmt.Errorf("look up AMIs named %q in %s: %w", s.AMIName, region, err)
	}
	for _, img := range found.Images {
		u.Sayf("Deregistering existing AMI %s named %q in %s (force_deregister)...", aws.ToString(img.ImageId), s.AMIName, region)
		if region == s.Region && s.RemoveInBuildRegion != nil {
			err = s.RemoveInBuildRegion(ctx, state, api, img)
		} else {
			err = s.deregisterImage(ctx, u, api, region, aws.ToString(img.ImageId))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// client returns the EC2 client for region.
func (s *StepDeregisterExisting) client(state multistep.StateBag, region string) (image.DeregisterAPI, error) {
	if s.EC2 != nil {
		return s.EC2(region), nil
	}
	return EC2Client(state, region)
}

// deregisterImage deregisters the AMI id and, with DeleteSnapshots, deletes
// its snapshots except KeepSnapshotIDs.
func (s *StepDeregisterExisting) deregisterImage(ctx context.Context, u packersdk.Ui, api image.DeregisterAPI, region, id string) error {
	out, err := image.Deregister(ctx, api, &image.DeregisterInput{
		ImageID:         id,
		DeleteSnapshots: s.DeleteSnapshots,
		KeepSnapshotIDs: s.KeepSnapshotIDs,
		Region:          region,
	})
	if err != nil {
		return fmt.Errorf("deregister existing AMI %s in %s: %w", id, region, err)
	}
	for _, snap := range out.DeletedSnapshotIDs {
		u.Sayf("Deleted snapshot %s of %s", snap, id)
	}
	for _, snap := range out.KeptSnapshotIDs {
		u.Sayf("Kept snapshot %s of %s: the template's block device mappings use it", snap, id)
	}
	return nil
}

// Cleanup implements multistep.Step; deregistration cannot be undone.
func (s *StepDeregisterExisting) Cleanup(multistep.StateBag) {}
