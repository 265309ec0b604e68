package distribute

import (
	"fmt"
	"sort"
	"strings"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// RegionAMI is one AMI of an artifact.
type RegionAMI struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
}

// ParseArtifactID reads an artifact ID of the form
// "region:ami-…[,region:ami-…]", as made by this plugin's builders and
// HashiCorp's amazon builders. It returns the AMIs sorted by region, or an
// error naming the first malformed part. An empty ID is an error too.
func ParseArtifactID(id string) ([]RegionAMI, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, fmt.Errorf("artifact id is empty; want region:ami-…[,region:ami-…]")
	}
	var out []RegionAMI
	seen := map[string]bool{}
	for i, part := range strings.Split(id, ",") {
		part = strings.TrimSpace(part)
		region, ami, ok := strings.Cut(part, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("artifact id %q: part %d (%q) is not region:ami-…", id, i+1, part)
		case distribute.ValidateRegion(region) != nil:
			return nil, fmt.Errorf("artifact id %q: part %d: %w", id, i+1, distribute.ValidateRegion(region))
		case !amibuild.ValidAMIID(ami):
			return nil, fmt.Errorf("artifact id %q: part %d: %q is not an AMI ID (ami- and 8 or 17 hex digits)", id, i+1, ami)
		case seen[region]:
			return nil, fmt.Errorf("artifact id %q: region %s appears more than once", id, region)
		}
		seen[region] = true
		out = append(out, RegionAMI{Region: region, ImageID: ami})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out, nil
}

// pickSource returns the index of the AMI to copy from: the one in
// preferred (the configured region) when the artifact has one there, else
// the first.
func pickSource(amis []RegionAMI, preferred string) int {
	for i, a := range amis {
		if a.Region == preferred {
			return i
		}
	}
	return 0
}
