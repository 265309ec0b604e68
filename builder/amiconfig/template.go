package amiconfig

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// TemplateFuncs are the template functions the builders add to Packer's,
// for use in ami_name and the other interpolated options.
var TemplateFuncs = map[string]any{
	"clean_resource_name": CleanAMIName,
}

// InterpolateExclude lists the options that Prepare does not interpolate
// because they use build variables known only once the source AMI is found;
// the steps render them with BuildInfo data.
var InterpolateExclude = []string{
	"ami_description",
	"run_tags",
	"run_volume_tags",
	"snapshot_tags",
	"tags",
	"run_tag",
	"run_volume_tag",
	"snapshot_tag",
	"tag",
	"spot_tags",
	"spot_tag",
	"fleet_tags",
	"fleet_tag",
	// Command templates of HashiCorp's amazon-instance, with variables of
	// its own: ami-instance refuses them, and says why, unrendered.
	"bundle_vol_command",
	"bundle_upload_command",
}

// DecodeConfig decodes raws into cfg, a pointer to a builder's
// configuration, as every builder's Prepare does: TemplateFuncs are added
// to ictx, and the InterpolateExclude options are left for the steps to
// render. pluginType is the builder's ID.
//
// The options rendered here cannot use the build variables, which are
// known only once the source AMI is found: a reference to one renders as a
// placeholder that BuildVariablesIn finds, so that Prepare can say so.
func DecodeConfig(pluginType string, cfg any, ictx *interpolate.Context, raws ...any) error {
	ictx.Funcs = TemplateFuncs
	ictx.Data = buildVariablePlaceholders()
	defer func() { ictx.Data = nil }()
	return config.Decode(cfg, &config.DecodeOpts{
		PluginType:         pluginType,
		Interpolate:        true,
		InterpolateContext: ictx,
		InterpolateFilter:  &interpolate.RenderFilter{Exclude: InterpolateExclude},
	}, raws...)
}

// buildVariablePlaceholders returns the data options are rendered with at
// Prepare: each build variable maps to a placeholder made of characters
// valid in AMI names, so that it survives clean_resource_name.
func buildVariablePlaceholders() map[string]any {
	data := make(map[string]any, len(GeneratedDataNames)+1)
	for _, name := range GeneratedDataNames {
		data[name] = placeholderPrefix + name + placeholderSuffix
	}
	data["SourceAMITags"] = map[string]string{}
	return data
}

const (
	placeholderPrefix = "[[build."
	placeholderSuffix = "]]"
)

var placeholderRE = regexp.MustCompile(`(?i)\[\[build\.([a-z]+)\]\]`)

// BuildVariablesIn returns the build variables (such as "SourceAMI") that
// s, an option rendered by DecodeConfig, refers to.
func BuildVariablesIn(s string) []string {
	var names []string
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		name := m[1]
		for _, n := range GeneratedDataNames {
			if strings.EqualFold(n, name) {
				name = n
			}
		}
		names = append(names, name)
	}
	return names
}

var invalidAMINameChars = regexp.MustCompile(`[^A-Za-z0-9()\[\] ./\-'@_]`)

// CleanAMIName replaces every character an AMI name may not contain with
// "-" and truncates the result to 128 characters. Templates call it as
// clean_resource_name.
func CleanAMIName(s string) string {
	s = invalidAMINameChars.ReplaceAllString(s, "-")
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

var amiNameRE = regexp.MustCompile(`^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$`)

// ValidAMIName reports whether s is a valid AMI name: 3 to 128 characters
// of letters, digits and ( ) [ ] space . / - ' @ _.
func ValidAMIName(s string) bool { return amiNameRE.MatchString(s) }

// BuildInfo is the data the build-time templates (tags, run_tags,
// snapshot_tags, ami_description) are rendered with, for example
// `{{ .SourceAMIName }}`. The same values are exposed to provisioners and
// post-processors as generated data (`build.SourceAMIName` in HCL2).
type BuildInfo struct {
	// BuildRegion is the region the AMI is built in.
	BuildRegion string
	// SourceAMI is the ID of the source AMI.
	SourceAMI string
	// SourceAMIName is the name of the source AMI.
	SourceAMIName string
	// SourceAMIOwner is the account ID that owns the source AMI.
	SourceAMIOwner string
	// SourceAMIOwnerName is the owner alias of the source AMI, such as
	// "amazon", or "" for accounts without an alias.
	SourceAMIOwnerName string
	// SourceAMICreationDate is the creation date of the source AMI, as AWS
	// reports it (RFC 3339).
	SourceAMICreationDate string
	// SourceAMITags are the tags of the source AMI.
	SourceAMITags map[string]string
}

// GeneratedDataNames are the names of the generated data the builders
// expose (Builder.Prepare returns them).
var GeneratedDataNames = []string{
	"BuildRegion",
	"SourceAMI",
	"SourceAMIName",
	"SourceAMIOwner",
	"SourceAMIOwnerName",
	"SourceAMICreationDate",
}

// NewBuildInfo returns the build data for a source image in region.
func NewBuildInfo(region string, img types.Image) *BuildInfo {
	info := &BuildInfo{
		BuildRegion:           region,
		SourceAMI:             aws.ToString(img.ImageId),
		SourceAMIName:         aws.ToString(img.Name),
		SourceAMIOwner:        aws.ToString(img.OwnerId),
		SourceAMIOwnerName:    aws.ToString(img.ImageOwnerAlias),
		SourceAMICreationDate: aws.ToString(img.CreationDate),
		SourceAMITags:         map[string]string{},
	}
	for _, t := range img.Tags {
		info.SourceAMITags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return info
}

// Generated returns the values named by GeneratedDataNames.
func (b *BuildInfo) Generated() map[string]string {
	return map[string]string{
		"BuildRegion":           b.BuildRegion,
		"SourceAMI":             b.SourceAMI,
		"SourceAMIName":         b.SourceAMIName,
		"SourceAMIOwner":        b.SourceAMIOwner,
		"SourceAMIOwnerName":    b.SourceAMIOwnerName,
		"SourceAMICreationDate": b.SourceAMICreationDate,
	}
}

// Render renders one template string with the build data. The context is
// copied, so ictx is not modified.
func Render(ictx interpolate.Context, s string, info *BuildInfo) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	ictx.Data = info
	return interpolate.Render(s, &ictx)
}

// MaxDescriptionLen is the longest AMI description EC2 accepts.
const MaxDescriptionLen = 255

// RenderDescription renders ami_description with the build data and checks
// that the result fits EC2's limit; errors name ami_description. The steps
// call it right before the AMI is created or registered.
func RenderDescription(ictx interpolate.Context, desc string, info *BuildInfo) (string, error) {
	out, err := Render(ictx, desc, info)
	if err != nil {
		return "", fmt.Errorf("ami_description: %w", err)
	}
	if len(out) > MaxDescriptionLen {
		return "", fmt.Errorf("ami_description: %d characters once rendered; valid is up to %d", len(out), MaxDescriptionLen)
	}
	return out, nil
}

// SampleBuildInfo is the build data options are rendered with at Prepare,
// to check them before the source AMI is known: short values, so that an
// option too long with them is too long with any source AMI.
func SampleBuildInfo() *BuildInfo {
	return &BuildInfo{
		BuildRegion:           "us-east-1",
		SourceAMI:             "ami-0123456789abcdef0",
		SourceAMIOwner:        "123456789012",
		SourceAMICreationDate: "2006-01-02T15:04:05.000Z",
		SourceAMITags:         map[string]string{},
	}
}

// RenderTags renders the keys and values of tags with the build data;
// field names the option in errors. It returns nil for no tags.
func RenderTags(ictx interpolate.Context, field string, tags map[string]string, info *BuildInfo) (map[string]string, error) {
	return RenderTagsWith(field, tags, func(s string) (string, error) { return Render(ictx, s, info) })
}
