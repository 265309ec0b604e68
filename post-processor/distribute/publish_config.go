//go:generate packer-sdc struct-markdown

package distribute

import (
	"github.com/amiforge/packer-plugin-ami/builder/secret"
)

// SSMParameterConfig is one Systems Manager parameter that receives the
// ID of the AMI of each region, so that launches that resolve
// `resolve:ssm:<name>` use the new release. The parameter has the data
// type `aws:ec2:image`, which makes SSM check that the value is an AMI.
type SSMParameterConfig struct {
	// The parameter's name, such as `/golden/web/latest`. It may use the
	// variables of `ami_name`, `{{ .Name }}` (the name of the AMI in that
	// region) and `{{ .Account }}` (the account the AMI is in), so that one
	// block can name a parameter per region, such as
	// `/golden/{{ .Name }}/{{ .Region }}`.
	Name string `mapstructure:"name" required:"true"`
	// The regions to write the parameter in, each one holding an AMI of the
	// output. Empty means every region of the output.
	Regions []string `mapstructure:"regions" required:"false"`
	// The parameter's description, set when this run creates it.
	Description string `mapstructure:"description" required:"false"`
	// Tags for the parameter, set when this run creates it (SSM takes tags
	// only then); an existing parameter keeps its tags.
	Tags map[string]string `mapstructure:"tags" required:"false"`
}

// LaunchTemplateConfig is one launch template that gets a new version
// whose AMI is the output's AMI in the template's region.
type LaunchTemplateConfig struct {
	// The launch template's ID (`lt-...`). Set `id` or `name`. An ID
	// belongs to one region, so `region` is required with it.
	ID string `mapstructure:"id" required:"false"`
	// The launch template's name. Without `region`, the template of this
	// name is updated in every region of the output, and must exist in
	// each.
	Name string `mapstructure:"name" required:"false"`
	// The region of the template. Empty with `name` means every region of
	// the output.
	Region string `mapstructure:"region" required:"false"`
	// The version the new one is based on: `$Default` (the default),
	// `$Latest` or a version number. Everything but the AMI is copied from
	// it.
	SourceVersion string `mapstructure:"source_version" required:"false"`
	// Make the new version the template's default version, so that
	// launches that name no version use the new AMI.
	SetDefaultVersion bool `mapstructure:"set_default_version" required:"false"`
}

// TargetAccountConfig is another AWS account that gets its own copy of the
// AMI in each region: the source AMI is shared with the account for the
// time of the copy, and the copy is made with a role of that account, so
// that the account owns its copy and keeps it if the source is
// deregistered.
type TargetAccountConfig struct {
	// The 12-digit ID of the account. The role must belong to it.
	AccountID string `mapstructure:"account_id" required:"true"`
	// The ARN of the role to assume in the account, like
	// `arn:aws:iam::222222222222:role/ami-publisher`. It is assumed with
	// the credentials of this post-processor.
	RoleARN string `mapstructure:"role_arn" required:"true"`
	// The external ID the role's trust policy asks for, if any.
	ExternalID secret.String `mapstructure:"external_id" required:"false"`
	// The session name of the assumed role, 2 to 64 characters. Empty
	// means `ami-distribute`.
	SessionName string `mapstructure:"session_name" required:"false"`
	// The regions to copy to in the account, each one a region of the
	// output (the source region or one of `regions`). Empty means every
	// region of the output.
	Regions []string `mapstructure:"regions" required:"false"`
	// The KMS key (of the account) that encrypts the account's copies in
	// every region without an entry in `region_kms_key_ids`. Empty keeps
	// the encryption of the source: copies of an encrypted source use the
	// account's default EBS key.
	KMSKeyID string `mapstructure:"kms_key_id" required:"false"`
	// The KMS key of the account per region, region name to key.
	RegionKMSKeyIDs map[string]string `mapstructure:"region_kms_key_ids" required:"false"`
	// Keep this many of the newest AMIs selected by the top-level
	// `retention` block in each of the account's regions and deregister
	// the older ones, as `keep_releases` does in this account. Zero turns
	// the count rule off for the account.
	KeepReleases int `mapstructure:"keep_releases" required:"false"`
	// Keep the account's selected AMIs younger than this many days, as
	// `keep_days` does in this account. Zero turns the age rule off for the
	// account.
	KeepDays int `mapstructure:"keep_days" required:"false"`
	// Parameters to write in the account, as the top-level
	// `ssm_parameters`, with the account's copies.
	SSMParameters []SSMParameterConfig `mapstructure:"ssm_parameters" required:"false"`
	// Launch templates of the account to update, as the top-level
	// `launch_templates`, with the account's copies.
	LaunchTemplates []LaunchTemplateConfig `mapstructure:"launch_templates" required:"false"`
}
