package amibuild

//lint:file-ignore SA1019 Packer's Ui.Message prints the indented detail lines this output is made of; Say would make each a "==>" heading

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// StepDistribute copies the AMI the build made to ami_regions and shares,
// deprecates and protects every AMI of the build (HashiCorp's builder
// options), with distribute.Distribute: pre-flight checks first, each copy
// shared and tagged as soon as it is available, protection last. When
// anything fails, or the build is cancelled, every copy is removed again
// in every region, here or, if a later step fails, in Cleanup.
//
// With skip_save_build_region the AMI in the build region (made under a
// temporary name) is deregistered with its snapshots once every copy
// succeeded, and the artifact holds the copies only.
//
// It does nothing when no such option is set.
//
// State used: StateSession, StateUI, StateImageID, StateImage (when set, the
// source is not described again), StateBuildInfo.
// State produced: StateAMIs (every region's AMI).
type StepDistribute struct {
	// Region is the build region.
	Region string
	// Config holds the options (PrepareDistribution has run).
	Config *AMIConfig
	// Description is the copies' description before rendering.
	Description string
	// Wait bounds waiting for copies.
	Wait image.WaitOptions
	// Ctx renders tags and the description with the build data.
	Ctx interpolate.Context
	// KeepSnapshotIDs are the user's snapshots the mappings are given;
	// removing the temporary AMI never deletes them.
	KeepSnapshotIDs []string

	copies ledger.Ledger
}

// Run implements multistep.Step.
func (s *StepDistribute) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := s.Config
	if !c.Distributes() && !c.AMISkipBuildRegion {
		return multistep.ActionContinue
	}
	u := UI(state)
	sess, err := Session(state)
	if err != nil {
		return Halt(state, u, err)
	}
	id, ok := StateImageID.Get(state)
	if !ok || id == "" {
		return Halt(state, u, fmt.Errorf("internal error: no AMI in the build state to distribute"))
	}
	in, err := s.input(state, id)
	if err != nil {
		return Halt(state, u, err)
	}
	if len(in.Copy.Targets) > 0 {
		u.Sayf("Copying AMI %s to %s...", id, strings.Join(targetRegions(in.Copy.Targets), ", "))
	} else {
		u.Sayf("Sharing, deprecating and protecting AMI %s...", id)
	}
	out, err := distribute.Distribute(ctx, sess.EC2, in, func(o *distribute.Options) {
		o.Ledger = &s.copies
		o.Logf = func(format string, args ...any) { u.Message(fmt.Sprintf(format, args...)) }
		o.Wait = s.Wait
		o.KMS = func(region string) distribute.DescribeKeyAPI { return sess.KMS(region) }
	})
	if out != nil && len(out.Results) > 0 {
		u.Message(strings.TrimRight(out.Results.String(), "\n"))
	}
	if err != nil {
		return Halt(state, u, fmt.Errorf("distribute AMI %s: %w", id, err))
	}
	amis := out.ImageIDs()

	// The copies inherit the IMDS support set on the build region's AMI
	// only through CopyImage on EC2; set it explicitly on every copy.
	if c.AMIIMDSSupport != "" {
		for region, cid := range out.Copies() {
			api, err := EC2Client(state, region)
			if err != nil {
				return Halt(state, u, err)
			}
			if _, err := image.SetIMDSSupport(ctx, api, &image.SetIMDSSupportInput{ImageID: cid, Value: c.AMIIMDSSupport, Region: region}); err != nil {
				return Halt(state, u, fmt.Errorf("imds_support of the copy %s in %s: %w", cid, region, err))
			}
		}
	}

	if c.AMISkipBuildRegion {
		api, err := EC2Client(state, s.Region)
		if err != nil {
			return Halt(state, u, err)
		}
		u.Sayf("Removing the temporary AMI %s in %s (skip_save_build_region)...", id, s.Region)
		if _, err := image.Deregister(ctx, api, &image.DeregisterInput{
			ImageID: id, DeleteSnapshots: true, KeepSnapshotIDs: s.KeepSnapshotIDs, Region: s.Region,
		}); err != nil {
			return Halt(state, u, fmt.Errorf("remove the temporary AMI %s in %s: %w", id, s.Region, err))
		}
		delete(amis, s.Region)
	}
	StateAMIs.Put(state, amis)
	return multistep.ActionContinue
}

// input maps the options to the distribution of the AMI id.
func (s *StepDistribute) input(state multistep.StateBag, id string) (*distribute.DistributeInput, error) {
	c := s.Config
	info, _ := StateBuildInfo.Get(state)
	if info == nil {
		info = &amiconfig.BuildInfo{}
	}
	dep, err := c.Deprecation()
	if err != nil {
		return nil, err
	}
	in := &distribute.DistributeInput{
		Copy: distribute.CopyInput{
			SourceImageID: id,
			SourceRegion:  s.Region,
			Name:          c.AMIName,
			Permissions:   c.Permissions(),
			Deprecation:   dep,
			RunID:         distribute.NewRunID(),
			// StepCheckRegion checked every region before the build
			// (unless skip_region_validation, which uses them as given),
			// and StepCheckAMIName the name in each; StepDeregisterExisting
			// removed our AMIs of that name with force_deregister.
			SkipRegionCheck:     true,
			SkipNameCheck:       true,
			SnapshotCopyMinutes: c.SnapshotCopyDurationMinutes,
		},
		Inputs:      []distribute.InputImage{{Region: s.Region, ImageID: id}},
		ShareInputs: !c.AMISkipBuildRegion,
		Protection: distribute.Protection{
			Enabled:      c.DeregistrationProtection.Enabled,
			WithCooldown: c.DeregistrationProtection.WithCooldown,
		},
	}
	// As in HashiCorp's builders, {{ .BuildRegion }} is the build region in
	// every copy's tags and description too.
	desc, err := amiconfig.RenderDescription(s.Ctx, s.Description, info)
	if err != nil {
		return nil, err
	}
	tags, err := amiconfig.RenderTags(s.Ctx, "tags", c.AMITags, info)
	if err != nil {
		return nil, err
	}
	snapTags, err := amiconfig.RenderTags(s.Ctx, "snapshot_tags", c.SnapshotTags, info)
	if err != nil {
		return nil, err
	}
	if img, ok := StateImage.Get(state); ok && aws.ToString(img.ImageId) == id {
		in.Copy.Source = &img // as described when it became available
	}
	for _, region := range c.AMIRegions {
		t := distribute.Target{Region: region, Description: desc, Tags: tags, SnapshotTags: snapTags}
		switch c.AMIEncryptBootVolume {
		case config.TriTrue:
			t.Encrypted = aws.Bool(true)
			t.KMSKeyID = c.CopyKMSKeyID(region)
		case config.TriFalse:
			t.Encrypted = aws.Bool(false)
		}
		in.Copy.Targets = append(in.Copy.Targets, t)
	}
	return in, nil
}

// Cleanup removes the copies when a later step failed or the build was
// cancelled after this step.
func (s *StepDistribute) Cleanup(state multistep.StateBag) {
	if !RolledBack(state) || len(s.copies.Resources()) == 0 {
		return
	}
	u := UI(state)
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	for _, r := range s.copies.Resources() {
		u.Sayf("Removing the copy %s, because the build did not finish...", r)
	}
	if err := s.copies.Undo(ctx); err != nil {
		u.Error(fmt.Sprintf("Error removing copies of the AMI; deregister them and delete their snapshots by hand: %v", err))
	}
}

func targetRegions(ts []distribute.Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Region
	}
	return out
}

// TemporaryAMIName is the name of the AMI made in the build region with
// skip_save_build_region: name with a random suffix, within the 128
// characters AMI names may have, so that it never collides with name.
func TemporaryAMIName(name string) string {
	suffix := " temporary " + randomAlnum(8)
	if len(name)+len(suffix) > 128 {
		name = name[:128-len(suffix)]
	}
	return name + suffix
}

// randomAlnum returns n random lower-case letters and digits.
func randomAlnum(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
