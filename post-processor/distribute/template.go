package distribute

import (
	"strings"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// TemplateData is the data `ami_name`, `ami_description`, `tags`,
// `snapshot_tags` (top-level and in region_override blocks) and the names
// and tags of `ssm_parameters` are rendered with, once per region, for
// example
// `ami_name = "{{ .SourceAMIName }}-{{ .Region }}"`.
type TemplateData struct {
	// SourceAMI is the ID of the AMI being distributed.
	SourceAMI string
	// SourceAMIName is its name.
	SourceAMIName string
	// SourceAMIDescription is its description.
	SourceAMIDescription string
	// SourceRegion is its region.
	SourceRegion string
	// BuildRegion is SourceRegion, under the name the builders use.
	BuildRegion string
	// Region is the region of the AMI the value is for: a target region,
	// or the source region for the input AMIs.
	Region string
	// SourceAMITags are the tags of the source AMI.
	SourceAMITags map[string]string
	// Name is the name of the AMI in Region; set for the names and tags of
	// ssm_parameters only.
	Name string
	// Account is the account the AMI is in; set for the names and tags of
	// ssm_parameters only.
	Account string
}

// newTemplateData returns the data for the source image src in
// sourceRegion, rendered for region.
func newTemplateData(src types.Image, sourceRegion, region string) *TemplateData {
	d := &TemplateData{
		SourceAMI:            aws.ToString(src.ImageId),
		SourceAMIName:        aws.ToString(src.Name),
		SourceAMIDescription: aws.ToString(src.Description),
		SourceRegion:         sourceRegion,
		BuildRegion:          sourceRegion,
		Region:               region,
		SourceAMITags:        map[string]string{},
	}
	for _, t := range src.Tags {
		d.SourceAMITags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return d
}

// placeholderData is used to check templates in Configure.
func placeholderData() *TemplateData {
	return &TemplateData{
		SourceAMI: "ami-0123456789abcdef0", SourceAMIName: "source-name", SourceAMIDescription: "source description",
		SourceRegion: "us-east-1", BuildRegion: "us-east-1", Region: "eu-west-1", SourceAMITags: map[string]string{},
	}
}

// parameterPlaceholderData is used to check the names and tags of
// ssm_parameters in Configure.
func parameterPlaceholderData() *TemplateData {
	d := placeholderData()
	d.Name, d.Account = "source-name", "123456789012"
	return d
}

// render renders one template string with data; strings without "{{"
// are returned as they are.
func (c *Config) render(s string, data *TemplateData) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	ictx := c.ctx
	ictx.Data = data
	return interpolate.Render(s, &ictx)
}

// renderTags renders the keys and values of tags; field names the option
// in errors.
func (c *Config) renderTags(field string, tags map[string]string, data *TemplateData) (map[string]string, error) {
	return amibuild.RenderTagsWith(field, tags, func(s string) (string, error) { return c.render(s, data) })
}
