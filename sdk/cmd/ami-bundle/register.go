package main

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

var registerCommand = &command{
	name:  "register",
	args:  " BUCKET/PREFIX/NAME.manifest.xml",
	short: "register an instance-store AMI from a bundle in S3 (like ec2-register)",
	summary: `Register an instance-store AMI from the manifest of a bundle in S3, like
ec2-register: ami-bundle register BUCKET/PREFIX/NAME.manifest.xml -n NAME.
The image is registered in the bucket's region (--region). Without -a the
architecture, kernel and ramdisk are read from the manifest. The new AMI id
is printed on standard output.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) error {
		var f registerFlags
		f.aws.define(fs)
		stringFlag(fs, &f.name, "n", "name", "", "AMI `name` (required)")
		stringFlag(fs, &f.description, "d", "description", "", "AMI `description`")
		stringFlag(fs, &f.arch, "a", "architecture", "", "`architecture`: i386, x86_64 or arm64 (default: the manifest's)")
		stringFlag(fs, &f.virt, "", "virtualization-type", "hvm", "virtualization `type`: hvm or paravirtual")
		stringFlag(fs, &f.rootDevice, "", "root-device-name", "", "root `device`, e.g. /dev/sda1")
		fs.Var(&f.mappings, "b", "block device `mapping` DEVICE=ephemeralN, DEVICE=none or DEVICE=[SNAPSHOT][:SIZE[:DELETE-ON-TERMINATION[:TYPE[:IOPS]]]]; repeatable")
		fs.Var(&f.mappings, "block-device-mapping", "block device `mapping` DEVICE=ephemeralN, DEVICE=none or DEVICE=[SNAPSHOT][:SIZE[:DELETE-ON-TERMINATION[:TYPE[:IOPS]]]]; repeatable")
		stringFlag(fs, &f.kernel, "", "kernel", "", "kernel `id` (aki-...; default: the manifest's)")
		stringFlag(fs, &f.ramdisk, "", "ramdisk", "", "ramdisk `id` (ari-...; default: the manifest's)")
		boolFlag(fs, &f.ena, "", "ena-support", "enable ENA networking")
		stringFlag(fs, &f.sriov, "", "sriov-net-support", "", "`simple` to enable Intel 82599 VF enhanced networking")
		stringFlag(fs, &f.bootMode, "", "boot-mode", "", "boot `mode`: legacy-bios, uefi or uefi-preferred")
		stringFlag(fs, &f.tpm, "", "tpm-support", "", "`v2.0` to enable NitroTPM (needs --boot-mode uefi)")
		stringFlag(fs, &f.imds, "", "imds-support", "", "`v2.0` to make instances require IMDSv2")
		fs.Var(&f.tags, "tag", "`key=value` tag put on the image; repeatable")
		return f.run
	},
}

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type registerFlags struct {
	aws                           awsFlags
	name, description, arch, virt string
	rootDevice, kernel, ramdisk   string
	sriov, bootMode, tpm, imds    string
	ena                           bool
	mappings, tags                listFlag
}

// input checks the command line and builds the registration, without any
// AWS call.
func (f *registerFlags) input(args []string) (*bundlestore.RegisterInput, error) {
	if err := f.check(args); err != nil {
		return nil, err
	}
	in := &bundlestore.RegisterInput{
		ImageLocation:      args[0],
		Name:               f.name,
		Description:        f.description,
		Architecture:       f.arch,
		VirtualizationType: f.virt,
		RootDeviceName:     f.rootDevice,
		KernelID:           f.kernel,
		RamdiskID:          f.ramdisk,
		SriovNetSupport:    f.sriov == "simple",
		BootMode:           f.bootMode,
		TPMSupport:         f.tpm,
		IMDSSupport:        f.imds,
	}
	if f.ena {
		in.ENASupport = aws.Bool(true)
	}
	for _, m := range f.mappings {
		bdm, err := parseMapping(m)
		if err != nil {
			return nil, usagef("-b/--block-device-mapping: %v", err)
		}
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, bdm)
	}
	tags, err := parseTags(f.tags)
	if err != nil {
		return nil, err
	}
	in.Tags = tags
	return in, nil
}

// check returns a usage error for the first argument or flag that is
// missing or not valid.
func (f *registerFlags) check(args []string) error {
	switch len(args) {
	case 0:
		return usagef("missing the manifest location BUCKET/PREFIX/NAME.manifest.xml")
	case 1:
	default:
		return usagef("unexpected argument %q", args[1])
	}
	if _, err := bundlestore.ParseImageLocation(args[0]); err != nil {
		return usagef("manifest location %q: %v", args[0], err)
	}
	if err := required([2]string{"-n/--name", f.name}); err != nil {
		return err
	}
	if err := bundlestore.ValidateImageName(f.name); err != nil {
		return usagef("-n/--name: %v", err)
	}
	if err := f.checkChoices(); err != nil {
		return err
	}
	if f.rootDevice != "" && !strings.HasPrefix(f.rootDevice, "/dev/") && !strings.HasPrefix(f.rootDevice, "xvd") && !strings.HasPrefix(f.rootDevice, "sd") {
		return usagef("--root-device-name %q is not a device name such as /dev/sda1", f.rootDevice)
	}
	if err := idFlag("--kernel", f.kernel, "aki-"); err != nil {
		return err
	}
	return idFlag("--ramdisk", f.ramdisk, "ari-")
}

// checkChoices checks the flags that take one of a few values, and that
// NitroTPM comes with UEFI boot.
func (f *registerFlags) checkChoices() error {
	for _, c := range []struct {
		flag, value string
		valid       []string
	}{
		{"-a/--architecture", f.arch, []string{"", bundle.ArchI386, bundle.ArchX86_64, bundle.ArchARM64}},
		{"--virtualization-type", f.virt, []string{"hvm", "paravirtual"}},
		{"--sriov-net-support", f.sriov, []string{"", "simple"}},
		{"--boot-mode", f.bootMode, []string{"", "legacy-bios", "uefi", "uefi-preferred"}},
		{"--tpm-support", f.tpm, []string{"", "v2.0"}},
	} {
		if err := oneOf(c.flag, c.value, c.valid...); err != nil {
			return err
		}
	}
	if f.tpm != "" && f.bootMode != "uefi" {
		return usagef("--tpm-support v2.0 needs --boot-mode uefi")
	}
	return oneOf("--imds-support", f.imds, "", "v2.0")
}

// parseTags parses the --tag flags, key=value each, into a map (nil when
// there are none).
func parseTags(tags []string) (map[string]string, error) {
	var m map[string]string
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, usagef("--tag %q: want key=value", t)
		}
		if _, dup := m[k]; dup {
			return nil, usagef("--tag: key %q given twice", k)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m, nil
}

func (f *registerFlags) run(ctx context.Context, std *stdio, args []string) error {
	in, err := f.input(args)
	if err != nil {
		return err
	}
	sess, err := f.aws.session(ctx)
	if err != nil {
		return err
	}
	in.Region = sess.Region()
	if in.Architecture == "" {
		loc, _ := bundlestore.ParseImageLocation(in.ImageLocation)
		got, err := bundlestore.GetManifest(ctx, sess.S3(""), &bundlestore.GetManifestInput{Location: loc})
		if err != nil {
			return fmt.Errorf("read the architecture from the manifest (or give -a/--architecture): %w", err)
		}
		in.Manifest = got.Manifest
	}
	out, err := bundlestore.Register(ctx, sess.EC2(""), in, func(o *bundlestore.Options) {
		o.Logf = func(format string, args ...any) { fmt.Fprintf(std.stderr, format+"\n", args...) }
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(std.stdout, out.ImageID)
	return nil
}

// oneOf returns a usage error naming flag unless value is one of valid
// ("" among valid means the flag may be left out).
func oneOf(flag, value string, valid ...string) error {
	var names []string
	for _, v := range valid {
		if value == v {
			return nil
		}
		if v != "" {
			names = append(names, v)
		}
	}
	return usagef("%s %q is not one of %s", flag, value, strings.Join(names, ", "))
}

var idPattern = regexp.MustCompile(`^[a-z]+-[0-9a-f]{8}([0-9a-f]{9})?$`)

func idFlag(flag, value, prefix string) error {
	if value == "" || strings.HasPrefix(value, prefix) && idPattern.MatchString(value) {
		return nil
	}
	return usagef("%s %q is not an id like %s0123456789abcdef0", flag, value, prefix)
}

// parseMapping parses an ec2-register block device mapping:
// DEVICE=ephemeralN, DEVICE=none or
// DEVICE=[SNAPSHOT][:SIZE[:DELETE-ON-TERMINATION[:TYPE[:IOPS]]]].
func parseMapping(s string) (types.BlockDeviceMapping, error) {
	var bdm types.BlockDeviceMapping
	dev, spec, ok := strings.Cut(s, "=")
	if !ok || dev == "" || spec == "" {
		return bdm, fmt.Errorf("%q: want DEVICE=ephemeralN, DEVICE=none or DEVICE=[SNAPSHOT][:SIZE[:DELETE-ON-TERMINATION[:TYPE[:IOPS]]]]", s)
	}
	bdm.DeviceName = aws.String(dev)
	switch {
	case spec == "none":
		bdm.NoDevice = aws.String("")
		return bdm, nil
	case strings.HasPrefix(spec, "ephemeral"):
		if n, err := strconv.Atoi(strings.TrimPrefix(spec, "ephemeral")); err != nil || n < 0 || n > 23 {
			return bdm, fmt.Errorf("%q: %q is not ephemeral0 to ephemeral23", s, spec)
		}
		bdm.VirtualName = aws.String(spec)
		return bdm, nil
	}
	fields := strings.Split(spec, ":")
	if len(fields) > 5 {
		return bdm, fmt.Errorf("%q: too many fields; want [SNAPSHOT][:SIZE[:DELETE-ON-TERMINATION[:TYPE[:IOPS]]]]", s)
	}
	fields = append(fields, make([]string, 5-len(fields))...)
	ebs := &types.EbsBlockDevice{}
	if snap := fields[0]; snap != "" {
		if !strings.HasPrefix(snap, "snap-") || !idPattern.MatchString(snap) {
			return bdm, fmt.Errorf("%q: %q is not a snapshot id (snap-...)", s, snap)
		}
		ebs.SnapshotId = aws.String(snap)
	}
	if size := fields[1]; size != "" {
		n, err := strconv.ParseInt(size, 10, 32)
		if err != nil || n <= 0 {
			return bdm, fmt.Errorf("%q: size %q is not a positive number of GiB", s, size)
		}
		ebs.VolumeSize = aws.Int32(int32(n))
	}
	if ebs.SnapshotId == nil && ebs.VolumeSize == nil {
		return bdm, fmt.Errorf("%q: give a snapshot id or a size", s)
	}
	if del := fields[2]; del != "" {
		b, err := strconv.ParseBool(del)
		if err != nil {
			return bdm, fmt.Errorf("%q: delete-on-termination %q is not true or false", s, del)
		}
		ebs.DeleteOnTermination = aws.Bool(b)
	}
	if typ := fields[3]; typ != "" {
		var known bool
		for _, v := range types.VolumeType("").Values() {
			known = known || string(v) == typ
		}
		if !known {
			return bdm, fmt.Errorf("%q: volume type %q is not one of %v", s, typ, types.VolumeType("").Values())
		}
		ebs.VolumeType = types.VolumeType(typ)
	}
	if iops := fields[4]; iops != "" {
		n, err := strconv.ParseInt(iops, 10, 32)
		if err != nil || n <= 0 {
			return bdm, fmt.Errorf("%q: IOPS %q is not a positive number", s, iops)
		}
		ebs.Iops = aws.Int32(int32(n))
	}
	bdm.Ebs = ebs
	return bdm, nil
}
