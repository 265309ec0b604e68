//go:generate packer-sdc mapstructure-to-hcl2 -type AMIConfig,DeregistrationProtectionConfig
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
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

	// Regions to copy the AMI to once it is created, for example
	// `["eu-west-1", "ap-southeast-2"]`. The build region, if listed, is
	// left out. Before the build instance is launched the regions are
	// checked to exist (see `skip_region_validation`) and `ami_name` to be
	// free in each of them; the copies are shared, tagged and deprecated
	// like the AMI in the build region. If any copy fails, or the build is
	// cancelled, every copy is removed again in every region.
	AMIRegions []string `mapstructure:"ami_regions" required:"false"`
	// Do not check that the regions of `region` and `ami_regions` exist
	// and are enabled for the account, for example for a region the
	// account has only just opted in to. Their names must still look like
	// region names.
	AMISkipRegionValidation bool `mapstructure:"skip_region_validation" required:"false"`
	// AWS account IDs (12 digits) allowed to launch the AMI, in the build
	// region and every region of `ami_regions`.
	AMIUsers []string `mapstructure:"ami_users" required:"false"`
	// Launch permission groups of the AMI. The only group is `all`, which
	// makes the AMI public; an encrypted AMI cannot be public.
	AMIGroups []string `mapstructure:"ami_groups" required:"false"`
	// AWS Organizations organization ARNs allowed to launch the AMI, like
	// `arn:aws:organizations::123456789012:organization/o-abcdefghij`.
	AMIOrgArns []string `mapstructure:"ami_org_arns" required:"false"`
	// Organizational unit ARNs allowed to launch the AMI, like
	// `arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34`.
	AMIOuArns []string `mapstructure:"ami_ou_arns" required:"false"`
	// AWS account IDs given permission to create volumes from the AMI's
	// snapshots, in every region. `ami_users` does not imply it: an account
	// needs it to copy the AMI, not to launch it.
	SnapshotUsers []string `mapstructure:"snapshot_users" required:"false"`
	// Create-volume permission groups of the snapshots; the only group is
	// `all` (public).
	SnapshotGroups []string `mapstructure:"snapshot_groups" required:"false"`
	// Encrypt the AMI's snapshots: `true` gives an encrypted AMI, with
	// `kms_key_id` or the account's default EBS key, and encrypted copies
	// (with `region_kms_key_ids`, else each region's default key). Unset
	// keeps the source AMI's encryption. See "Encryption" below for how
	// this is done without an extra copy.
	AMIEncryptBootVolume config.Trilean `mapstructure:"encrypt_boot" required:"false"`
	// The KMS key (key ID, key ARN, `alias/<name>` or alias ARN) that
	// encrypts the AMI in the build region. Requires `encrypt_boot = true`.
	// An entry for the build region in `region_kms_key_ids` takes
	// precedence.
	AMIKmsKeyId string `mapstructure:"kms_key_id" required:"false"`
	// The KMS key of each region's copy, region name to key; an empty key
	// means the region's default EBS key. When set, it must name exactly
	// the regions of `ami_regions` (the build region may be added too).
	// Requires `encrypt_boot = true`. To share an encrypted AMI with other
	// accounts, use customer-managed keys: AWS does not let anyone share
	// the default key.
	AMIRegionKMSKeyIDs map[string]string `mapstructure:"region_kms_key_ids" required:"false"`
	// Keep no AMI in the build region: the AMI is created there under a
	// temporary name, copied to `ami_regions` (which must not be empty),
	// and then deregistered with its snapshots. `ami_name` is not checked
	// in the build region, and the artifact holds the copies only.
	AMISkipBuildRegion bool `mapstructure:"skip_save_build_region" required:"false"`
	// When the AMI and its copies become deprecated, as an RFC 3339 UTC
	// time in the future, for example `2027-06-30T00:00:00Z`. AWS rounds it
	// down to the minute.
	DeprecationTime string `mapstructure:"deprecate_at" required:"false"`
	// Protect the AMI and its copies against deregistration. Protection is
	// turned on once every copy succeeded, so that a failure can still
	// remove them.
	DeregistrationProtection DeregistrationProtectionConfig `mapstructure:"deregistration_protection" required:"false"`
	// Copy the AMI's snapshots to `ami_regions` within this many minutes
	// (time-based copies, charged by AWS): a multiple of 15, at least 15.
	// Unset copies as fast as AWS can without a guarantee.
	SnapshotCopyDurationMinutes int `mapstructure:"snapshot_copy_duration_minutes" required:"false"`
}

// DeregistrationProtectionConfig turns on deregistration protection of the
// AMIs a build makes.
//
// ```hcl
//
//	deregistration_protection {
//	  enabled       = true
//	  with_cooldown = true
//	}
//
// ```
type DeregistrationProtectionConfig struct {
	// Protect the AMIs against deregistration.
	Enabled bool `mapstructure:"enabled" required:"false"`
	// Keep an AMI protected for 24 hours after protection is turned off.
	// Implies `enabled`.
	WithCooldown bool `mapstructure:"with_cooldown" required:"false"`
}

// Prepare validates the AMI configuration without any network call.
// ami_name must already be interpolated (it is, by config.Decode).
func (c *AMIConfig) Prepare(ctx *interpolate.Context) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch vars := amiconfig.BuildVariablesIn(c.AMIName); {
	case len(vars) > 0:
		add("ami_name: build variables such as {{ .%s }} are not available in ami_name, which is needed before the source AMI is found; use them in tags or ami_description", vars[0])
	case c.AMIName == "":
		add("ami_name: required, for example \"my-app {{timestamp}}\"")
	case len(c.AMIName) < 3 || len(c.AMIName) > 128:
		add("ami_name: %q is %d characters long; valid is 3 to 128", c.AMIName, len(c.AMIName))
	case !amiconfig.ValidAMIName(c.AMIName):
		add("ami_name: %q contains characters AMI names may not contain; valid are letters, digits, spaces and ( ) [ ] . / - ' @ _ (clean_resource_name replaces the others)", c.AMIName)
	}
	if err := checkTemplate(ctx, c.AMIDescription); err != nil {
		add("ami_description: not a valid template: %v", err)
	} else if desc, err := amiconfig.Render(templateContext(ctx), c.AMIDescription, amiconfig.SampleBuildInfo()); err == nil && len(desc) > amiconfig.MaxDescriptionLen {
		// Rendered with short sample values; the step checks the real one.
		add("ami_description: %d characters once rendered; valid is up to %d", len(desc), amiconfig.MaxDescriptionLen)
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

// PrepareDistribution validates the options that copy, share, encrypt,
// deprecate and protect the AMI, for a build in region, without any
// network call. It removes the build region and duplicates from
// ami_regions, as HashiCorp's builders do.
func (c *AMIConfig) PrepareDistribution(region string) []error {
	if c.DeregistrationProtection.WithCooldown {
		c.DeregistrationProtection.Enabled = true
	}
	regionsUnknown := unknownList(c.AMIRegions)
	written, targets, errs := copyRegions(c.AMIRegions, region)
	errs = append(errs, c.checkRegionKeys(written, targets)...)
	c.AMIRegions = targets
	errs = append(errs, c.checkEncryption()...)
	errs = append(errs, c.checkSharing(region)...)

	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m := c.SnapshotCopyDurationMinutes; m < 0 || m%15 != 0 {
		add("snapshot_copy_duration_minutes: %d is invalid; valid are multiples of 15 minutes, at least 15", m)
	}
	if c.DeprecationTime != "" && !amiconfig.Unknown(c.DeprecationTime) {
		if _, err := time.Parse(time.RFC3339, c.DeprecationTime); err != nil {
			add("deprecate_at: %q is not an RFC 3339 time; expected like \"2027-06-30T00:00:00Z\"", c.DeprecationTime)
		}
	}
	if c.AMISkipBuildRegion && len(c.AMIRegions) == 0 && !regionsUnknown {
		add("skip_save_build_region: ami_regions names no region other than the build region %s, so the build would keep no AMI; list regions to copy to, or remove skip_save_build_region", region)
	}
	return errs
}

// copyRegions checks the regions of ami_regions, values not known yet
// left out. It returns the valid ones as written, for the
// region_kms_key_ids rule, and the regions to copy to: the valid ones
// without the build region and duplicates, in their order.
func copyRegions(amiRegions []string, buildRegion string) (written map[string]bool, targets []string, errs []error) {
	written = map[string]bool{}
	for i, r := range amiRegions {
		if amiconfig.Unknown(r) {
			continue
		}
		if err := distribute.ValidateRegion(r); err != nil {
			errs = append(errs, fmt.Errorf("ami_regions[%d]: %v", i, err))
			continue
		}
		if written[r] {
			continue
		}
		written[r] = true
		if r != buildRegion {
			targets = append(targets, r)
		}
	}
	return written, targets, errs
}

// checkRegionKeys checks region_kms_key_ids, when set, against the regions
// of ami_regions: written holds them as written and targets the regions
// copied to. Every key must be for a listed region and be well formed,
// and every copy must have a key, so that no copy is encrypted with a key
// nobody chose.
func (c *AMIConfig) checkRegionKeys(written map[string]bool, targets []string) []error {
	if len(c.AMIRegionKMSKeyIDs) == 0 {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, r := range slices.Sorted(maps.Keys(c.AMIRegionKMSKeyIDs)) {
		if !written[r] && !amiconfig.Unknown(r) {
			add("region_kms_key_ids: %s is not one of ami_regions %q; list exactly the regions of ami_regions", r, c.AMIRegions)
		}
		if k := c.AMIRegionKMSKeyIDs[r]; k != "" && !amiconfig.Unknown(k) {
			if err := distribute.ValidateKMSKeyID(k); err != nil {
				add("region_kms_key_ids[%s]: %v", r, err)
			}
		}
	}
	for _, r := range targets {
		if _, ok := c.AMIRegionKMSKeyIDs[r]; !ok {
			add("region_kms_key_ids: ami_regions lists %s but region_kms_key_ids has no key for it; add it (an empty key means the region's default key)", r)
		}
	}
	return errs
}

// checkEncryption checks kms_key_id, and that the KMS keys come with
// encrypt_boot = true.
func (c *AMIConfig) checkEncryption() []error {
	var errs []error
	if c.AMIKmsKeyId != "" && !amiconfig.Unknown(c.AMIKmsKeyId) {
		if err := distribute.ValidateKMSKeyID(c.AMIKmsKeyId); err != nil {
			errs = append(errs, fmt.Errorf("kms_key_id: %v", err))
		}
	}
	if !c.AMIEncryptBootVolume.True() && (c.AMIKmsKeyId != "" || len(c.AMIRegionKMSKeyIDs) > 0) {
		errs = append(errs, errors.New("encrypt_boot: kms_key_id and region_kms_key_ids need encrypt_boot = true"))
	}
	return errs
}

// checkSharing checks the sharing options, and that an encrypted AMI and
// its copies are neither public nor shared while encrypted with a
// default EBS key, which AWS does not let anyone share. It runs once
// c.AMIRegions holds the regions copied to.
func (c *AMIConfig) checkSharing(buildRegion string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	perms := c.Permissions()
	errs = append(errs, amiconfig.SplitErrors(perms.ValidateNamed(amiconfig.PermissionFieldNames("")))...)
	if !c.AMIEncryptBootVolume.True() {
		return errs
	}
	if len(perms.Groups) > 0 || len(perms.SnapshotGroups) > 0 {
		add("ami_groups, snapshot_groups: an encrypted AMI cannot be public; remove \"all\" or encrypt_boot")
	}
	if perms.Accounts == nil && perms.OrgARNs == nil && perms.OUARNs == nil && perms.SnapshotAccounts == nil {
		return errs
	}
	if !c.AMISkipBuildRegion && c.BuildKMSKeyID(buildRegion) == "" {
		add("kms_key_id: the AMI is shared (ami_users, ami_org_arns, ami_ou_arns or snapshot_users) but encrypted with the default EBS key, which AWS does not let anyone share; set kms_key_id to a customer-managed key")
	}
	for _, r := range c.AMIRegions {
		if c.CopyKMSKeyID(r) == "" {
			add("region_kms_key_ids: the copy in %s is shared but encrypted with the region's default EBS key, which AWS does not let anyone share; give it a customer-managed key", r)
		}
	}
	return errs
}

// Permissions returns the launch and create-volume permissions of the
// AMI, values not known yet (Unknown) left out.
func (c *AMIConfig) Permissions() distribute.Permissions {
	return distribute.Permissions{
		Accounts:         knownOnly(c.AMIUsers),
		Groups:           knownOnly(c.AMIGroups),
		OrgARNs:          knownOnly(c.AMIOrgArns),
		OUARNs:           knownOnly(c.AMIOuArns),
		SnapshotAccounts: knownOnly(c.SnapshotUsers),
		SnapshotGroups:   knownOnly(c.SnapshotGroups),
	}
}

// BuildKMSKeyID returns the KMS key of the AMI in the build region: its
// entry in region_kms_key_ids, else kms_key_id. "" means the default EBS
// key.
func (c *AMIConfig) BuildKMSKeyID(buildRegion string) string {
	if k, ok := c.AMIRegionKMSKeyIDs[buildRegion]; ok {
		return k
	}
	return c.AMIKmsKeyId
}

// CopyKMSKeyID returns the KMS key of the copy in region, from
// region_kms_key_ids. "" means the region's default EBS key.
func (c *AMIConfig) CopyKMSKeyID(region string) string { return c.AMIRegionKMSKeyIDs[region] }

// Deprecation returns the deprecation of the AMIs.
func (c *AMIConfig) Deprecation() (distribute.Deprecation, error) {
	if c.DeprecationTime == "" {
		return distribute.Deprecation{}, nil
	}
	at, err := time.Parse(time.RFC3339, c.DeprecationTime)
	if err != nil {
		return distribute.Deprecation{}, fmt.Errorf("deprecate_at: %q is not an RFC 3339 time", c.DeprecationTime)
	}
	return distribute.Deprecation{At: at}, nil
}

// Distributes reports whether the AMI is copied, shared, deprecated or
// protected after it is created.
func (c *AMIConfig) Distributes() bool {
	return len(c.AMIRegions) > 0 || !c.Permissions().Empty() || c.DeprecationTime != "" || c.DeregistrationProtection.Enabled
}

// knownOnly returns values without those not known yet; nil stays nil.
func knownOnly(values []string) []string {
	if values == nil {
		return nil
	}
	out := make([]string, 0, len(values))
	for _, v := range values {
		if !amiconfig.Unknown(v) {
			out = append(out, v)
		}
	}
	return out
}

// unknownList reports whether values holds a value not known yet.
func unknownList(values []string) bool { return slices.ContainsFunc(values, amiconfig.Unknown) }
