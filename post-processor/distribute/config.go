//go:generate packer-sdc mapstructure-to-hcl2 -type Config,RegionOverride,RetentionConfig,DeregistrationProtectionConfig,SSMParameterConfig,LaunchTemplateConfig,TargetAccountConfig
//go:generate packer-sdc struct-markdown

package distribute

import (
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/secret"
)

// Config is the configuration of the ami-distribute post-processor: where
// the AMI comes from, the regions it is copied to, who may use it, how it is
// tagged, encrypted and deprecated, and which older releases are removed.
type Config struct {
	common.PackerConfig    `mapstructure:",squash"`
	amiconfig.AccessConfig `mapstructure:",squash"`
	// How often and how long to wait for copies to become available. See
	// the aws_polling block.
	Polling amiconfig.PollingConfig `mapstructure:"aws_polling" required:"false"`

	// The AMI to distribute when the build produced no AMI, for example with
	// a `null` source: an AMI ID in `region`. When it (or
	// `source_ami_filter`) is set, it is used instead of the build's
	// artifact.
	SourceAMI string `mapstructure:"source_ami" required:"false"`
	// Selects the AMI to distribute with DescribeImages filters in `region`,
	// like the builders' `source_ami_filter`. Mutually exclusive with
	// `source_ami`.
	SourceAMIFilter amiconfig.SourceAMIFilter `mapstructure:"source_ami_filter" required:"false"`

	// The regions the AMI must be available in, for example
	// `["eu-west-1", "ap-southeast-2"]`. The AMI is copied to each region
	// that does not already hold an AMI of the input artifact. Empty means
	// no copy: the input AMIs are only shared, tagged and deprecated (see
	// `share_source`) and retention runs in their regions.
	Regions []string `mapstructure:"regions" required:"false"`
	// An alias of `regions`, as HashiCorp's builders call it. Set one of
	// them, not both.
	AMIRegions []string `mapstructure:"ami_regions" required:"false"`

	// The name of the copies: 3 to 128 characters of letters, digits and
	// `( ) [ ] . / - ' @ _` and space. Empty keeps the source AMI's name.
	// It may use `{{timestamp}}`, `{{ clean_resource_name ... }}` and the
	// variables `{{ .SourceAMI }}`, `{{ .SourceAMIName }}`,
	// `{{ .SourceRegion }}` and `{{ .Region }}` (the copy's region). The
	// name must be free in every target region; this is checked before any
	// copy starts.
	AMIName string `mapstructure:"ami_name" required:"false"`
	// The description of the copies, up to 255 characters. Empty keeps the
	// source AMI's description. It may use the same variables as
	// `ami_name`.
	AMIDescription string `mapstructure:"ami_description" required:"false"`

	// AWS account IDs (12 digits) allowed to launch the AMIs.
	AMIUsers []string `mapstructure:"ami_users" required:"false"`
	// Launch permission groups. The only group is `all`, which makes the
	// AMIs public; encrypted AMIs cannot be public.
	AMIGroups []string `mapstructure:"ami_groups" required:"false"`
	// AWS Organizations organization ARNs allowed to launch the AMIs, like
	// `arn:aws:organizations::123456789012:organization/o-abcdefghij`.
	AMIOrgArns []string `mapstructure:"ami_org_arns" required:"false"`
	// Organizational unit ARNs allowed to launch the AMIs, like
	// `arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34`.
	AMIOuArns []string `mapstructure:"ami_ou_arns" required:"false"`
	// AWS account IDs given permission to create volumes from the AMIs'
	// snapshots (needed to copy a shared AMI, not to launch it).
	SnapshotUsers []string `mapstructure:"snapshot_users" required:"false"`
	// Create-volume permission groups of the snapshots; the only group is
	// `all` (public).
	SnapshotGroups []string `mapstructure:"snapshot_groups" required:"false"`

	// Tags for every AMI and its snapshots. Keys and values may use the
	// same variables as `ami_name`.
	Tags map[string]string `mapstructure:"tags" required:"false"`
	// Tags for the snapshots only, added to `tags` (a key in both takes
	// this value).
	SnapshotTags map[string]string `mapstructure:"snapshot_tags" required:"false"`
	// Copy the source AMI's own tags to the copies (CopyImage's
	// CopyImageTags); `tags` are applied on top.
	CopyImageTags bool `mapstructure:"copy_image_tags" required:"false"`

	// Encrypt the copies' snapshots, with `kms_key_id` or the region's
	// default EBS key. `false` together with a KMS key is an error. Copies
	// of an encrypted source are always encrypted.
	EncryptBoot config.Trilean `mapstructure:"encrypt_boot" required:"false"`
	// The KMS key that encrypts the copies in every target region without
	// an entry in `region_kms_key_ids`: a key ID, key ARN, `alias/<name>` or
	// alias ARN valid in each region (for example a multi-Region key).
	// Implies `encrypt_boot`.
	KMSKeyID string `mapstructure:"kms_key_id" required:"false"`
	// The KMS key per target region, region name to key. Every region must
	// be one of `regions`. Implies `encrypt_boot` for those regions.
	RegionKMSKeyIDs map[string]string `mapstructure:"region_kms_key_ids" required:"false"`

	// When the AMIs become deprecated, as an RFC 3339 time in the future,
	// for example `2026-12-31T00:00:00Z`. Mutually exclusive with
	// `deprecate_after`.
	DeprecateAt string `mapstructure:"deprecate_at" required:"false"`
	// How long after the run the AMIs become deprecated: a Go duration such
	// as `2160h`, or a number of days such as `90d`. Mutually exclusive with
	// `deprecate_at`.
	DeprecateAfter string `mapstructure:"deprecate_after" required:"false"`
	// Protect the AMIs against deregistration. It is turned on last, once
	// every region succeeded, so that a failure can still remove the
	// copies.
	DeregistrationProtection DeregistrationProtectionConfig `mapstructure:"deregistration_protection" required:"false"`

	// The largest number of regions copied to at the same time, 1 to 16.
	// Zero, the default, copies to every region at once, so that no copy
	// waits for another region's to finish.
	CopyConcurrency int `mapstructure:"copy_concurrency" required:"false"`

	// Keep this many of the newest AMIs selected by `retention` in each
	// region (the AMIs of this run included) and deregister the older
	// ones with their snapshots. Zero turns the count rule off.
	KeepReleases int `mapstructure:"keep_releases" required:"false"`
	// Keep the AMIs selected by `retention` that are younger than this many
	// days and deregister the older ones. With `keep_releases` as well, an
	// AMI is kept when either rule keeps it. Zero turns the age rule off.
	KeepDays int `mapstructure:"keep_days" required:"false"`
	// Which of your AMIs `keep_releases` and `keep_days` apply to. Required
	// with either of them. AMIs outside the selector, the AMIs of this run
	// and AMIs used by an instance or a launch template are never removed.
	Retention RetentionConfig `mapstructure:"retention" required:"false"`

	// Change nothing: check everything a real run checks before its first
	// change (source AMI, regions, names, KMS and sharing rules), print the
	// copies it would make and the AMIs retention would remove, and write
	// the manifest. The output artifact holds only the input AMIs.
	DryRun bool `mapstructure:"dry_run" required:"false"`
	// A file to write the per-region results to as JSON: the source AMI,
	// every region's AMI and snapshots, sharing, encryption, deprecation and
	// retention decisions. It is written on failure as well.
	ManifestOutput string `mapstructure:"manifest_output" required:"false"`
	// Apply the sharing, tags, deprecation and deregistration protection to
	// the input AMIs too (the source region's AMI), not only to the copies.
	// Defaults to `true`. Changes made to input AMIs are not undone when a
	// copy fails.
	ShareSource config.Trilean `mapstructure:"share_source" required:"false"`

	// Per-region settings that replace the top-level ones for one target
	// region, as in EC2 Image Builder's distribution settings. Repeat the
	// block for several regions.
	RegionOverrides []RegionOverride `mapstructure:"region_override" required:"false"`

	// Systems Manager parameters to point at the AMI of each region once
	// every region succeeded. Each parameter's previous value is
	// remembered; when the run fails or is cancelled, it is put back (a
	// parameter the run created is deleted). Repeat the block for several
	// parameters.
	SSMParameters []SSMParameterConfig `mapstructure:"ssm_parameters" required:"false"`
	// Launch templates to give a new version with the AMI of their region.
	// When the run fails or is cancelled, the template's default version is
	// set back and the versions the run made are deleted. Repeat the block
	// for several templates.
	LaunchTemplates []LaunchTemplateConfig `mapstructure:"launch_templates" required:"false"`
	// Other accounts that get their own copy of the AMI, made with a role
	// they trust this post-processor's credentials to assume. When the run
	// fails, every copy in every account is removed and the sharing added
	// for the copies is revoked. Repeat the block for several accounts.
	TargetAccounts []TargetAccountConfig `mapstructure:"target_accounts" required:"false"`

	ctx interpolate.Context
}

// Format, String and GoString print the configuration with its secrets
// redacted: the AWS secret key, session token and external ID, the
// communicator's passwords and private key, the values of user variables
// (see package secret).
func (c Config) Format(f fmt.State, verb rune) { secret.Format(f, verb, c) }

// String describes the configuration with its secrets redacted.
func (c Config) String() string { return secret.Describe(c) }

// GoString describes the configuration with its secrets redacted.
func (c Config) GoString() string { return secret.GoString(c) }

// RegionOverride holds the settings of one target region that differ from
// the top-level ones. Unset fields keep the top-level value; a list that is
// set replaces the top-level list for this region.
type RegionOverride struct {
	// The target region, one of `regions`.
	Region string `mapstructure:"region" required:"true"`
	// The name of the copy in this region (same rules and variables as the
	// top-level `ami_name`).
	AMIName string `mapstructure:"ami_name" required:"false"`
	// The description of the copy in this region.
	AMIDescription string `mapstructure:"ami_description" required:"false"`
	// Encrypt the copy in this region.
	EncryptBoot config.Trilean `mapstructure:"encrypt_boot" required:"false"`
	// The KMS key of the copy in this region; implies `encrypt_boot`.
	KMSKeyID string `mapstructure:"kms_key_id" required:"false"`
	// Copy the source AMI's tags in this region.
	CopyImageTags config.Trilean `mapstructure:"copy_image_tags" required:"false"`
	// Account IDs allowed to launch the copy in this region.
	AMIUsers []string `mapstructure:"ami_users" required:"false"`
	// Launch permission groups in this region (`all`).
	AMIGroups []string `mapstructure:"ami_groups" required:"false"`
	// Organization ARNs allowed to launch the copy in this region.
	AMIOrgArns []string `mapstructure:"ami_org_arns" required:"false"`
	// Organizational unit ARNs allowed to launch the copy in this region.
	AMIOuArns []string `mapstructure:"ami_ou_arns" required:"false"`
	// Account IDs given create-volume permission on the copy's snapshots.
	SnapshotUsers []string `mapstructure:"snapshot_users" required:"false"`
	// Create-volume permission groups of the copy's snapshots (`all`).
	SnapshotGroups []string `mapstructure:"snapshot_groups" required:"false"`
	// Tags added in this region to the top-level `tags` (a key in both
	// takes this value).
	Tags map[string]string `mapstructure:"tags" required:"false"`
	// Snapshot tags added in this region to the top-level `snapshot_tags`.
	SnapshotTags map[string]string `mapstructure:"snapshot_tags" required:"false"`
}

// RetentionConfig selects the AMIs that `keep_releases` and `keep_days`
// apply to, among the AMIs your account owns in each region of the run.
//
// ```hcl
//
//	retention {
//	  name_pattern = "web-*"
//	  tags = {
//	    App = "web"
//	  }
//	}
//
// ```
type RetentionConfig struct {
	// An AMI name pattern: `*` matches any run of characters, `?` one
	// character (EC2's name filter syntax), for example `web-*`.
	NamePattern string `mapstructure:"name_pattern" required:"false"`
	// Tags a selected AMI must carry, all of them with exactly these
	// values.
	Tags map[string]string `mapstructure:"tags" required:"false"`
	// Keep the snapshots of the AMIs retention deregisters. By default
	// they are deleted.
	KeepSnapshots bool `mapstructure:"keep_snapshots" required:"false"`
}

// DeregistrationProtectionConfig turns on deregistration protection.
type DeregistrationProtectionConfig struct {
	// Protect the AMIs against deregistration.
	Enabled bool `mapstructure:"enabled" required:"false"`
	// Keep an AMI protected for 24 hours after protection is turned off.
	WithCooldown bool `mapstructure:"with_cooldown" required:"false"`
}
