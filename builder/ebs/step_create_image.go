package ebs

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// stepCreateImage creates the AMI from the stopped build instance and waits
// until it is available. When the run is cancelled or halted, Cleanup
// deregisters the AMI and deletes its snapshots, except the user's
// snapshots that the block device mappings are given.
//
// State used: StateSession, StateUI, StateInstanceID, StateBuildInfo.
// State produced: StateImageID, StateImage, StateSnapshotIDs, StateAMIs.
type stepCreateImage struct {
	Region string
	Config *amibuild.AMIConfig
	Wait   image.WaitOptions
	// Ctx renders ami_description with the build data.
	Ctx interpolate.Context
	// KeepSnapshotIDs are the user's snapshots the mappings are given;
	// removing the AMI never deletes them.
	KeepSnapshotIDs []string

	created ledger.Ledger
}

// Run implements multistep.Step.
func (s *stepCreateImage) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	ui := amibuild.UI(state)
	api, err := amibuild.EC2Client(state, s.Region)
	if err != nil {
		return amibuild.Halt(state, ui, err)
	}
	instanceID, ok := amibuild.StateInstanceID.Get(state)
	if !ok || instanceID == "" {
		return amibuild.Halt(state, ui, fmt.Errorf("internal error: no build instance in the build state"))
	}
	info, _ := amibuild.StateBuildInfo.Get(state)
	desc, err := amiconfig.RenderDescription(s.Ctx, s.Config.AMIDescription, info)
	if err != nil {
		return amibuild.Halt(state, ui, err)
	}

	ui.Sayf("Creating AMI %q from instance %s...", s.Config.AMIName, instanceID)
	out, err := image.Create(ctx, api, &image.CreateInput{
		InstanceID:          instanceID,
		Name:                s.Config.AMIName,
		Description:         desc,
		BlockDeviceMappings: s.Config.AMIMappings.Mappings(),
		KeepSnapshotIDs:     s.KeepSnapshotIDs,
		Wait:                s.waitOptions(ui),
		Region:              s.Region,
	}, func(o *image.Options) { o.Ledger = &s.created })
	if err != nil {
		return amibuild.Halt(state, ui, fmt.Errorf("create AMI %q in %s: %w", s.Config.AMIName, s.Region, err))
	}
	amibuild.StateImageID.Put(state, out.ImageID)
	amibuild.StateImage.Put(state, out.Image)
	amibuild.StateSnapshotIDs.Put(state, out.SnapshotIDs)
	amibuild.StateAMIs.Put(state, map[string]string{s.Region: out.ImageID})
	ui.Sayf("AMI %s is available in %s", out.ImageID, s.Region)
	return multistep.ActionContinue
}

// waitOptions are s.Wait with a progress line to ui once a minute while the
// AMI is pending.
func (s *stepCreateImage) waitOptions(ui packersdk.Ui) image.WaitOptions {
	return amiconfig.ImageProgress(s.Wait, ui.Say)
}

// Cleanup deregisters the AMI and deletes its snapshots when the run was
// cancelled or halted; after a successful run the AMI is the artifact. The
// AMI is known from the moment CreateImage answered (it is in the step's
// ledger), so an AMI whose wait failed is removed too.
func (s *stepCreateImage) Cleanup(state multistep.StateBag) {
	if !amibuild.RolledBack(state) || len(s.created.Resources()) == 0 {
		return
	}
	ui := amibuild.UI(state)
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	for _, r := range s.created.Resources() {
		ui.Sayf("Removing %s, because the build did not finish...", r)
	}
	if err := s.created.Undo(ctx); err != nil {
		ui.Error(fmt.Sprintf("Error removing the AMI the build created in %s; deregister it and delete its snapshots by hand: %v", s.Region, err))
	}
}
