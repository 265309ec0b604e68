package distribute

import (
	"strings"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
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
	// BuildInfo is what the builders' templates see of the source AMI,
	// here the AMI being distributed: SourceAMI, SourceAMIName,
	// SourceAMIOwner, SourceAMIOwnerName, SourceAMICreationDate,
	// SourceAMITags, and BuildRegion, its region.
	amiconfig.BuildInfo
	// SourceAMIDescription is the description of the AMI being
	// distributed.
	SourceAMIDescription string
	// SourceRegion is its region, the same as BuildRegion.
	SourceRegion string
	// Region is the region of the AMI the value is for: a target region,
	// or the source region for the input AMIs.
	Region string
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
	return &TemplateData{
		BuildInfo:            *amiconfig.NewBuildInfo(sourceRegion, src),
		SourceAMIDescription: aws.ToString(src.Description),
		SourceRegion:         sourceRegion,
		Region:               region,
	}
}

// placeholderData is used to check templates in Configure.
func placeholderData() *TemplateData {
	src := types.Image{
		ImageId: aws.String("ami-0123456789abcdef0"), Name: aws.String("source-name"), Description: aws.String("source description"),
		OwnerId: aws.String("123456789012"), CreationDate: aws.String("2006-01-02T15:04:05.000Z"),
	}
	return newTemplateData(src, "us-east-1", "eu-west-1")
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
	return amiconfig.RenderTagsWith(field, tags, func(s string) (string, error) { return c.render(s, data) })
}
