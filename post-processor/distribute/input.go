package distribute

import "github.com/amiforge/packer-plugin-ami/builder/amiconfig"

// RegionAMI is one AMI of an artifact.
type RegionAMI struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
}

// inputAMIs reads the ID of the input artifact, "region:ami-…[,region:ami-…]"
// as made by this plugin's builders and HashiCorp's amazon builders (see
// amiconfig.ParseArtifactID), into its AMIs sorted by region, the order the
// manifest lists them in.
func inputAMIs(artifactID string) ([]RegionAMI, error) {
	id, err := amiconfig.ParseArtifactID(artifactID)
	if err != nil {
		return nil, err
	}
	amis := make([]RegionAMI, 0, len(id))
	for _, r := range id.Regions() {
		amis = append(amis, RegionAMI{Region: r, ImageID: id[r]})
	}
	return amis, nil
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
