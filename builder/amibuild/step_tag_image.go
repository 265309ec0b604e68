package amibuild

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// StepTagImage tags every AMI the build made, and its snapshots, with the
// rendered tags and snapshot_tags. Tagging retries AWS's eventual
// consistency for new resources. It does nothing when no tag is configured.
//
// State used: StateSession, StateUI, StateAMIs, StateBuildInfo, and
// StateImageID with StateSnapshotIDs when set (the snapshots of that AMI
// are then not looked up again).
// State produced: none.
type StepTagImage struct {
	// Tags are the AMI tags before rendering.
	Tags map[string]string
	// SnapshotTags are the snapshot tags before rendering.
	SnapshotTags map[string]string
	// Ctx renders the tags with the build data.
	Ctx interpolate.Context
}

// Run implements multistep.Step.
func (s *StepTagImage) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if len(s.Tags) == 0 && len(s.SnapshotTags) == 0 {
		return multistep.ActionContinue
	}
	u := UI(state)
	amis, ok := StateAMIs.Get(state)
	if !ok || len(amis) == 0 {
		return Halt(state, u, fmt.Errorf("internal error: no AMI in the build state to tag"))
	}
	info, _ := StateBuildInfo.Get(state)
	if info == nil {
		info = &amiconfig.BuildInfo{}
	}
	regions := make([]string, 0, len(amis))
	for r := range amis {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	builtID, _ := StateImageID.Get(state)
	builtSnaps, snapsKnown := StateSnapshotIDs.Get(state)
	if snapsKnown && builtSnaps == nil {
		builtSnaps = []string{}
	}
	for _, region := range regions {
		id := amis[region]
		regional := *info
		regional.BuildRegion = region
		tags, err := amiconfig.RenderTags(s.Ctx, "tags", s.Tags, &regional)
		if err != nil {
			return Halt(state, u, err)
		}
		snapTags, err := amiconfig.RenderTags(s.Ctx, "snapshot_tags", s.SnapshotTags, &regional)
		if err != nil {
			return Halt(state, u, err)
		}
		api, err := EC2Client(state, region)
		if err != nil {
			return Halt(state, u, err)
		}
		u.Sayf("Tagging AMI %s in %s and its snapshots...", id, region)
		in := &image.TagInput{
			ImageID:      id,
			Tags:         tags,
			SnapshotTags: snapTags,
			Region:       region,
		}
		if snapsKnown && id == builtID {
			in.SnapshotIDs = builtSnaps
		}
		_, err = image.Tag(ctx, api, in)
		if err != nil {
			return Halt(state, u, fmt.Errorf("tag AMI %s in %s: %w", id, region, err))
		}
	}
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; tags go with the AMI.
func (s *StepTagImage) Cleanup(multistep.StateBag) {}
