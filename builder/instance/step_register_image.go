package instance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// stepRegisterImage registers the AMI from the uploaded bundle's manifest,
// in the bucket's region, with the machine settings of the configuration.
// When the run is cancelled or halted (a later step fails), Cleanup
// deregisters it again; the bundle step deletes the objects.
//
// State used: amibuild.StateSession, amibuild.StateUI,
// amibuild.StateBuildInfo, stateBundle, stateBucketRegion.
// State produced: amibuild.StateImageID, amibuild.StateImage, amibuild.StateAMIs,
// stateImageLocation.
type stepRegisterImage struct {
	// Region is the build region.
	Region string
	// Name and Description are the AMI's; Description is rendered with
	// the build data.
	Name, Description string
	// Tags are the AMI's tags before rendering; RegisterImage puts them on
	// the AMI as it makes it.
	Tags map[string]string
	// Ctx renders Description and Tags.
	Ctx interpolate.Context
	// Wait is how the step waits for the AMI to become available.
	Wait image.WaitOptions
	// The machine settings.
	VirtualizationType  string
	RootDeviceName      string
	BlockDeviceMappings []types.BlockDeviceMapping
	ENASupport          *bool
	SriovNetSupport     bool
	BootMode            string
	TPMSupport          string
	IMDSSupport         string

	created ledger.Ledger
}

// Run implements multistep.Step.
func (s *stepRegisterImage) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := amibuild.UI(state)
	sess, err := amibuild.Session(state)
	if err != nil {
		return amibuild.Halt(state, u, err)
	}
	b, ok := stateBundle.Get(state)
	if !ok || b == nil {
		return amibuild.Halt(state, u, errors.New("internal error: no bundle in the build state"))
	}
	region, _ := stateBucketRegion.Get(state)
	if region == "" {
		region = s.Region
	}
	info, _ := amibuild.StateBuildInfo.Get(state)
	if info == nil {
		info = &amiconfig.BuildInfo{BuildRegion: s.Region}
	}
	desc, err := amiconfig.RenderDescription(s.Ctx, s.Description, info)
	if err != nil {
		return amibuild.Halt(state, u, err)
	}
	tags, err := amiconfig.RenderTags(s.Ctx, "tags", s.Tags, info)
	if err != nil {
		return amibuild.Halt(state, u, err)
	}

	loc := b.Location.ImageLocation()
	u.Sayf("Registering AMI %q from %s in %s...", s.Name, loc, region)
	wait := amiconfig.ImageProgress(s.Wait, u.Say)
	wait.Since = time.Now()
	out, err := bundlestore.Register(ctx, sess.EC2(region), &bundlestore.RegisterInput{
		ImageLocation:       loc,
		Region:              region,
		Name:                s.Name,
		Description:         desc,
		Tags:                tags,
		Manifest:            b.Manifest,
		VirtualizationType:  s.VirtualizationType,
		RootDeviceName:      s.RootDeviceName,
		BlockDeviceMappings: s.BlockDeviceMappings,
		ENASupport:          s.ENASupport,
		SriovNetSupport:     s.SriovNetSupport,
		BootMode:            s.BootMode,
		TPMSupport:          s.TPMSupport,
		IMDSSupport:         s.IMDSSupport,
	}, func(o *bundlestore.Options) { o.Ledger = &s.created })
	if err != nil {
		// The error names the AMI, the manifest and the region.
		return amibuild.Halt(state, u, err)
	}
	u.Sayf("Registered AMI %s in %s; waiting for it to become available...", out.ImageID, region)
	waited, err := image.Wait(ctx, sess.EC2(region), &image.WaitInput{ImageID: out.ImageID, Region: region, Wait: wait})
	if err != nil {
		return amibuild.Halt(state, u, fmt.Errorf("AMI %s in %s: %w", out.ImageID, region, err))
	}
	img := waited.Image
	u.Sayf("AMI %s is available in %s", out.ImageID, region)
	amibuild.StateImageID.Put(state, out.ImageID)
	amibuild.StateImage.Put(state, img)
	amibuild.StateAMIs.Put(state, map[string]string{region: out.ImageID})
	stateImageLocation.Put(state, out.ImageLocation)
	return multistep.ActionContinue
}

// Cleanup deregisters the AMI when the run was cancelled or halted.
func (s *stepRegisterImage) Cleanup(state multistep.StateBag) {
	if s.created.Len() == 0 || !amibuild.RolledBack(state) {
		return
	}
	u := amibuild.UI(state)
	u.Say("Deregistering the AMI of the failed build...")
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	if err := s.created.Undo(ctx); err != nil {
		u.Error(fmt.Sprintf("Error deregistering the AMI; deregister it by hand: %v", err))
	}
}
