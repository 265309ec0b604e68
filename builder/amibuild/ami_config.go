//go:generate packer-sdc mapstructure-to-hcl2 -type AMIConfig
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// AMIConfig describes the AMI the build produces.
type AMIConfig struct {
	// The name of the AMI: 3 to 128 characters of letters, digits and
	// `( ) [ ] . / - ' @ _` and space. It must be unique among your AMIs in
	// the region (see `force_deregister`). Template functions such as
	// `{{timestamp}}`, `{{isotime "2006-01-02"}}` and
	// `{{ clean_resource_name ... }}` are rendered before validation. The
	// build variables such as `{{ .SourceAMI }}` are not available here: use
	// them in `tags` or `ami_description`.
	AMIName string `mapstructure:"ami_name" required:"true"`
	// The description of the AMI, up to 255 characters once rendered. It may
	// use the build variables, for example `built from {{ .SourceAMIName }}`;
	// the length is checked again when the source AMI is known.
	AMIDescription string `mapstructure:"ami_description" required:"false"`
	// Tags for the AMI and its snapshots. Keys and values may use the build variables
	// `{{ .BuildRegion }}`, `{{ .SourceAMI }}`, `{{ .SourceAMIName }}`,
	// `{{ .SourceAMIOwner }}`, `{{ .SourceAMIOwnerName }}` and
	// `{{ .SourceAMICreationDate }}`.
	AMITags map[string]string `mapstructure:"tags" required:"false"`
	// Tags for the snapshots of the AMI only, added to `tags` (a key in
	// both takes this value). They may use the same build variables as
	// `tags`.
	SnapshotTags map[string]string `mapstructure:"snapshot_tags" required:"false"`
	// The same as `tags`, as repeatable `tag { key = "…" value = "…" }`
	// blocks (handy with HCL2 `dynamic` blocks). A key may be set in
	// `tags` or in a `tag` block, not both.
	AMITag config.KeyValues `mapstructure:"tag" required:"false"`
	// The same as `snapshot_tags`, as repeatable `snapshot_tag` blocks.
	SnapshotTag config.KeyValues `mapstructure:"snapshot_tag" required:"false"`
	// Deregister an AMI you own with the same name before creating the new
	// one. `packer build -force` sets it too. The old AMI is deregistered
	// only once the build instance has been provisioned and stopped.
	AMIForceDeregister bool `mapstructure:"force_deregister" required:"false"`
	// When an AMI is deregistered because of `force_deregister`, also delete
	// its snapshots.
	AMIForceDeleteSnapshot bool `mapstructure:"force_delete_snapshot" required:"false"`
	// Turn on Elastic Network Adapter support in the AMI. The attribute is
	// set on the stopped build instance, which the AMI inherits. Unset keeps
	// the source AMI's setting; `false` turns it off.
	AMIENASupport config.Trilean `mapstructure:"ena_support" required:"false"`
	// Require IMDSv2 for instances launched from the AMI. The only valid
	// value is `v2.0`.
	AMIIMDSSupport string `mapstructure:"imds_support" required:"false"`
	// The block device mappings recorded in the AMI: new empty volumes,
	// changed settings of the instance's volumes (for example
	// `delete_on_termination` or a larger size), instance store volumes, or
	// `no_device` to leave a volume out.
	AMIMappings BlockDevices `mapstructure:"ami_block_device_mappings" required:"false"`
}

// Prepare validates the AMI configuration without any network call.
// ami_name must already be interpolated (it is, by config.Decode).
func (c *AMIConfig) Prepare(ctx *interpolate.Context) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch vars := BuildVariablesIn(c.AMIName); {
	case len(vars) > 0:
		add("ami_name: build variables such as {{ .%s }} are not available in ami_name, which is needed before the source AMI is found; use them in tags or ami_description", vars[0])
	case c.AMIName == "":
		add("ami_name: required, for example \"my-app {{timestamp}}\"")
	case len(c.AMIName) < 3 || len(c.AMIName) > 128:
		add("ami_name: %q is %d characters long; valid is 3 to 128", c.AMIName, len(c.AMIName))
	case !ValidAMIName(c.AMIName):
		add("ami_name: %q contains characters AMI names may not contain; valid are letters, digits, spaces and ( ) [ ] . / - ' @ _ (clean_resource_name replaces the others)", c.AMIName)
	}
	if err := checkTemplate(ctx, c.AMIDescription); err != nil {
		add("ami_description: not a valid template: %v", err)
	} else if desc, err := Render(templateContext(ctx), c.AMIDescription, sampleBuildInfo()); err == nil && len(desc) > MaxDescriptionLen {
		// Rendered with short sample values; the step checks the real one.
		add("ami_description: %d characters once rendered; valid is up to %d", len(desc), MaxDescriptionLen)
	}
	switch c.AMIIMDSSupport {
	case "", "v2.0":
	default:
		add("imds_support: %q is invalid; the only valid value is \"v2.0\"", c.AMIIMDSSupport)
	}
	errs = append(errs, mergeTagBlocks("tags", "tag", &c.AMITags, c.AMITag)...)
	errs = append(errs, mergeTagBlocks("snapshot_tags", "snapshot_tag", &c.SnapshotTags, c.SnapshotTag)...)
	errs = append(errs, checkTags(ctx, "tags", c.AMITags)...)
	errs = append(errs, checkTags(ctx, "snapshot_tags", c.SnapshotTags)...)
	errs = append(errs, c.AMIMappings.Prepare("ami_block_device_mappings")...)
	return errs
}
