package amibuild

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// Artifact is the result of a build: one AMI per region. Its ID has the
// form "region:ami-…[,region:ami-…]", which the ami-distribute
// post-processor (and HashiCorp's) understand.
type Artifact struct {
	// Amis maps each region to the AMI made there.
	Amis map[string]string
	// BuilderIdValue is the ID of the builder that made the artifact.
	BuilderIdValue string // named after packersdk.Artifact.BuilderId
	// SourceAMI is the ID of the source AMI, for HCP Packer ancestry.
	SourceAMI string
	// StateData holds values returned by State, such as "generated_data".
	StateData map[string]any
	// EC2 returns the client used by Destroy for a region. When nil,
	// Destroy fails.
	EC2 func(region string) image.DeregisterAPI
	// KeepSnapshotIDs are snapshots Destroy never deletes although the
	// AMIs may refer to them: those the template's block device mappings
	// were given (snapshot_id), which belong to the user.
	KeepSnapshotIDs []string
}

// BuilderId returns the ID of the builder that made the artifact.
func (a *Artifact) BuilderId() string { return a.BuilderIdValue }

// Files returns nil: an AMI is not a local file.
func (a *Artifact) Files() []string { return nil }

// Id returns "region:ami-…" for every AMI, comma-separated and sorted by
// region (see ArtifactID).
func (a *Artifact) Id() string { return amiconfig.ArtifactID(a.Amis).String() }

// String describes the artifact for humans.
func (a *Artifact) String() string {
	lines := make([]string, 0, len(a.Amis)+1)
	lines = append(lines, "AMIs were created:")
	for _, r := range amiconfig.ArtifactID(a.Amis).Regions() {
		lines = append(lines, fmt.Sprintf("%s: %s", r, a.Amis[r]))
	}
	return strings.Join(lines, "\n")
}

// State returns named artifact data: the HCP Packer registry metadata for
// "par.artifact.metadata", else an entry of StateData.
func (a *Artifact) State(name string) any {
	if name == registryimage.ArtifactStateURI {
		return a.registryImages()
	}
	if v, ok := a.StateData[name]; ok {
		return v
	}
	return nil
}

// registryImages returns one HCP Packer image per region, in region order,
// labelled with the build's generated data.
func (a *Artifact) registryImages() []*registryimage.Image {
	labels := map[string]string{}
	if gd, ok := a.StateData[StateGeneratedData.Name()].(map[string]any); ok {
		for k, v := range gd {
			if s, ok := v.(string); ok && s != "" {
				labels[k] = s
			}
		}
	}
	var imgs []*registryimage.Image
	for _, region := range amiconfig.ArtifactID(a.Amis).Regions() {
		imgs = append(imgs, &registryimage.Image{
			ImageID:        a.Amis[region],
			ProviderName:   "aws",
			ProviderRegion: region,
			SourceImageID:  a.SourceAMI,
			Labels:         maps.Clone(labels),
		})
	}
	return imgs
}

// Destroy deregisters every AMI of the artifact and deletes its snapshots,
// except those in KeepSnapshotIDs, and nothing else. It tries every region
// and reports all failures.
func (a *Artifact) Destroy() error {
	if a.EC2 == nil {
		return errors.New("artifact has no AWS access to destroy its AMIs")
	}
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	var errs []error
	for _, r := range amiconfig.ArtifactID(a.Amis).Regions() {
		_, err := image.Deregister(ctx, a.EC2(r), &image.DeregisterInput{
			ImageID:         a.Amis[r],
			DeleteSnapshots: true,
			KeepSnapshotIDs: a.KeepSnapshotIDs,
			Region:          r,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("destroy %s in %s: %w", a.Amis[r], r, err))
		}
	}
	return errors.Join(errs...)
}
