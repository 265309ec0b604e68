//go:generate packer-sdc mapstructure-to-hcl2 -type BlockDevice
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/template/config"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// BlockDevice is one block device mapping, used both for the volumes the
// build instance is launched with (`launch_block_device_mappings`) and for
// the volumes recorded in the AMI (`ami_block_device_mappings`).
//
// A mapping is one of three kinds: an EBS volume (the default), an instance
// store volume (`virtual_name`), or the suppression of a mapping the source
// AMI has (`no_device`).
type BlockDevice struct {
	// The device name exposed to the instance, for example `/dev/sdb` or
	// `/dev/xvda`.
	DeviceName string `mapstructure:"device_name" required:"true"`
	// The EBS volume type: `gp2`, `gp3`, `io1`, `io2`, `st1`, `sc1` or
	// `standard`. Empty uses the AWS default for the account.
	VolumeType string `mapstructure:"volume_type" required:"false"`
	// The size of the volume in GiB. Required for a new empty volume; with
	// `snapshot_id`, or for a device of the source AMI, it defaults to the
	// snapshot's size.
	VolumeSize int32 `mapstructure:"volume_size" required:"false"`
	// The provisioned IOPS. Required for `io1` and `io2`; optional for
	// `gp3` (3000 to 80000); not valid for other types.
	IOPS int32 `mapstructure:"iops" required:"false"`
	// The throughput in MiB/s, only for `gp3` volumes (125 to 2000).
	Throughput int32 `mapstructure:"throughput" required:"false"`
	// Whether the volume is deleted when the instance terminates. Defaults
	// to `true`, so that the build instance leaves no volume behind.
	DeleteOnTermination config.Trilean `mapstructure:"delete_on_termination" required:"false"`
	// Whether the volume is encrypted. Unset keeps the encryption state of
	// the snapshot (or the account's default encryption setting).
	Encrypted config.Trilean `mapstructure:"encrypted" required:"false"`
	// The ID, alias or ARN of the KMS key that encrypts the volume. Requires
	// `encrypted = true`. Empty uses the account's default EBS key.
	KmsKeyID string `mapstructure:"kms_key_id" required:"false"`
	// The snapshot the volume is created from, for example
	// `snap-0123456789abcdef0`.
	SnapshotID string `mapstructure:"snapshot_id" required:"false"`
	// The instance store volume to map, `ephemeral0` to `ephemeral23`. Not
	// valid together with any EBS setting.
	VirtualName string `mapstructure:"virtual_name" required:"false"`
	// Suppress this device of the source AMI's mappings. Not valid together
	// with any other setting than `device_name`.
	NoDevice bool `mapstructure:"no_device" required:"false"`
}

var (
	snapshotIDRE  = regexp.MustCompile(`^snap-[0-9a-f]{8,17}$`)
	virtualNameRE = regexp.MustCompile(`^ephemeral([0-9]|1[0-9]|2[0-3])$`)
	deviceNameRE  = regexp.MustCompile(`^(/dev/)?[a-z][a-z0-9]{1,15}$`)
)

// Prepare validates one mapping; field names in errors are prefixed with
// where (for example "launch_block_device_mappings[0]").
func (b *BlockDevice) Prepare(where string) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: "+format, append([]any{where, field}, args...)...))
	}
	if b.DeviceName == "" {
		add("device_name", "required, for example \"/dev/sdb\"")
	} else if !amiconfig.Matches(deviceNameRE, b.DeviceName) {
		add("device_name", "%q is not a device name; expected like \"/dev/sdb\" or \"xvdb\"", b.DeviceName)
	}
	ebsSet := b.VolumeType != "" || b.VolumeSize != 0 || b.IOPS != 0 || b.Throughput != 0 ||
		b.Encrypted != config.TriUnset || b.KmsKeyID != "" || b.SnapshotID != "" || b.DeleteOnTermination != config.TriUnset
	if b.NoDevice {
		if ebsSet || b.VirtualName != "" {
			add("no_device", "a suppressed device takes no other setting than device_name")
		}
		return errs
	}
	if b.VirtualName != "" {
		if !amiconfig.Matches(virtualNameRE, b.VirtualName) {
			add("virtual_name", "%q is invalid; valid are \"ephemeral0\" to \"ephemeral23\"", b.VirtualName)
		}
		if ebsSet {
			add("virtual_name", "an instance store volume takes no EBS setting (volume_type, volume_size, iops, throughput, encrypted, kms_key_id, snapshot_id, delete_on_termination)")
		}
		return errs
	}

	switch b.VolumeType {
	case "", "gp2", "gp3", "io1", "io2", "st1", "sc1", "standard":
	default:
		add("volume_type", "%q is unknown; valid are gp2, gp3, io1, io2, st1, sc1 and standard", b.VolumeType)
	}
	if b.VolumeSize < 0 || b.VolumeSize > 65536 {
		add("volume_size", "%d GiB is out of range; valid is 1 to 65536", b.VolumeSize)
	}
	switch {
	case b.IOPS < 0:
		add("iops", "%d is negative", b.IOPS)
	case b.VolumeType == "io1" || b.VolumeType == "io2":
		if b.IOPS == 0 {
			add("iops", "required for volume_type %q", b.VolumeType)
		} else if b.IOPS < 100 || b.IOPS > 256000 {
			add("iops", "%d is out of range for %s; valid is 100 to 256000", b.IOPS, b.VolumeType)
		}
	case b.VolumeType == "gp3":
		if b.IOPS != 0 && (b.IOPS < 3000 || b.IOPS > 80000) {
			add("iops", "%d is out of range for gp3; valid is 3000 to 80000", b.IOPS)
		}
	case b.IOPS != 0:
		add("iops", "only valid for volume_type io1, io2 and gp3, not %q", b.VolumeType)
	}
	if b.Throughput != 0 {
		if b.VolumeType != "gp3" {
			add("throughput", "only valid for volume_type gp3, not %q", b.VolumeType)
		} else if b.Throughput < 125 || b.Throughput > 2000 {
			add("throughput", "%d MiB/s is out of range; valid is 125 to 2000", b.Throughput)
		}
	}
	if b.KmsKeyID != "" && !b.Encrypted.True() {
		add("kms_key_id", "requires encrypted = true")
	}
	if b.KmsKeyID != "" {
		if err := distribute.ValidateKMSKeyID(b.KmsKeyID); !amiconfig.Unknown(b.KmsKeyID) && err != nil {
			add("kms_key_id", "%v", err)
		}
	}
	if b.SnapshotID != "" && !amiconfig.Matches(snapshotIDRE, b.SnapshotID) {
		add("snapshot_id", "%q is not a snapshot ID; expected \"snap-\" and 8 or 17 hex digits", b.SnapshotID)
	}
	return errs
}

// Mapping returns the EC2 form of the mapping.
func (b *BlockDevice) Mapping() types.BlockDeviceMapping {
	m := types.BlockDeviceMapping{DeviceName: aws.String(b.DeviceName)}
	switch {
	case b.NoDevice:
		m.NoDevice = aws.String("")
		return m
	case b.VirtualName != "":
		m.VirtualName = aws.String(b.VirtualName)
		return m
	}
	ebs := &types.EbsBlockDevice{DeleteOnTermination: aws.Bool(!b.DeleteOnTermination.False())}
	if b.VolumeType != "" {
		ebs.VolumeType = types.VolumeType(b.VolumeType)
	}
	if b.VolumeSize != 0 {
		ebs.VolumeSize = aws.Int32(b.VolumeSize)
	}
	if b.IOPS != 0 {
		ebs.Iops = aws.Int32(b.IOPS)
	}
	if b.Throughput != 0 {
		ebs.Throughput = aws.Int32(b.Throughput)
	}
	ebs.Encrypted = b.Encrypted.ToBoolPointer()
	if b.KmsKeyID != "" {
		ebs.KmsKeyId = aws.String(b.KmsKeyID)
	}
	if b.SnapshotID != "" {
		ebs.SnapshotId = aws.String(b.SnapshotID)
	}
	m.Ebs = ebs
	return m
}

// BlockDevices is a list of mappings.
type BlockDevices []BlockDevice

// Prepare validates every mapping and that no device name repeats; field is
// the option name, such as "ami_block_device_mappings".
func (bs BlockDevices) Prepare(field string) []error {
	var errs []error
	seen := map[string]int{}
	for i := range bs {
		where := fmt.Sprintf("%s[%d]", field, i)
		errs = append(errs, bs[i].Prepare(where)...)
		name := bs[i].DeviceName
		if name == "" {
			continue
		}
		if j, dup := seen[name]; dup {
			errs = append(errs, fmt.Errorf("%s.device_name: %q is already mapped by %s[%d]; each device may be mapped once", where, name, field, j))
			continue
		}
		seen[name] = i
	}
	return errs
}

// SnapshotIDs returns the snapshots the mappings are given (snapshot_id),
// in order and without repeats. They belong to the user, not to the build:
// removing an AMI whose mappings name them must not delete them.
func (bs BlockDevices) SnapshotIDs() []string {
	var ids []string
	for _, b := range bs {
		if b.SnapshotID != "" && !slices.Contains(ids, b.SnapshotID) {
			ids = append(ids, b.SnapshotID)
		}
	}
	return ids
}

// Mappings returns the EC2 form of every mapping, or nil for none.
func (bs BlockDevices) Mappings() []types.BlockDeviceMapping {
	if len(bs) == 0 {
		return nil
	}
	out := make([]types.BlockDeviceMapping, len(bs))
	for i := range bs {
		out[i] = bs[i].Mapping()
	}
	return out
}
