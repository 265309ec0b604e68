//go:generate packer-sdc mapstructure-to-hcl2 -type Config
//go:generate packer-sdc struct-markdown

package ebs

import (
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/secret"
)

// Config is the configuration of the ami-ebs builder: the access, run and
// AMI options shared with the other builders of this plugin, and polling.
type Config struct {
	common.PackerConfig    `mapstructure:",squash"`
	amiconfig.AccessConfig `mapstructure:",squash"`
	amibuild.RunConfig     `mapstructure:",squash"`
	amibuild.AMIConfig     `mapstructure:",squash"`
	// How often and how long to wait for the instance and the AMI to reach
	// a state. See the aws_polling block.
	Polling amiconfig.PollingConfig `mapstructure:"aws_polling" required:"false"`

	// Build and provision the instance but create no AMI, for example to
	// test provisioning. Nothing is copied, shared or tagged, and the build
	// has no artifact.
	SkipCreateAMI bool `mapstructure:"skip_create_ami" required:"false"`
	// Product codes to add to the AMI and its copies. A product code cannot
	// be removed once added.
	AMIProductCodes []string `mapstructure:"ami_product_codes" required:"false"`
	// The virtualization type of the source AMI, `hvm` or `paravirtual`.
	// An EBS-backed AMI always has the virtualization type of its source,
	// so it is only checked: `ena_support` and `sriov_support` need `hvm`.
	AMIVirtType string `mapstructure:"ami_virtualization_type" required:"false"`
	// Turn on SR-IOV enhanced networking (Intel 82599 VF) in the AMI. The
	// attribute is set on the stopped build instance, which the AMI
	// inherits; it cannot be turned off again.
	AMISriovNetSupport bool `mapstructure:"sriov_support" required:"false"`
	// Leave out the instance store volumes EC2 attaches to the build
	// instance by default, so that they do not become part of the AMI's
	// mappings; meant for Windows images.
	NoEphemeral bool `mapstructure:"no_ephemeral" required:"false"`
	// Accepted for templates written for `amazon-ebs`, where it keeps
	// `run_tags` off the AMI. Here the AMI and its snapshots never get
	// `run_tags` (only `tags` and `snapshot_tags`), so it changes nothing.
	SkipAMIRunTags bool `mapstructure:"skip_ami_run_tags" required:"false"`

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

// Prepare decodes and validates the configuration without any network
// call. It reports every problem at once and returns warnings.
func (c *Config) Prepare(raws ...any) ([]string, error) {
	if err := amiconfig.DecodeConfig(BuilderId, c, &c.ctx, raws...); err != nil {
		return nil, err
	}
	if c.PackerForce {
		c.AMIForceDeregister = true
	}

	var errs *packersdk.MultiError
	errs = packersdk.MultiErrorAppend(errs, c.AccessConfig.Prepare()...)
	errs = packersdk.MultiErrorAppend(errs, c.RunConfig.Prepare(&c.ctx)...)
	errs = packersdk.MultiErrorAppend(errs, c.AMIConfig.Prepare(&c.ctx)...)
	errs = packersdk.MultiErrorAppend(errs, c.AMIConfig.PrepareDistribution(c.Region())...)
	errs = packersdk.MultiErrorAppend(errs, c.prepareEBS()...)
	errs = packersdk.MultiErrorAppend(errs, c.Polling.Prepare()...)
	if len(errs.Errors) > 0 {
		return nil, errs
	}

	packersdk.LogSecretFilter.Set(c.AccessKey, c.SecretKey.Reveal(), c.Token.Reveal(), c.AssumeRole.ExternalID.Reveal())

	warnings := append([]string(nil), c.RunConfig.Warnings()...)
	if f := c.SourceAMIFilter; !f.Empty() && len(f.Owners) == 0 {
		warnings = append(warnings, "source_ami_filter has no owners: an image published by anybody could match; set owners, for example [\"self\"] or an account ID")
	}
	if f := c.SourceAMIFilter; !f.Empty() && !f.MostRecent {
		warnings = append(warnings, "source_ami_filter without most_recent = true fails when more than one image matches")
	}
	warnings = append(warnings, c.SpotWarnings()...)
	return warnings, nil
}

// prepareEBS checks the options only an EBS-backed build has.
func (c *Config) prepareEBS() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.AMIVirtType {
	case "", "hvm", "paravirtual":
	default:
		add("ami_virtualization_type: %q is invalid; valid are \"hvm\" and \"paravirtual\"", c.AMIVirtType)
	}
	if c.AMIVirtType == "paravirtual" && (c.AMIENASupport.True() || c.AMISriovNetSupport) {
		add("ami_virtualization_type: enhanced networking (ena_support, sriov_support) needs an hvm AMI, not paravirtual")
	}
	if c.IsSpotInstance() && (c.AMIENASupport != config.TriUnset || c.AMISriovNetSupport) {
		add("ena_support, sriov_support: not valid with spot_price; they are set on the stopped build instance, and a spot instance is not stopped (use a source AMI that already has ENA or SR-IOV support)")
	}
	if c.AMIEncryptBootVolume.True() {
		for i, m := range c.LaunchMappings {
			if m.Encrypted.False() {
				add("launch_block_device_mappings[%d].encrypted: false conflicts with encrypt_boot = true, which encrypts every volume of the AMI", i)
			}
		}
	}
	return errs
}
