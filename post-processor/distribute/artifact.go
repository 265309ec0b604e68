package distribute

import (
	"errors"
	"fmt"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"
	"github.com/mitchellh/mapstructure"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// BuilderId is the ID of the artifacts this post-processor returns.
const BuilderId = "amiforge.ami-distribute" // Packer's name

// Artifact is the output of ami-distribute: one AMI per region, the input
// AMIs included. Its ID has the form "region:ami-…,region:ami-…", sorted by
// region, so that other post-processors can read it.
type Artifact struct {
	// Amis maps each region to its AMI: the input AMIs and the copies.
	Amis map[string]string
	// Copies maps each region to the AMI this post-processor made there;
	// Destroy removes only these.
	Copies map[string]string
	// SourceAMI is the AMI the copies were made from.
	SourceAMI string
	// SourceRegion is its region.
	SourceRegion string
	// InputImages is the HCP Packer metadata of the input artifact, if it
	// had any; the entries of the input AMIs are carried forward.
	InputImages []registryimage.Image
	// Results are the per-region results of the run (not passed to
	// Packer; for callers in the same process).
	Results distribute.Results
	// EC2 returns the client Destroy uses for a region. When nil, Destroy
	// fails if there is a copy to remove.
	EC2 func(region string) image.DeregisterAPI
	// AccountAmis maps each target account to its copies, region to AMI.
	// They are not part of the ID (other post-processors act in this
	// account); the HCP Packer metadata lists them.
	AccountAmis map[string]map[string]string
	// AccountEC2 returns the client of a target account's region Destroy
	// uses for the account's copies (nil when the account is unknown).
	AccountEC2 func(account, region string) image.DeregisterAPI
}

var _ interface {
	BuilderId() string
	Files() []string
	Id() string
	String() string
	State(string) any
	Destroy() error
} = (*Artifact)(nil)

// BuilderId returns BuilderId.
func (a *Artifact) BuilderId() string { return BuilderId }

// Files returns nil: AMIs are not local files.
func (a *Artifact) Files() []string { return nil }

// regions returns the regions of Amis in order.
func (a *Artifact) regions() []string { return amiconfig.ArtifactID(a.Amis).Regions() }

// Id returns "region:ami-…" for every region, comma-separated and sorted
// by region (see amiconfig.ArtifactID).
func (a *Artifact) Id() string { return amiconfig.ArtifactID(a.Amis).String() }

// String lists the AMIs for humans, marking the copies.
func (a *Artifact) String() string {
	lines := []string{"AMIs distributed:"}
	for _, r := range a.regions() {
		note := ""
		switch {
		case a.Copies[r] != "":
			note = " (copy of " + a.SourceAMI + ")"
		case a.Amis[r] == a.SourceAMI:
			note = " (source)"
		}
		lines = append(lines, fmt.Sprintf("%s: %s%s", r, a.Amis[r], note))
	}
	for _, account := range sortedKeys(a.AccountAmis) {
		for _, r := range sortedKeys(a.AccountAmis[account]) {
			lines = append(lines, fmt.Sprintf("account %s, %s: %s (copy of %s)", account, r, a.AccountAmis[account][r], a.SourceAMI))
		}
	}
	return strings.Join(lines, "\n")
}

// State returns the HCP Packer registry metadata for
// "par.artifact.metadata", and nil for any other name.
func (a *Artifact) State(name string) any {
	if name == registryimage.ArtifactStateURI {
		return a.registryImages()
	}
	return nil
}

// registryImages returns one HCP Packer image per region, in region
// order, then one per copy in a target account.
func (a *Artifact) registryImages() []*registryimage.Image {
	var imgs []*registryimage.Image
	for _, region := range a.regions() {
		imgs = append(imgs, a.regionImage(region, a.Amis[region]))
	}
	for _, account := range sortedKeys(a.AccountAmis) {
		amis := a.AccountAmis[account]
		for _, region := range sortedKeys(amis) {
			imgs = append(imgs, &registryimage.Image{
				ImageID:        amis[region],
				ProviderName:   "aws",
				ProviderRegion: region,
				SourceImageID:  a.SourceAMI,
				Labels: map[string]string{
					"source_ami":    a.SourceAMI,
					"source_region": a.SourceRegion,
					"copied":        "true",
					"account_id":    account,
				},
			})
		}
	}
	return imgs
}

// regionImage returns the HCP Packer image of the AMI id in region, in
// this account. A copy descends from the source AMI; an input AMI keeps
// what its builder said about it (the AMI it was built from, its labels),
// so that the registry's ancestry does not stop at this post-processor.
func (a *Artifact) regionImage(region, id string) *registryimage.Image {
	img := &registryimage.Image{
		ImageID:        id,
		ProviderName:   "aws",
		ProviderRegion: region,
		Labels: map[string]string{
			"source_ami":    a.SourceAMI,
			"source_region": a.SourceRegion,
		},
	}
	if a.Copies[region] != "" {
		img.SourceImageID = a.SourceAMI
		img.Labels["copied"] = "true"
		return img
	}
	for _, in := range a.InputImages {
		if in.ImageID != id || in.ProviderRegion != "" && in.ProviderRegion != region {
			continue
		}
		img.SourceImageID = in.SourceImageID
		for k, v := range in.Labels {
			if _, ours := img.Labels[k]; !ours {
				img.Labels[k] = v
			}
		}
		break
	}
	return img
}

// Destroy deregisters the copies this post-processor made and deletes
// their snapshots, in every region, and nothing else: the input AMIs
// belong to the input artifact. It tries every region and reports all
// failures, within amiconfig.CleanupTimeout.
func (a *Artifact) Destroy() error {
	if len(a.Copies) == 0 && len(a.AccountAmis) == 0 {
		return nil
	}
	if a.EC2 == nil && len(a.Copies) > 0 {
		return errors.New("artifact has no AWS access to destroy its copies")
	}
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	regions := sortedKeys(a.Copies)
	var errs []error
	for _, r := range regions {
		_, err := image.Deregister(ctx, a.EC2(r), &image.DeregisterInput{ImageID: a.Copies[r], DeleteSnapshots: true, Region: r})
		if err != nil {
			errs = append(errs, fmt.Errorf("destroy %s in %s: %w", a.Copies[r], r, err))
		}
	}
	for _, account := range sortedKeys(a.AccountAmis) {
		for _, r := range sortedKeys(a.AccountAmis[account]) {
			id := a.AccountAmis[account][r]
			var api image.DeregisterAPI
			if a.AccountEC2 != nil {
				api = a.AccountEC2(account, r)
			}
			if api == nil {
				errs = append(errs, fmt.Errorf("destroy %s in account %s, %s: no access to the account", id, account, r))
				continue
			}
			if _, err := image.Deregister(ctx, api, &image.DeregisterInput{ImageID: id, DeleteSnapshots: true, Region: r}); err != nil {
				errs = append(errs, fmt.Errorf("destroy %s in account %s, %s: %w", id, account, r, err))
			}
		}
	}
	return errors.Join(errs...)
}

// inputRegistryImages reads the HCP Packer metadata of the input artifact,
// in whichever form it arrives: typed within one process, maps over the
// plugin RPC (decoded as Packer decodes it). Nothing, or anything
// unreadable, gives nil.
func inputRegistryImages(in packersdk.Artifact) []registryimage.Image {
	if in == nil {
		return nil
	}
	state := in.State(registryimage.ArtifactStateURI)
	if state == nil {
		return nil
	}
	var imgs []registryimage.Image
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &imgs, WeaklyTypedInput: true})
	if err != nil || dec.Decode(state) != nil {
		return nil
	}
	return imgs
}
