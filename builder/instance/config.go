//go:generate packer-sdc mapstructure-to-hcl2 -type Config
//go:generate packer-sdc struct-markdown

package instance

import (
	"cmp"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/secret"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// Config is the configuration of the ami-instance builder: the access, run
// and AMI options shared with ami-ebs, plus where the bundle goes in S3, the
// X.509 material it is encrypted and signed with, how the image is taken on
// the build instance, and the machine settings of the registered AMI.
type Config struct {
	common.PackerConfig    `mapstructure:",squash"`
	amiconfig.AccessConfig `mapstructure:",squash"`
	amibuild.RunConfig     `mapstructure:",squash"`
	amibuild.AMIConfig     `mapstructure:",squash"`
	// How often and how long to wait for the instance to reach a state.
	// See the aws_polling block.
	Polling amiconfig.PollingConfig `mapstructure:"aws_polling" required:"false"`

	// The 12-digit ID of the AWS account the AMI is registered in; it is
	// written into the bundle manifest. Dashes are removed. Defaults to the
	// account of the credentials (STS GetCallerIdentity).
	AccountID string `mapstructure:"account_id" required:"false"`
	// The S3 bucket the bundle is uploaded to. It must be in the build
	// region, have ACLs enabled (object ownership other than "bucket owner
	// enforced", because every object gets the `aws-exec-read` ACL that lets
	// EC2 read it) and must not encrypt new objects with SSE-KMS. The bucket
	// is checked before the build instance is launched.
	S3Bucket string `mapstructure:"s3_bucket" required:"true"`
	// The key prefix ("folder") of the bundle's objects in the bucket, for
	// example `bundles/web`. It may use template functions such as
	// `{{timestamp}}`. Defaults to the AMI name (with characters other than
	// letters, digits, `.`, `_` and `-` replaced by `-`) followed by `-` and
	// the Unix time of the build, so that every build writes to a prefix of
	// its own.
	S3Prefix string `mapstructure:"s3_prefix" required:"false"`
	// The bundle's name: the name of the image inside it and the start of
	// its object names (`<name>.manifest.xml`, `<name>.part.N`). Letters,
	// digits, `.`, `_` and `-`; template functions such as `{{timestamp}}`
	// may be used. Defaults to `image` (the objects are already apart in
	// the per-build default `s3_prefix`).
	BundleName string `mapstructure:"bundle_name" required:"false"`
	// HashiCorp's `amazon-instance` name for `bundle_name`: the prefix of
	// the files (and objects) the bundle is made of, for example
	// `image-{{timestamp}}`. Set one of them, not both.
	BundlePrefix string `mapstructure:"bundle_prefix" required:"false"`
	// A PEM file with your X.509 certificate (RSA). The bundle's key is
	// encrypted for it, so that you can unbundle the image later with the
	// matching private key. It need not be issued by AWS; a self-signed
	// certificate works. Set it together with `x509_key_path`, or set
	// neither, and the builder generates a key and certificate for this
	// build (see `x509_generated_dir`). The files never leave the machine
	// running Packer.
	X509CertPath string `mapstructure:"x509_cert_path" required:"false"`
	// A PEM file with the RSA private key of `x509_cert_path`, in PKCS #1
	// or PKCS #8 form. The manifest is signed with it.
	X509KeyPath string `mapstructure:"x509_key_path" required:"false"`
	// When the builder generates the X.509 key and certificate (no
	// `x509_cert_path` and `x509_key_path`), the directory to write them
	// to, as `x509-key.pem` and `x509-cert.pem`, both with mode 0600. The
	// directory is created if needed and must not already hold these files;
	// use one directory per build, for example `keys/{{timestamp}}`.
	// Without it the generated key is discarded after the build, and
	// nobody can unbundle the bundle later (EC2 can still launch the AMI).
	X509GeneratedDir string `mapstructure:"x509_generated_dir" required:"false"`
	// A PEM file with Amazon's EC2 certificate, for which the bundle's key is
	// encrypted too, so that EC2 can decrypt the image. It ships with
	// Amazon's EC2 AMI tools as `cert-ec2.pem`; the AWS GovCloud (US) and
	// China regions have certificates of their own (`cert-ec2-gov.pem`,
	// `cert-ec2-cn-north-1.pem`). When it is not set, the builder reads the
	// region's certificate from Amazon's EC2 AMI tools on the build instance
	// once it is provisioned (below `$EC2_AMITOOL_HOME`,
	// `/opt/aws/amitools/ec2` or `/usr/local/ec2/ec2-ami-tools-*`), where
	// HashiCorp's `amazon-instance` templates install them; the build fails
	// before bundling if they are not there. With `local_emulator` a
	// stand-in certificate is generated instead.
	EC2CertPath string `mapstructure:"ec2_cert_path" required:"false"`
	// For testing against a local AWS emulator (such as moto) only; never
	// set it against AWS. It generates a stand-in for Amazon's EC2
	// certificate when `ec2_cert_path` is not set, and accepts a source AMI
	// that the emulator reports with a root device type other than
	// instance-store (with a warning): real EC2 cannot launch an AMI made
	// so. It requires the EC2 endpoint (`custom_endpoint_ec2`,
	// `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL` or `endpoint_url` in the
	// shared config profile) to be a loopback address (`127.0.0.0/8`,
	// `[::1]` or `localhost`), so it cannot take effect against AWS by
	// accident. A custom endpoint alone, such as a VPC or FIPS endpoint,
	// relaxes no check.
	LocalEmulator bool `mapstructure:"local_emulator" required:"false"`

	// What is bundled: `copy` (the default) makes a fresh file system
	// image of the running root file system in `bundle_scratch_dir`, like
	// ec2-bundle-vol: same file system type and label, everything on the
	// root file system except the contents of other mounts (`/proc`,
	// `/sys`, `/dev`, `/run` and the like), the scratch directory and
	// `bundle_exclude`. Otherwise an absolute path on the build instance:
	// a block device (`/dev/…`) or an image file, which is bundled as it
	// is.
	BundleSource string `mapstructure:"bundle_source" required:"false"`
	// The directory on the build instance where `copy` makes the image
	// file. It needs room for the image; by default `/mnt`, where
	// instance-store volumes are usually mounted. It is left out of the
	// image.
	BundleScratchDir string `mapstructure:"bundle_scratch_dir" required:"false"`
	// The size in MiB of the file system image `copy` makes, 1 to 10240.
	// Zero (the default) sizes it from the space used on the root file
	// system: used space plus a quarter plus 256 MiB, at most 10240 MiB.
	BundleSizeMB int `mapstructure:"bundle_size_mb" required:"false"`
	// Paths on the build instance that `copy` leaves out of the image, for
	// example `["/home/build/cache", "/srv/*/logs", "*/.cache"]`. A
	// directory is left out with everything below it. An entry is an
	// absolute path, or a pattern: `*`, `?` and `[…]` match as in the
	// shell, except that `*` and `?` also match `/`, and the pattern must
	// match the whole path (so `*/.cache` is every `.cache` anywhere, and
	// `/home/*/.cache` those of home directories and below). A pattern
	// starts with `/` or `*`.
	BundleExclude []string `mapstructure:"bundle_exclude" required:"false"`
	// What `copy` keeps of what it leaves out of a fresh AMI by default.
	// Without it, the image has none of these, as an AMI that many
	// instances will share should not:
	//
	// - `ssh_host_keys`: `/etc/ssh/ssh_host_*`, the instance's SSH host
	//   keys. Each instance then makes its own at its first boot (cloud-init
	//   and the sshd-keygen units of Amazon Linux and Fedora do).
	// - `build_ssh_key`: the build's SSH public key in every
	//   `authorized_keys` file (the file is left out when nothing else is
	//   in it), so the build's key cannot log in to instances of the AMI.
	// - `shell_history`: shell and console histories anywhere
	//   (`.bash_history`, `.zsh_history`, `.sh_history`, `.ash_history`,
	//   `.history`, `.python_history`, `.node_repl_history`,
	//   `.mysql_history`, `.psql_history`, `.sqlite_history`,
	//   `.rediscli_history`, `.lesshst`, `.viminfo`).
	// - `temp_files`: the contents of `/tmp` and `/var/tmp`.
	// - `machine_id`: `/etc/machine-id` is emptied, so that systemd makes a
	//   new one at first boot, and `/var/lib/dbus/machine-id` (unless a
	//   link) and `/var/lib/systemd/random-seed` are left out.
	// - `private_keys`: files named like keys (`*.pem`, `*.key`,
	//   `*.priv`, `id_rsa`, `id_dsa`, `id_ecdsa`, `id_ed25519` and their
	//   `_sk` forms, `*.gpg`, `*.jks`, `*.p12`, `*.pfx`) that hold a
	//   private key: PEM or OpenSSH armour, an OpenPGP secret key, or a
	//   key store. Public certificates and keyrings with the same names
	//   stay. Package-owned trees (`/usr` but `/usr/local`, `/lib*`,
	//   `/bin`, `/sbin`, `/boot`) are not searched.
	//
	// The build output lists everything left out. For example
	// `bundle_keep = ["ssh_host_keys"]` for an image whose host keys are
	// meant to be shared.
	BundleKeep []string `mapstructure:"bundle_keep" required:"false"`
	// What runs the bundle script with root rights on the build instance:
	// the script is piped into `<prefix> sh -s`. Defaults to `sudo -n`
	// unless `ssh_username` is `root`, in which case there is no prefix.
	// The script contains no secret; it only reads the image and writes it
	// to standard output.
	BundleCommandPrefix string `mapstructure:"bundle_command_prefix" required:"false"`
	// How many bundle parts (10 MiB each) are uploaded to S3 at once, 1 to
	// 32. Each part in flight holds 10 MiB of memory. Defaults to 4.
	S3UploadConcurrency int `mapstructure:"s3_upload_concurrency" required:"false"`

	// The architecture of the AMI: `i386`, `x86_64` (the default) or
	// `arm64`.
	Architecture string `mapstructure:"architecture" required:"false"`
	// The virtualization type of the AMI: `hvm` (the default) or
	// `paravirtual`. `arm64` needs `hvm`; `paravirtual` needs `kernel_id`.
	// (HashiCorp's `amazon-instance` defaults to `paravirtual`, which
	// current instance types do not run.)
	VirtualizationType string `mapstructure:"ami_virtualization_type" required:"false"`
	// The root device name of the AMI. Defaults to `/dev/sda1`.
	RootDeviceName string `mapstructure:"root_device_name" required:"false"`
	// The boot mode of the AMI: `legacy-bios`, `uefi` or `uefi-preferred`.
	// Empty leaves EC2's default for the architecture.
	BootMode string `mapstructure:"boot_mode" required:"false"`
	// Enable NitroTPM for the AMI. The only valid value is `v2.0`; it needs
	// `boot_mode = "uefi"`.
	TPMSupport string `mapstructure:"tpm_support" required:"false"`
	// Enable enhanced networking with the Intel 82599 Virtual Function
	// interface (SR-IOV, `sriovNetSupport = simple`) for the AMI.
	SriovNetSupport bool `mapstructure:"sriov_support" required:"false"`
	// The ID of the kernel image (AKI) of a `paravirtual` AMI, for example
	// `aki-0123456789abcdef0`.
	KernelID string `mapstructure:"kernel_id" required:"false"`
	// The ID of the RAM disk image (ARI) of a `paravirtual` AMI, for
	// example `ari-0123456789abcdef0`.
	RamdiskID string `mapstructure:"ramdisk_id" required:"false"`
	// Product codes to associate with the AMI, recorded in the bundle
	// manifest that the AMI is registered from.
	ProductCodes []string `mapstructure:"ami_product_codes" required:"false"`

	// Options of HashiCorp's `amazon-instance` that cannot apply here,
	// because this builder makes and uploads the bundle itself, on the
	// machine running Packer, instead of running Amazon's EC2 AMI tools on
	// the instance. Setting one is an error that says why and what to use
	// instead, so that a template moved over is fixed in one pass.

	// Not used: the bundle is made by this builder, not by
	// `ec2-bundle-vol` on the instance. Use `bundle_source`,
	// `bundle_exclude` and `bundle_command_prefix`.
	BundleVolCommand string `mapstructure:"bundle_vol_command" required:"false"`
	// Not used: the bundle is uploaded by this builder from the machine
	// running Packer, not by `ec2-upload-bundle` on the instance. Use
	// `s3_upload_concurrency`.
	BundleUploadCommand string `mapstructure:"bundle_upload_command" required:"false"`
	// Not used: no bundle is written on the instance; the image streams to
	// the machine running Packer. `bundle_scratch_dir` is where `copy`
	// stages the file system image on the instance.
	BundleDestination string `mapstructure:"bundle_destination" required:"false"`
	// Not used: the X.509 certificate and key never leave the machine
	// running Packer, so nothing is uploaded to the instance.
	X509UploadPath string `mapstructure:"x509_upload_path" required:"false"`

	ctx interpolate.Context
	// userCertPEM and userKey are the loaded X.509 files, when given.
	userCertPEM []byte
	userKey     *rsa.PrivateKey
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

// Values of bundle_source and defaults.
const (
	BundleSourceCopy        = "copy"
	defaultScratchDir       = "/mnt"
	defaultBundleName       = "image"
	defaultRootDeviceName   = "/dev/sda1"
	maxBundleSizeMB         = bundle.MaxImageSize >> 20
	maxUploadConcurrency    = 32
	generatedKeyFile        = "x509-key.pem"
	generatedCertFile       = "x509-cert.pem"
	defaultUploadConcurrent = 4
)

// InstanceStoreFamilies are the instance families that can boot an
// instance-store root device.
var InstanceStoreFamilies = []string{"c1", "c3", "d2", "i2", "m1", "m2", "m3", "r3", "x1"}

var (
	accountIDRE   = regexp.MustCompile(`^[0-9]{12}$`)
	bucketRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	bundleNameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	kernelIDRE    = regexp.MustCompile(`^aki-[0-9a-f]{8,17}$`)
	ramdiskIDRE   = regexp.MustCompile(`^ari-[0-9a-f]{8,17}$`)
	productCodeRE = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
	rootDeviceRE  = regexp.MustCompile(`^/dev/[a-z][a-z0-9]{1,15}$`)
	prefixBadRE   = regexp.MustCompile(`[^A-Za-z0-9._-]`)
)

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
	errs = packersdk.MultiErrorAppend(errs, c.Polling.Prepare()...)
	errs = packersdk.MultiErrorAppend(errs, c.prepareLocalEmulator()...)
	errs = packersdk.MultiErrorAppend(errs, c.prepareInstance()...)
	if len(errs.Errors) > 0 {
		return nil, errs
	}

	packersdk.LogSecretFilter.Set(c.AccessKey, c.SecretKey.Reveal(), c.Token.Reveal(), c.AssumeRole.ExternalID.Reveal())
	return c.warnings(), nil
}

// prepareInstance fills defaults and validates the options of this builder.
// The problems are reported in the order of the options' concerns: what an
// instance-store build cannot do, how the build reaches the instance, where
// the bundle goes, the X.509 material, what is bundled and how, and the
// machine settings of the AMI.
func (c *Config) prepareInstance() []error {
	return slices.Concat(
		c.checkSharedOptions(),
		c.checkCommunicator(),
		c.prepareAccountID(),
		c.prepareBundleLocation(),
		c.checkAmazonInstanceOptions(),
		c.prepareCerts(),
		c.prepareBundleSource(),
		c.prepareBundleTransfer(),
		c.prepareBootSettings(),
		c.checkManifestReferences(),
		c.checkAMIStorage(),
	)
}

// checkSharedOptions refuses the shared run and AMI options that an
// instance-store build cannot honour: those about EBS snapshots, stopping
// the build instance and leaving out the build region.
func (c *Config) checkSharedOptions() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	const noSnapshots = "an instance-store AMI has no EBS snapshots"
	if c.AMIEncryptBootVolume.True() {
		add("encrypt_boot: %s to encrypt; its root volume is the bundle in S3 (use the ami-ebs builder for an encrypted AMI)", noSnapshots)
	}
	if c.AMIKmsKeyId != "" || len(c.AMIRegionKMSKeyIDs) > 0 {
		add("kms_key_id, region_kms_key_ids: %s to encrypt (use the ami-ebs builder for an encrypted AMI)", noSnapshots)
	}
	if len(c.SnapshotUsers) > 0 || len(c.SnapshotGroups) > 0 {
		add("snapshot_users, snapshot_groups: %s to share; ami_users is enough to launch it", noSnapshots)
	}
	if c.DisableStopInstance {
		add("disable_stop_instance: ami-instance never stops the build instance: the image is streamed from it while it runs, so it must not shut itself down")
	}
	if c.AMISkipBuildRegion {
		add("skip_save_build_region: not supported by ami-instance: the AMI is registered from the bundle in s3_bucket, in the build region, which the build keeps; copy it with ami_regions and remove it later, or use the ami-distribute post-processor")
	}
	return errs
}

// checkCommunicator checks that the build can run the bundle script and
// read the image from its output: over SSH without a terminal, on a source
// that is not Windows, which cannot be bundled.
func (c *Config) checkCommunicator() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Comm.Type == "winrm" {
		add("communicator: %q is not supported; Windows instance-store AMIs cannot be created, use the ami-ebs builder", c.Comm.Type)
	}
	for k, v := range c.SourceAMIFilter.Filters {
		if k == "platform" && strings.EqualFold(v, "windows") {
			add("source_ami_filter.filters: platform = %q selects Windows images; Windows instance-store AMIs cannot be created, use the ami-ebs builder", v)
		}
	}
	if c.Comm.SSHPty {
		add("ssh_pty: not supported; the image is streamed over the bundle command's output, which a terminal would alter")
	}
	if c.Comm.Type == "none" {
		add("communicator: \"none\" is not supported; the builder runs the bundle script on the build instance over SSH")
	}
	return errs
}

// prepareAccountID removes the dashes from account_id, which the manifest
// records, and checks that what is left is an account ID.
func (c *Config) prepareAccountID() []error {
	if c.AccountID == "" {
		return nil
	}
	c.AccountID = strings.ReplaceAll(c.AccountID, "-", "")
	if !amiconfig.Matches(accountIDRE, c.AccountID) {
		return []error{fmt.Errorf("account_id: %q is not an AWS account ID; expected 12 digits, for example \"123456789012\"", c.AccountID)}
	}
	return nil
}

// prepareBundleLocation fills in and checks where the bundle goes: the
// bucket, the key prefix (by default one of its own for every build) and
// the bundle's name, given as bundle_name or HashiCorp's bundle_prefix.
func (c *Config) prepareBundleLocation() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.S3Bucket == "":
		add("s3_bucket: required: the S3 bucket the bundle is uploaded to, in the build region")
	case !amiconfig.Matches(bucketRE, c.S3Bucket) || strings.Contains(c.S3Bucket, ".."):
		add("s3_bucket: %q is not a bucket name; valid are 3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit", c.S3Bucket)
	}
	c.S3Prefix = strings.Trim(c.S3Prefix, "/")
	if c.S3Prefix == "" {
		c.S3Prefix = DefaultPrefix(c.AMIName, time.Now())
	}
	if vars := amiconfig.BuildVariablesIn(c.S3Prefix); len(vars) > 0 {
		add("s3_prefix: build variables such as {{ .%s }} are not available in s3_prefix, which is needed before the source AMI is found; use them in tags or ami_description", vars[0])
	} else if err := checkPrefix(c.S3Prefix); err != nil {
		add("s3_prefix: %v", err)
	}
	nameField := "bundle_name"
	if c.BundleName != "" && c.BundlePrefix != "" {
		add("bundle_name, bundle_prefix: bundle_prefix is HashiCorp's name for bundle_name; set one of them, not both")
	}
	if c.BundleName == "" && c.BundlePrefix != "" {
		c.BundleName, nameField = c.BundlePrefix, "bundle_prefix"
	}
	c.BundleName = cmp.Or(c.BundleName, defaultBundleName)
	if !amiconfig.Matches(bundleNameRE, c.BundleName) || c.BundleName == "." || c.BundleName == ".." {
		add("%s: %q is invalid; use 1 to 128 letters, digits, '.', '_' and '-'", nameField, c.BundleName)
	}
	return errs
}

// checkAmazonInstanceOptions refuses the options of HashiCorp's
// amazon-instance that cannot apply to a bundle made and uploaded on the
// machine running Packer, and says what to use instead.
func (c *Config) checkAmazonInstanceOptions() []error {
	var errs []error
	for _, o := range []struct{ field, value, why string }{
		{"bundle_vol_command", c.BundleVolCommand, "the bundle is made by this builder, not by ec2-bundle-vol on the instance; remove it, and use bundle_source, bundle_exclude or bundle_command_prefix to change what is bundled and how"},
		{"bundle_upload_command", c.BundleUploadCommand, "the bundle is uploaded by this builder from the machine running Packer, not by ec2-upload-bundle on the instance; remove it (s3_upload_concurrency tunes the upload)"},
		{"bundle_destination", c.BundleDestination, "no bundle is written on the instance, the image streams to the machine running Packer; remove it (bundle_scratch_dir is where copy stages the image on the instance)"},
		{"x509_upload_path", c.X509UploadPath, "the X.509 certificate and key never leave the machine running Packer; remove it"},
	} {
		if o.value != "" {
			errs = append(errs, fmt.Errorf("%s: not used by ami-instance: %s", o.field, o.why))
		}
	}
	return errs
}

// prepareBundleSource fills in and checks what the bundle script images:
// the source, and for copy the scratch directory, the image size and what
// is left out of the image or kept in it.
func (c *Config) prepareBundleSource() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c.BundleSource = cmp.Or(c.BundleSource, BundleSourceCopy)
	copying := c.BundleSource == BundleSourceCopy
	if !copying {
		if err := checkRemotePath(c.BundleSource); err != nil {
			add("bundle_source: %v; valid are \"copy\" or an absolute path on the build instance such as \"/dev/xvdb\" or \"/mnt/root.img\"", err)
		}
	}
	c.BundleScratchDir = cmp.Or(c.BundleScratchDir, defaultScratchDir)
	if err := checkRemotePath(c.BundleScratchDir); err != nil {
		add("bundle_scratch_dir: %v", err)
	} else if path.Clean(c.BundleScratchDir) == "/" {
		add("bundle_scratch_dir: \"/\" is the root itself; use a directory such as \"/mnt\"")
	}
	c.BundleScratchDir = path.Clean(c.BundleScratchDir)
	if c.BundleSizeMB < 0 || c.BundleSizeMB > maxBundleSizeMB {
		add("bundle_size_mb: %d is out of range; valid is 1 to %d (the bundle format's limit of 10 GiB), or 0 to size the image from the used space", c.BundleSizeMB, maxBundleSizeMB)
	}
	if !copying && c.BundleSizeMB != 0 {
		add("bundle_size_mb: only valid with bundle_source = \"copy\"; a device or image file is bundled at its own size")
	}
	if !copying && len(c.BundleExclude) > 0 {
		add("bundle_exclude: only valid with bundle_source = \"copy\"")
	}
	for i, p := range c.BundleExclude {
		if err := checkExclude(p); err != nil {
			add("bundle_exclude[%d]: %v", i, err)
		}
	}
	for i, k := range c.BundleKeep {
		if !slices.Contains(hygieneRules, k) {
			add("bundle_keep[%d]: %q is not a rule; valid are %s", i, k, strings.Join(hygieneRules, ", "))
		}
	}
	if !copying && len(c.BundleKeep) > 0 {
		add("bundle_keep: only valid with bundle_source = \"copy\"; a device or image file is bundled as it is")
	}
	return errs
}

// prepareBundleTransfer fills in and checks how the bundle script is run
// on the instance and how many parts are uploaded to S3 at once.
func (c *Config) prepareBundleTransfer() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.BundleCommandPrefix == "" && c.Comm.SSHUsername != "root" {
		c.BundleCommandPrefix = "sudo -n"
	}
	if strings.ContainsAny(c.BundleCommandPrefix, "\n\r\x00") {
		add("bundle_command_prefix: must be a single line")
	}
	switch {
	case c.S3UploadConcurrency == 0:
		c.S3UploadConcurrency = defaultUploadConcurrent
	case c.S3UploadConcurrency < 0 || c.S3UploadConcurrency > maxUploadConcurrency:
		add("s3_upload_concurrency: %d is out of range; valid is 1 to %d", c.S3UploadConcurrency, maxUploadConcurrency)
	}
	return errs
}

// prepareBootSettings fills in and checks how the AMI boots: architecture,
// virtualization type, root device, boot mode and NitroTPM, including the
// combinations EC2 cannot run.
func (c *Config) prepareBootSettings() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c.Architecture = cmp.Or(c.Architecture, bundle.ArchX86_64)
	switch c.Architecture {
	case bundle.ArchI386, bundle.ArchX86_64, bundle.ArchARM64:
	default:
		add("architecture: %q is unknown; valid are \"i386\", \"x86_64\" and \"arm64\"", c.Architecture)
	}
	c.VirtualizationType = cmp.Or(c.VirtualizationType, "hvm")
	switch c.VirtualizationType {
	case "hvm":
	case "paravirtual":
		if c.Architecture == bundle.ArchARM64 {
			add("ami_virtualization_type: \"paravirtual\" is not available for arm64; use \"hvm\"")
		}
		if c.KernelID == "" {
			add("kernel_id: required with ami_virtualization_type = \"paravirtual\" (an aki- ID)")
		}
		if c.BootMode != "" {
			add("boot_mode: only valid with ami_virtualization_type = \"hvm\"")
		}
	default:
		add("ami_virtualization_type: %q is unknown; valid are \"hvm\" and \"paravirtual\"", c.VirtualizationType)
	}
	c.RootDeviceName = cmp.Or(c.RootDeviceName, defaultRootDeviceName)
	if !amiconfig.Matches(rootDeviceRE, c.RootDeviceName) {
		add("root_device_name: %q is not a device name; expected like \"/dev/sda1\" or \"/dev/xvda\"", c.RootDeviceName)
	}
	switch c.BootMode {
	case "", "legacy-bios", "uefi", "uefi-preferred":
	default:
		add("boot_mode: %q is unknown; valid are \"legacy-bios\", \"uefi\" and \"uefi-preferred\"", c.BootMode)
	}
	if c.BootMode == "legacy-bios" && c.Architecture == bundle.ArchARM64 {
		add("boot_mode: arm64 AMIs boot with \"uefi\", not \"legacy-bios\"")
	}
	switch c.TPMSupport {
	case "":
	case "v2.0":
		if c.BootMode != "uefi" {
			add("tpm_support: \"v2.0\" needs boot_mode = \"uefi\"")
		}
	default:
		add("tpm_support: %q is invalid; the only valid value is \"v2.0\"", c.TPMSupport)
	}
	return errs
}

// checkManifestReferences checks the IDs the manifest refers to: the
// kernel and RAM disk images and the product codes.
func (c *Config) checkManifestReferences() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.KernelID != "" && !amiconfig.Matches(kernelIDRE, c.KernelID) {
		add("kernel_id: %q is not a kernel image ID; expected \"aki-\" and 8 or 17 hex digits", c.KernelID)
	}
	if c.RamdiskID != "" && !amiconfig.Matches(ramdiskIDRE, c.RamdiskID) {
		add("ramdisk_id: %q is not a RAM disk image ID; expected \"ari-\" and 8 or 17 hex digits", c.RamdiskID)
	}
	for i, pc := range c.ProductCodes {
		if !amiconfig.Matches(productCodeRE, pc) {
			add("ami_product_codes[%d]: %q is not a product code; expected 1 to 64 letters and digits", i, pc)
		}
	}
	return errs
}

// checkAMIStorage refuses the AMI storage options that an instance-store
// AMI cannot have: tags and deletion of snapshots, and a mapping of the
// root device, which is the bundle itself.
func (c *Config) checkAMIStorage() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.SnapshotTags) > 0 {
		add("snapshot_tags: an instance-store AMI has no snapshots; use tags")
	}
	if c.AMIForceDeleteSnapshot {
		add("force_delete_snapshot: an instance-store AMI has no snapshots; remove the option")
	}
	for i, m := range c.AMIMappings {
		if m.DeviceName == c.RootDeviceName && m.VirtualName == "" && !m.NoDevice {
			add("ami_block_device_mappings[%d].device_name: %q is the root device, which is the bundle itself; only other devices can be mapped", i, m.DeviceName)
		}
	}
	return errs
}

// prepareCerts validates the X.509 options and loads the user's files, so
// that a wrong path or a key that does not fit fails before the build.
func (c *Config) prepareCerts() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case (c.X509CertPath == "") != (c.X509KeyPath == ""):
		add("x509_cert_path, x509_key_path: set both (your certificate and its private key) or neither (a key and certificate are generated for the build)")
	case c.X509CertPath != "":
		if c.X509GeneratedDir != "" {
			add("x509_generated_dir: only used when the key and certificate are generated; not valid together with x509_cert_path and x509_key_path")
		}
		errs = append(errs, c.loadUserCert()...)
	case c.X509GeneratedDir != "":
		for _, f := range []string{generatedKeyFile, generatedCertFile} {
			p := filepath.Join(c.X509GeneratedDir, f)
			if _, err := os.Stat(p); err == nil {
				add("x509_generated_dir: %s already exists; use a fresh directory per build, for example \"keys/{{timestamp}}\"", p)
			}
		}
		if st, err := os.Stat(c.X509GeneratedDir); err == nil && !st.IsDir() {
			add("x509_generated_dir: %q is a file, not a directory", c.X509GeneratedDir)
		}
	}
	if c.EC2CertPath != "" {
		if _, err := bundle.LoadCertificate(c.EC2CertPath); err != nil {
			add("ec2_cert_path: %v", err)
		}
	}
	return errs
}

// loadUserCert reads x509_cert_path and x509_key_path and checks that the
// key belongs to the certificate.
func (c *Config) loadUserCert() []error {
	var errs []error
	certPEM, err := os.ReadFile(c.X509CertPath)
	if err != nil {
		errs = append(errs, fmt.Errorf("x509_cert_path: %w", err))
	}
	keyPEM, kerr := os.ReadFile(c.X509KeyPath)
	if kerr != nil {
		errs = append(errs, fmt.Errorf("x509_key_path: %w", kerr))
	}
	if err != nil || kerr != nil {
		return errs
	}
	cert, err := bundle.ParseCertificatePEM(certPEM)
	if err != nil {
		errs = append(errs, fmt.Errorf("x509_cert_path: %s: %w", c.X509CertPath, err))
	}
	key, kerr := bundle.ParsePrivateKeyPEM(keyPEM)
	if kerr != nil {
		// The error of a key parser never quotes the key.
		errs = append(errs, fmt.Errorf("x509_key_path: %s: %w", c.X509KeyPath, kerr))
	}
	if err != nil || kerr != nil {
		return errs
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return []error{fmt.Errorf("x509_key_path: the key in %s does not belong to the certificate in %s", c.X509KeyPath, c.X509CertPath)}
	}
	c.userCertPEM, c.userKey = certPEM, key
	return nil
}

// warnings returns the warnings of a valid configuration.
func (c *Config) warnings() []string {
	w := append([]string(nil), c.RunConfig.Warnings()...)
	for _, ft := range []struct {
		field string
		types []string
	}{{"instance_type", []string{c.InstanceType}}, {"spot_instance_types", c.SpotInstanceTypes}} {
		field := ft.field
		for _, it := range ft.types {
			if family, _, ok := strings.Cut(strings.ToLower(it), "."); ok && !instanceStoreFamily(family) {
				w = append(w, fmt.Sprintf("%s: %q is not of a family that can boot an instance-store root device (%s); an instance-store source AMI will not launch on it, and neither will the new AMI",
					field, it, strings.ToUpper(strings.Join(InstanceStoreFamilies, ", "))))
			}
		}
	}
	if c.X509CertPath == "" && c.X509GeneratedDir == "" {
		w = append(w, "x509_cert_path is not set: a key and certificate are generated for this build and discarded afterwards, so the bundle cannot be unbundled later (EC2 can still launch the AMI); set x509_generated_dir to keep them")
	}
	if c.EC2CertPath == "" && !c.LocalEmulator {
		w = append(w, "ec2_cert_path is not set: Amazon's EC2 certificate ("+ec2CertFile(c.RawRegion)+") will be read from Amazon's EC2 AMI tools on the build instance once it is provisioned; install them with a provisioner, or set ec2_cert_path")
	}
	if c.EC2CertPath == "" && c.LocalEmulator {
		w = append(w, "ec2_cert_path is not set: local_emulator is set, so a stand-in EC2 certificate is generated; real EC2 could not launch the resulting AMI")
	}
	if f := c.SourceAMIFilter; !f.Empty() && len(f.Owners) == 0 {
		w = append(w, "source_ami_filter has no owners: an image published by anybody could match; set owners, for example [\"self\"] or an account ID")
	}
	if f := c.SourceAMIFilter; !f.Empty() && !f.MostRecent {
		w = append(w, "source_ami_filter without most_recent = true fails when more than one image matches")
	}
	w = append(w, c.SpotWarnings()...)
	return w
}

// instanceStoreFamily reports whether instance family f can boot an
// instance-store root device.
func instanceStoreFamily(f string) bool {
	i := sort.SearchStrings(InstanceStoreFamilies, f)
	return i < len(InstanceStoreFamilies) && InstanceStoreFamilies[i] == f
}

// prepareLocalEmulator checks that local_emulator, when set, goes with a
// loopback EC2 endpoint.
func (c *Config) prepareLocalEmulator() []error {
	if !c.LocalEmulator {
		return nil
	}
	ep := c.ec2Endpoint()
	switch {
	case ep == "":
		return []error{errors.New("local_emulator: needs the EC2 endpoint of the emulator on a loopback address, for example custom_endpoint_ec2 = \"http://127.0.0.1:5000\" (or AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL); none is set")}
	case !awscfg.LoopbackEndpoint(ep):
		return []error{fmt.Errorf("local_emulator: the EC2 endpoint %q is not a loopback address; local_emulator is only for a local AWS emulator on 127.0.0.1, [::1] or localhost, never for AWS or its VPC and FIPS endpoints", ep)}
	}
	return nil
}

// ec2Endpoint returns the custom EC2 endpoint the build will use, "" for
// AWS's: custom_endpoint_ec2, else what the AWS SDK resolves without any
// network call (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL, endpoint_url in
// the shared config profile).
func (c *Config) ec2Endpoint() string {
	if c.CustomEndpointEC2 != "" {
		return c.CustomEndpointEC2
	}
	if sess, err := awscfg.New(context.Background(), c.AccessConfig.AWSConfig()); err == nil {
		return sess.Endpoints().EC2
	}
	for _, k := range []string{"AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// DefaultPrefix returns the default s3_prefix for an AMI name: the name
// with characters other than letters, digits, '.', '_' and '-' replaced by
// '-', then '-' and the Unix time t.
func DefaultPrefix(amiName string, t time.Time) string {
	p := strings.Trim(prefixBadRE.ReplaceAllString(amiName, "-"), "-.")
	if p == "" {
		p = "bundle"
	}
	if len(p) > 200 {
		p = p[:200]
	}
	return fmt.Sprintf("%s-%d", p, t.Unix())
}

// checkPrefix validates an S3 key prefix (leading and trailing slashes
// already removed).
func checkPrefix(p string) error {
	if len(p) > 900 {
		return fmt.Errorf("%d characters; at most 900 leave room for the object names", len(p))
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%q has an empty, \".\" or \"..\" path segment", p)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%q contains a control character or a backslash", p)
		}
	}
	return nil
}

// checkExclude checks a bundle_exclude entry: an absolute path, or a
// pattern starting with "/" or "*" (see isExcludePattern).
func checkExclude(p string) error {
	if strings.HasPrefix(p, "*") && isExcludePattern(p) {
		if strings.ContainsAny(p, "\x00\n\r") {
			return fmt.Errorf("%q contains a control character", p)
		}
		if strings.Trim(p, "*/") == "" {
			return fmt.Errorf("%q would leave out everything", p)
		}
		return nil
	}
	if err := checkRemotePath(p); err != nil {
		return fmt.Errorf("%w; valid is an absolute path such as \"/var/cache/app\" or a pattern such as \"/home/*/.cache\" or \"*/.cache\"", err)
	}
	if isExcludePattern(p) {
		if strings.Trim(p, "*/") == "" {
			return fmt.Errorf("%q would leave out everything", p)
		}
		return nil
	}
	if path.Clean(p) == "/" {
		return errors.New("\"/\" would leave out everything")
	}
	return nil
}

// checkRemotePath validates an absolute path on the build instance.
func checkRemotePath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not an absolute path", p)
	case strings.ContainsAny(p, "\x00\n\r"):
		return fmt.Errorf("%q contains a control character", p)
	}
	return nil
}
