package amibuild

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// StepFindSourceAMI finds the source AMI by ID or by filter, checks its root
// device type, and publishes the build variables derived from it.
//
// State used: StateSession, StateUI.
// State produced: StateSourceImage, StateBuildInfo, and the generated data
// ("generated_data") named by GeneratedDataNames.
type StepFindSourceAMI struct {
	// Region is the build region.
	Region string
	// SourceAMI is the ID of the source AMI; when empty, Filter is used.
	SourceAMI string
	// Filter selects the source AMI when SourceAMI is empty.
	Filter amiconfig.SourceAMIFilter
	// RootDeviceType, when set ("ebs" or "instance-store"), is the root
	// device type the source AMI must have.
	RootDeviceType string
	// GeneratedData receives the build variables.
	GeneratedData *packerbuilderdata.GeneratedData
}

// Run implements multistep.Step.
func (s *StepFindSourceAMI) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	api, err := EC2Client(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	if s.SourceAMI != "" {
		u.Sayf("Looking up source AMI %s...", s.SourceAMI)
	} else {
		u.Say("Looking up source AMI by source_ami_filter...")
	}
	in := s.Filter.FindInput(s.SourceAMI, s.Region)
	out, err := image.Find(ctx, api, in)
	if err != nil {
		return Halt(state, u, fmt.Errorf("find source AMI in %s: %w", s.Region, err))
	}
	img := out.Image
	id := aws.ToString(img.ImageId)
	if s.RootDeviceType != "" && string(img.RootDeviceType) != s.RootDeviceType {
		return Halt(state, u, fmt.Errorf("source AMI %s (%s) has root device type %q; this builder needs a source AMI with root device type %q",
			id, aws.ToString(img.Name), img.RootDeviceType, s.RootDeviceType))
	}
	u.Sayf("Found source AMI %s (%s)", id, aws.ToString(img.Name))

	info := amiconfig.NewBuildInfo(s.Region, img)
	StateSourceImage.Put(state, img)
	StateBuildInfo.Put(state, info)
	if s.GeneratedData != nil {
		for k, v := range info.Generated() {
			s.GeneratedData.Put(k, v)
		}
	}
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *StepFindSourceAMI) Cleanup(multistep.StateBag) {}
