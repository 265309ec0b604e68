package instance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
)

// stepCheckSourceImage checks the source AMI found by
// amibuild.StepFindSourceAMI before an instance is launched from it:
// Windows images are refused (Windows instance-store AMIs cannot be
// created), and so are EBS-backed ones, since this builder makes
// instance-store AMIs from instance-store instances. With local_emulator
// and a loopback EC2 endpoint (an emulator, which reports root device
// types unreliably) a root device type other than instance-store is only a
// warning; a custom endpoint alone changes nothing.
//
// State used: amibuild.StateSourceImage, amibuild.StateSession,
// amibuild.StateUI.
// State produced: none.
type stepCheckSourceImage struct {
	// LocalEmulator is the local_emulator option, checked again here
	// against the session's EC2 endpoint.
	LocalEmulator bool
}

// Run implements multistep.Step.
func (s *stepCheckSourceImage) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	u := amibuild.UI(state)
	img, ok := amibuild.StateSourceImage.Get(state)
	if !ok {
		return amibuild.Halt(state, u, errors.New("internal error: no source AMI in the build state"))
	}
	sess, _ := amibuild.StateSession.Get(state)
	local := s.LocalEmulator && sess != nil && awscfg.LoopbackEndpoint(sess.Endpoints().EC2)
	if err := checkSourceImage(img, local); err != nil {
		return amibuild.Halt(state, u, err)
	}
	if rt := img.RootDeviceType; rt != types.DeviceTypeInstanceStore {
		u.Sayf("Warning: source AMI %s reports root device type %q, not instance-store; accepted because local_emulator is set",
			aws.ToString(img.ImageId), rt)
	}
	return multistep.ActionContinue
}

// checkSourceImage returns why img cannot be the source of an
// instance-store AMI, or nil. localEmulator relaxes the root device type
// check.
func checkSourceImage(img types.Image, localEmulator bool) error {
	id := aws.ToString(img.ImageId)
	if img.Platform == types.PlatformValuesWindows || strings.HasPrefix(strings.ToLower(aws.ToString(img.PlatformDetails)), "windows") {
		return fmt.Errorf("source AMI %s (%s) is a Windows image; Windows instance-store AMIs cannot be created, use the ami-ebs builder",
			id, aws.ToString(img.Name))
	}
	if img.RootDeviceType != types.DeviceTypeInstanceStore && !localEmulator {
		return fmt.Errorf("source AMI %s (%s) has root device type %q; the ami-instance builder needs an instance-store source AMI (use the ami-ebs builder for EBS-backed images)",
			id, aws.ToString(img.Name), img.RootDeviceType)
	}
	return nil
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *stepCheckSourceImage) Cleanup(multistep.StateBag) {}
