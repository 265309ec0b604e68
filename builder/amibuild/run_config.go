//go:generate packer-sdc mapstructure-to-hcl2 -type RunConfig,MetadataOptions
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"github.com/hashicorp/packer-plugin-sdk/uuid"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/secret"
)

// RunConfig describes the build instance: what it boots from, where it runs,
// how Packer reaches it, and the communicator settings.
//
// With the SSH communicator and no credentials of your own
// (`ssh_private_key_file`, `ssh_keypair_name`, `ssh_password` or
// `ssh_agent_auth`), the builder creates a temporary EC2 key pair named by
// `temporary_key_pair_name` (default `packer_<uuid>`) of type
// `temporary_key_pair_type`: `ed25519` (the default) or `rsa`. With the
// WinRM communicator and no `winrm_password` it does the same, to decrypt
// the Windows password, and the type is then `rsa`. Without
// `security_group_ids`, `security_group_id` or `security_group_filter` it
// creates a temporary security group that opens the communicator port. Both
// are deleted when the build ends, whatever its
// outcome, as is the build instance.
//
// To connect to somewhere else than the instance's address (for example a
// bastion-less tunnel or a local emulator), set `ssh_host` and `ssh_port`.
type RunConfig struct {
	// The ID of the AMI the build instance boots from, for example
	// `ami-0123456789abcdef0`. Either this or `source_ami_filter` is
	// required.
	SourceAMI string `mapstructure:"source_ami" required:"false"`
	// Find the source AMI by filters and owners instead of by ID. Either this
	// or `source_ami` is required.
	//
	// ```hcl
	// source_ami_filter {
	//   filters = {
	//     name                = "debian-12-amd64-*"
	//     virtualization-type = "hvm"
	//   }
	//   owners      = ["136693071363"]
	//   most_recent = true
	// }
	// ```
	SourceAMIFilter amiconfig.SourceAMIFilter `mapstructure:"source_ami_filter" required:"false"`
	// The EC2 instance type of the build instance, for example `t3.micro`.
	// A spot build instance may use `spot_instance_types` instead.
	InstanceType string `mapstructure:"instance_type" required:"true"`
	// The availability zone to launch the build instance in, for example
	// `us-east-1a`. Empty lets AWS choose (or follows `subnet_id`).
	AvailabilityZone string `mapstructure:"availability_zone" required:"false"`
	// The ID of the subnet to launch the build instance in, for example
	// `subnet-0123456789abcdef0`. Empty uses the default VPC.
	SubnetID string `mapstructure:"subnet_id" required:"false"`
	// The ID of the VPC the temporary security group is created in, for
	// example `vpc-0123456789abcdef0`. Defaults to the subnet's VPC, or the
	// default VPC.
	VpcID string `mapstructure:"vpc_id" required:"false"`
	// The IDs of existing security groups to attach to the build instance.
	// When empty, a temporary security group that opens only the
	// communicator port is created and deleted after the build.
	SecurityGroupIDs []string `mapstructure:"security_group_ids" required:"false"`
	// The IPv4 or IPv6 CIDR blocks the temporary security group admits on
	// the communicator port. Defaults to `0.0.0.0/0`. Not valid together
	// with `security_group_ids`.
	TemporarySGSourceCIDRs []string `mapstructure:"temporary_security_group_source_cidrs" required:"false"`
	// The name or ARN of the IAM instance profile the build instance runs
	// with.
	IamInstanceProfile string `mapstructure:"iam_instance_profile" required:"false"`
	// User data for the build instance, as plain text; it is base64-encoded
	// for you. Not valid together with `user_data_file`.
	UserData string `mapstructure:"user_data" required:"false"`
	// A file whose contents are the user data of the build instance. Not
	// valid together with `user_data`.
	UserDataFile string `mapstructure:"user_data_file" required:"false"`
	// Whether the build instance gets a public IPv4 address. Unset follows
	// the subnet's setting.
	AssociatePublicIPAddress config.Trilean `mapstructure:"associate_public_ip_address" required:"false"`
	// Launch the build instance EBS-optimized. Current instance types are
	// EBS-optimized anyway; older ones may cost more with it.
	EbsOptimized bool `mapstructure:"ebs_optimized" required:"false"`
	// Which address of the build instance the communicator connects to:
	// `public_ip`, `private_ip`, `public_dns` or `private_dns`. By default
	// the public IP is used when there is one, else the private IP. Ignored
	// when `ssh_host` (or `winrm_host`) is set. `session_manager` reaches
	// the instance through an AWS Systems Manager Session Manager session
	// instead (SSH only; see `pause_before_ssm` and
	// `session_manager_port`): the communicator connects to the session's
	// port on 127.0.0.1, or on `ssh_host` when set.
	SSHInterface string `mapstructure:"ssh_interface" required:"false"`
	// Tags for the build instance. Values may use the build variables, for
	// example `{{ .SourceAMIName }}`.
	RunTags map[string]string `mapstructure:"run_tags" required:"false"`
	// Tags for the volumes of the build instance. Values may use the build
	// variables.
	RunVolumeTags map[string]string `mapstructure:"run_volume_tags" required:"false"`
	// The same as `run_tags`, as repeatable `run_tag { key = "…" value =
	// "…" }` blocks. A key may be set in `run_tags` or in a `run_tag`
	// block, not both.
	RunTag config.KeyValues `mapstructure:"run_tag" required:"false"`
	// The same as `run_volume_tags`, as repeatable `run_volume_tag` blocks.
	RunVolumeTag config.KeyValues `mapstructure:"run_volume_tag" required:"false"`
	// The instance metadata service options of the build instance.
	MetadataOptions           MetadataOptions `mapstructure:"metadata_options" required:"false"`
	InstanceSettings          `mapstructure:",squash"`
	NetworkConfig             `mapstructure:",squash"`
	WindowsConfig             `mapstructure:",squash"`
	TemporaryIAMProfileConfig `mapstructure:",squash"`
	SpotConfig                `mapstructure:",squash"`
	SessionManagerConfig      `mapstructure:",squash"`
	// Volumes to attach to the build instance, or changes to the source
	// AMI's volumes (for example a larger root volume). Volumes that are
	// not also in `ami_block_device_mappings` become part of the AMI when
	// they are EBS volumes.
	LaunchMappings BlockDevices `mapstructure:"launch_block_device_mappings" required:"false"`

	// The communicator settings (`communicator`, `ssh_*`, `winrm_*`). The
	// temporary key pair is controlled by `temporary_key_pair_name` and
	// `temporary_key_pair_type` (`ed25519`, the default, or `rsa`, the
	// default for WinRM without `winrm_password`); an existing key pair is
	// used with `ssh_keypair_name` and `ssh_private_key_file`.
	Comm communicator.Config `mapstructure:",squash"`

	warnings []string
}

// MetadataOptions are the instance metadata service (IMDS) settings of the
// build instance.
type MetadataOptions struct {
	// Whether the metadata service is reachable: `enabled` or `disabled`.
	// Empty uses the AWS default (`enabled`).
	HTTPEndpoint string `mapstructure:"http_endpoint" required:"false"`
	// Whether session tokens (IMDSv2) are `required` or `optional`. Empty
	// uses the AMI's or the account's default. `imds_support = "v2.0"`
	// implies `required`.
	HTTPTokens string `mapstructure:"http_tokens" required:"false"`
	// The hop limit of metadata responses, 1 to 64. Zero uses the AWS
	// default.
	HTTPPutResponseHopLimit int32 `mapstructure:"http_put_response_hop_limit" required:"false"`
	// Whether instance tags are readable from the metadata service:
	// `enabled` or `disabled`.
	InstanceMetadataTags string `mapstructure:"instance_metadata_tags" required:"false"`
}

// Request returns the EC2 form of the options, or nil when none is set.
func (m *MetadataOptions) Request() *types.InstanceMetadataOptionsRequest {
	if *m == (MetadataOptions{}) {
		return nil
	}
	r := &types.InstanceMetadataOptionsRequest{
		HttpEndpoint:         types.InstanceMetadataEndpointState(m.HTTPEndpoint),
		HttpTokens:           types.HttpTokensState(m.HTTPTokens),
		InstanceMetadataTags: types.InstanceMetadataTagsState(m.InstanceMetadataTags),
	}
	if m.HTTPPutResponseHopLimit != 0 {
		r.HttpPutResponseHopLimit = aws.Int32(m.HTTPPutResponseHopLimit)
	}
	return r
}

// Values of ssh_interface.
const (
	SSHInterfacePublicIP   = "public_ip"
	SSHInterfacePrivateIP  = "private_ip"
	SSHInterfacePublicDNS  = "public_dns"
	SSHInterfacePrivateDNS = "private_dns"
)

var (
	subnetIDRE     = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	vpcIDRE        = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	sgIDRE         = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	instanceTypeRE = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)
	azRE           = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}[a-z]$|^[a-z]{3,4}[0-9]-az[0-9]+$`)
	profileARNRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/[\w+=,.@/-]{1,128}$`)
	profileNameRE  = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	keyPairNameRE  = regexp.MustCompile(`^[\x20-\x7e]{1,255}$`)
)

// Warnings returns the warnings Prepare found, such as deprecated options.
func (c *RunConfig) Warnings() []string { return c.warnings }

// Format, String and GoString print the configuration with the
// communicator's passwords and private key redacted (see package secret).
// Types that embed RunConfig implement them too.
func (c RunConfig) Format(f fmt.State, verb rune) { secret.Format(f, verb, c) }

// String describes the configuration with its secrets redacted.
func (c RunConfig) String() string { return secret.Describe(c) }

// GoString describes the configuration with its secrets redacted.
func (c RunConfig) GoString() string { return secret.GoString(c) }

// Prepare validates the run configuration without any network call and
// fills in defaults. ctx is the interpolation context of the component.
func (c *RunConfig) Prepare(ctx *interpolate.Context) []error {
	errs, warnings := c.InstanceSettings.prepare(c.InstanceType)
	c.warnings = append(c.warnings, warnings...)
	errs = append(errs, c.prepareSource()...)
	errs = append(errs, c.preparePlacement()...)
	errs = append(errs, c.NetworkConfig.prepare(c)...)
	errs = append(errs, c.prepareUserData()...)
	errs = append(errs, c.prepareCommunicator(ctx)...)
	errs = append(errs, mergeTagBlocks("run_tags", "run_tag", &c.RunTags, c.RunTag)...)
	errs = append(errs, mergeTagBlocks("run_volume_tags", "run_volume_tag", &c.RunVolumeTags, c.RunVolumeTag)...)
	errs = append(errs, checkTags(ctx, "run_tags", c.RunTags)...)
	errs = append(errs, checkTags(ctx, "run_volume_tags", c.RunVolumeTags)...)
	errs = append(errs, c.MetadataOptions.prepare()...)
	errs = append(errs, c.TemporaryIAMProfileConfig.prepare(c.IamInstanceProfile)...)
	errs = append(errs, c.SpotConfig.prepare(ctx, c.InstanceType)...)
	errs = append(errs, c.prepareSpotLimits()...)
	errs = append(errs, c.SessionManagerConfig.prepare(c)...)
	errs = append(errs, c.LaunchMappings.Prepare("launch_block_device_mappings")...)
	return errs
}

// prepareSource checks that exactly one of source_ami and
// source_ami_filter names the source image, and that the one set is well
// formed.
func (c *RunConfig) prepareSource() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.SourceAMI != "" && !c.SourceAMIFilter.Empty():
		add("source_ami, source_ami_filter: set one of them, not both")
	case c.SourceAMI == "" && c.SourceAMIFilter.Empty():
		add("source_ami: required, or set source_ami_filter")
	}
	if c.SourceAMI != "" && !amiconfig.Unknown(c.SourceAMI) && !amiconfig.ValidAMIID(c.SourceAMI) {
		add("source_ami: %q is not an AMI ID; expected \"ami-\" and 8 or 17 hex digits", c.SourceAMI)
	}
	return append(errs, c.SourceAMIFilter.Validate()...)
}

// preparePlacement checks where the build instance runs and with what:
// instance type, zone, subnet, VPC, security groups, the temporary
// group's CIDR blocks and the instance profile.
func (c *RunConfig) preparePlacement() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.InstanceType == "" && len(c.SpotInstanceTypes) == 0 {
		add("instance_type: required, for example \"t3.micro\" (or spot_instance_types for a spot instance)")
	} else if c.InstanceType != "" && !amiconfig.Matches(instanceTypeRE, c.InstanceType) {
		add("instance_type: %q is not an instance type; expected family.size like \"t3.micro\"", c.InstanceType)
	}
	if c.AvailabilityZone != "" && !amiconfig.Matches(azRE, c.AvailabilityZone) {
		add("availability_zone: %q is not an availability zone; expected like \"us-east-1a\"", c.AvailabilityZone)
	}
	if c.SubnetID != "" && !amiconfig.Matches(subnetIDRE, c.SubnetID) {
		add("subnet_id: %q is not a subnet ID; expected \"subnet-\" and 8 or 17 hex digits", c.SubnetID)
	}
	if c.VpcID != "" && !amiconfig.Matches(vpcIDRE, c.VpcID) {
		add("vpc_id: %q is not a VPC ID; expected \"vpc-\" and 8 or 17 hex digits", c.VpcID)
	}
	for i, sg := range c.SecurityGroupIDs {
		if !amiconfig.Matches(sgIDRE, sg) {
			add("security_group_ids[%d]: %q is not a security group ID; expected \"sg-\" and 8 or 17 hex digits", i, sg)
		}
	}
	if len(c.SecurityGroupIDs) > 0 && len(c.TemporarySGSourceCIDRs) > 0 {
		add("temporary_security_group_source_cidrs: only used for the temporary security group; not valid together with security_group_ids")
	}
	for i, cidr := range c.TemporarySGSourceCIDRs {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			add("temporary_security_group_source_cidrs[%d]: %q is not a CIDR block; expected like \"203.0.113.0/24\" or \"2001:db8::/32\"", i, cidr)
		} else if p.Masked() != p {
			add("temporary_security_group_source_cidrs[%d]: %q has host bits set; did you mean %q?", i, cidr, p.Masked().String())
		}
	}
	if p := c.IamInstanceProfile; p != "" && !amiconfig.Matches(profileARNRE, p) && !amiconfig.Matches(profileNameRE, p) {
		add("iam_instance_profile: %q is neither an instance profile name nor an instance profile ARN", p)
	}
	return errs
}

// maxUserData is the largest user data EC2 accepts, before base64.
const maxUserData = 16 * 1024

// prepareUserData checks user_data and user_data_file: one of them, and
// within EC2's limit. The file is read again at launch.
func (c *RunConfig) prepareUserData() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.UserData != "" && c.UserDataFile != "" {
		add("user_data, user_data_file: set one of them, not both")
	}
	if c.UserDataFile != "" {
		if st, err := os.Stat(c.UserDataFile); err != nil {
			add("user_data_file: cannot read %q: %v", c.UserDataFile, err)
		} else if st.IsDir() {
			add("user_data_file: %q is a directory, not a file", c.UserDataFile)
		} else if st.Size() > maxUserData {
			add("user_data_file: %q is %d bytes; user data is limited to 16 KiB", c.UserDataFile, st.Size())
		}
	}
	if len(c.UserData) > maxUserData {
		add("user_data: %d bytes; user data is limited to 16 KiB", len(c.UserData))
	}
	return errs
}

// prepareCommunicator checks how Packer reaches the instance (the address,
// key pairs, the Windows password, the communicator block) and fills in
// the temporary key pair's type and name.
func (c *RunConfig) prepareCommunicator(ctx *interpolate.Context) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.SSHInterface {
	case "", SSHInterfacePublicIP, SSHInterfacePrivateIP, SSHInterfacePublicDNS, SSHInterfacePrivateDNS, SSHInterfaceSessionManager:
	default:
		add("ssh_interface: %q is unknown; valid are public_ip, private_ip, public_dns, private_dns and session_manager", c.SSHInterface)
	}
	if c.SSHInterface == SSHInterfacePublicIP && c.AssociatePublicIPAddress.False() {
		add("ssh_interface: public_ip is not reachable with associate_public_ip_address = false")
	}
	if c.Comm.SSHKeyPairName != "" && !amiconfig.Matches(keyPairNameRE, c.Comm.SSHKeyPairName) {
		add("ssh_keypair_name: %q is invalid; use 1-255 printable ASCII characters", c.Comm.SSHKeyPairName)
	}
	if c.Comm.SSHTemporaryKeyPairName != "" && !amiconfig.Matches(keyPairNameRE, c.Comm.SSHTemporaryKeyPairName) {
		add("temporary_key_pair_name: %q is invalid; use 1-255 printable ASCII characters", c.Comm.SSHTemporaryKeyPairName)
	}
	errs = append(errs, c.WindowsConfig.prepare(&c.Comm)...)
	switch c.Comm.SSHTemporaryKeyPairType {
	case "":
		c.Comm.SSHTemporaryKeyPairType = "ed25519"
	case "ed25519", "rsa":
	default:
		add("temporary_key_pair_type: %q is not supported by EC2 key pairs; valid are \"ed25519\" and \"rsa\"", c.Comm.SSHTemporaryKeyPairType)
	}
	if c.Comm.SSHKeyPairName != "" && c.Comm.SSHPrivateKeyFile == "" && !c.Comm.SSHAgentAuth {
		add("ssh_keypair_name: needs ssh_private_key_file or ssh_agent_auth, so that Packer can log in with the key pair")
	}
	switch c.Comm.Type {
	case "", "ssh", "winrm", "none":
		errs = append(errs, c.Comm.Prepare(ctx)...)
	default:
		add("communicator: %q is unknown; valid are \"ssh\" (the default), \"winrm\" and \"none\"", c.Comm.Type)
	}
	if c.NeedsTemporaryKeyPair() && c.Comm.SSHTemporaryKeyPairName == "" {
		c.Comm.SSHTemporaryKeyPairName = "packer_" + uuid.TimeOrderedUUID()
	}
	return errs
}

// prepareSpotLimits checks the instance options a spot build instance
// (spot_price) cannot have, and that unlimited credits are asked for
// burstable instance types only.
func (c *RunConfig) prepareSpotLimits() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.IsSpotInstance() {
		if c.EnableNitroEnclave {
			add("enable_nitro_enclave: not available on spot instances (spot_price); remove one of them")
		}
		if c.DisableStopInstance {
			add("disable_stop_instance: a spot build instance (spot_price) cannot be stopped, by the builder or by itself; remove one of them")
		}
		for _, it := range append([]string{c.InstanceType}, c.SpotInstanceTypes...) {
			if c.EnableUnlimitedCredits && strings.HasPrefix(strings.ToLower(it), "t2.") {
				add("enable_unlimited_credits: T2 spot instances (%s) cannot have unlimited credits; use a T3 type or remove spot_price", it)
			}
		}
		if c.InstanceInitiatedShutdownBehavior == "stop" {
			add("shutdown_behavior: \"stop\" is not available for spot instances (spot_price); leave it unset or use \"terminate\"")
		}
		if p := c.Placement; p.Tenancy == "host" || p.HostId != "" || p.HostResourceGroupArn != "" {
			add("placement: spot instances (spot_price) cannot run on Dedicated Hosts; remove tenancy \"host\", host_id and host_resource_group_arn, or spot_price")
		}
		if c.CapacityReservationId != "" || c.CapacityReservationGroupArn != "" {
			add("capacity_reservation_id, capacity_reservation_group_arn: Capacity Reservations are for on-demand instances, not spot_price")
		}
	}
	// The instance types a launch may use: unlimited credits need T types.
	if c.EnableUnlimitedCredits {
		for _, it := range c.SpotInstanceTypes {
			if !amiconfig.Unknown(it) && !strings.HasPrefix(strings.ToLower(it), "t") {
				add("enable_unlimited_credits: spot_instance_types lists %q, not a burstable (T family) type; unlimited credits apply to T instances only", it)
			}
		}
	}
	return errs
}

// prepare checks the metadata options against the values EC2 accepts.
func (m *MetadataOptions) prepare() []error {
	var errs []error
	check := func(field, v string, valid ...string) {
		if v == "" {
			return
		}
		for _, ok := range valid {
			if v == ok {
				return
			}
		}
		errs = append(errs, fmt.Errorf("metadata_options.%s: %q is invalid; valid are %q", field, v, valid))
	}
	check("http_endpoint", m.HTTPEndpoint, "enabled", "disabled")
	check("http_tokens", m.HTTPTokens, "optional", "required")
	check("instance_metadata_tags", m.InstanceMetadataTags, "enabled", "disabled")
	if m.HTTPPutResponseHopLimit < 0 || m.HTTPPutResponseHopLimit > 64 {
		errs = append(errs, fmt.Errorf("metadata_options.http_put_response_hop_limit: %d is out of range; valid is 1 to 64", m.HTTPPutResponseHopLimit))
	}
	return errs
}

// NeedsTemporaryKeyPair reports whether the build creates a temporary EC2
// key pair: with the SSH communicator when the user gave no key pair, no
// private key file, no password and no agent authentication; with the
// WinRM communicator when the Windows password is read from EC2 and the
// user gave no key pair.
func (c *RunConfig) NeedsTemporaryKeyPair() bool { return needsTemporaryKeyPair(&c.Comm) }

// needsTemporaryKeyPair reports whether the communicator needs a temporary
// EC2 key pair: SSH without a key pair, private key file, password or agent
// authentication of its own, or WinRM without winrm_password (to decrypt
// the Windows password) and without a key pair.
func needsTemporaryKeyPair(c *communicator.Config) bool {
	if needsWindowsPassword(c) {
		return c.SSHKeyPairName == "" && c.SSHPrivateKeyFile == ""
	}
	return c.Type == "ssh" &&
		c.SSHKeyPairName == "" &&
		c.SSHPrivateKeyFile == "" &&
		c.SSHPassword == "" &&
		!c.SSHAgentAuth
}

// NeedsTemporarySecurityGroup reports whether the build creates a temporary
// security group: when no security group is given or filtered for and a
// communicator is used.
func (c *RunConfig) NeedsTemporarySecurityGroup() bool {
	return len(c.SecurityGroupIDs) == 0 && c.SecurityGroupFilter.Empty() && c.Comm.Type != "none"
}

// ReadUserData returns the configured user data (from user_data or
// user_data_file), or "" for none.
func (c *RunConfig) ReadUserData() (string, error) {
	if c.UserDataFile == "" {
		return c.UserData, nil
	}
	b, err := os.ReadFile(c.UserDataFile)
	if err != nil {
		return "", fmt.Errorf("user_data_file: %w", err)
	}
	return string(b), nil
}

// mergeTagBlocks adds the repeatable key/value blocks of blockField (as in
// HashiCorp's `tag` blocks) to the map of mapField. An empty key, a key
// given twice in blocks, or a key in both the map and a block is an error
// naming both fields.
func mergeTagBlocks(mapField, blockField string, to *map[string]string, blocks config.KeyValues) []error {
	var errs []error
	seen := map[string]bool{}
	for i, kv := range blocks {
		switch _, inMap := (*to)[kv.Key]; {
		case strings.TrimSpace(kv.Key) == "":
			errs = append(errs, fmt.Errorf("%s[%d].key: required", blockField, i))
		case seen[kv.Key]:
			errs = append(errs, fmt.Errorf("%s[%d]: tag %q is set by an earlier %s block", blockField, i, kv.Key, blockField))
		case inMap:
			errs = append(errs, fmt.Errorf("%s, %s: tag %q is set in both; set it in one of them", mapField, blockField, kv.Key))
		}
		seen[kv.Key] = true
	}
	if len(errs) > 0 {
		return errs
	}
	return blocks.CopyOn(to)
}

// checkTags validates a tags option of a builder: keys and values are
// rendered with placeholder build data (see checkTemplate), then checked
// against EC2's limits (CheckTags).
func checkTags(ctx *interpolate.Context, field string, tags map[string]string) []error {
	return amiconfig.CheckTags(field, tags, func(s string) (string, error) { return renderSample(ctx, s) })
}

// checkTemplate renders a build-time template with placeholder build data,
// so that syntax errors and unknown variables (such as {{ .SourceAMIID }}
// for {{ .SourceAMI }}) are reported before the build starts.
func checkTemplate(ctx *interpolate.Context, s string) error {
	_, err := renderSample(ctx, s)
	return err
}

// renderSample renders a build-time template with placeholder build data.
func renderSample(ctx *interpolate.Context, s string) (string, error) {
	return amiconfig.Render(templateContext(ctx), s, amiconfig.SampleBuildInfo())
}

// templateContext returns a copy of ctx (or an empty context) with the
// template functions set.
func templateContext(ctx *interpolate.Context) interpolate.Context {
	var c interpolate.Context
	if ctx != nil {
		c = *ctx
	}
	if c.Funcs == nil {
		c.Funcs = amiconfig.TemplateFuncs
	}
	return c
}
