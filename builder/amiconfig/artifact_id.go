package amiconfig

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// ArtifactID is the ID of an artifact that holds one AMI per region, as a
// map of region to AMI ID. Its text form, "region:ami-…[,region:ami-…]"
// sorted by region, is the Id of the builders' and the ami-distribute
// post-processor's artifacts; HashiCorp's amazon builders use it too, and
// downstream tools parse it, so it never changes.
type ArtifactID map[string]string

// Regions returns the regions of the ID in order.
func (id ArtifactID) Regions() []string { return slices.Sorted(maps.Keys(id)) }

// String returns "region:ami-…" for every AMI, comma-separated and sorted
// by region.
func (id ArtifactID) String() string {
	parts := make([]string, 0, len(id))
	for _, r := range id.Regions() {
		parts = append(parts, r+":"+id[r])
	}
	return strings.Join(parts, ",")
}

// ParseArtifactID reads an artifact ID of the form
// "region:ami-…[,region:ami-…]", as made by this plugin's builders and
// HashiCorp's amazon builders, allowing spaces around each part. It returns
// an error naming the first malformed part, and for an empty ID, so that a
// post-processor tells the user at once that its input is not an AMI
// artifact.
func ParseArtifactID(s string) (ArtifactID, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("artifact id is empty; want region:ami-…[,region:ami-…]")
	}
	id := ArtifactID{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		region, ami, ok := strings.Cut(part, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("artifact id %q: part %d (%q) is not region:ami-…", s, i+1, part)
		case distribute.ValidateRegion(region) != nil:
			return nil, fmt.Errorf("artifact id %q: part %d: %w", s, i+1, distribute.ValidateRegion(region))
		case !ValidAMIID(ami):
			return nil, fmt.Errorf("artifact id %q: part %d: %q is not an AMI ID (ami- and 8 or 17 hex digits)", s, i+1, ami)
		case id[region] != "":
			return nil, fmt.Errorf("artifact id %q: region %s appears more than once", s, region)
		}
		id[region] = ami
	}
	return id, nil
}
