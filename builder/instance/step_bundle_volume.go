package instance

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// stepBundleVolume takes the image on the build instance with the bundle
// script (see bundleScript), streams it to the machine running Packer and
// bundles it there, uploading each part to S3 as it is made and the
// manifest last. The instance only ever runs `<prefix> sh -s` with the
// script on its standard input: no credential, key or other secret goes to
// it. When the run is cancelled or halted, Cleanup deletes every object
// the step uploaded.
//
// State used: amibuild.StateSession, amibuild.StateUI,
// amibuild.StateAccountID (optional), amibuild.StateSourceImage (optional,
// for the manifest's ancestry), stateComm, stateCerts, stateBucketRegion,
// stateReplaceBundle (optional: without it the manifest is stored only
// where none is).
// State produced: stateBundle.
type stepBundleVolume struct {
	// Region is the build region.
	Region string
	// Bucket, Prefix and Name say where the bundle goes.
	Bucket, Prefix, Name string
	// AccountID is account_id; "" looks it up.
	AccountID string
	// Script and CommandPrefix are what runs on the instance.
	Script        scriptOptions
	CommandPrefix string
	// Architecture, KernelID, RamdiskID, ProductCodes and
	// BlockDeviceMappings go into the manifest.
	Architecture        string
	KernelID, RamdiskID string
	ProductCodes        []string
	BlockDeviceMappings []bundle.BlockDeviceMapping
	// Concurrency is s3_upload_concurrency.
	Concurrency int
	// Comm is the communicator configuration: copy mode removes the
	// build's SSH public key from the image.
	Comm *communicator.Config

	created ledger.Ledger
}

// Run implements multistep.Step.
func (s *stepBundleVolume) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := amibuild.UI(state)
	sess, err := amibuild.Session(state)
	if err != nil {
		return amibuild.Halt(state, u, err)
	}
	comm, ok := stateComm.Get(state)
	if !ok || comm == nil {
		return amibuild.Halt(state, u, errors.New("internal error: no communicator in the build state"))
	}
	cs, ok := stateCerts.Get(state)
	if !ok || cs == nil {
		return amibuild.Halt(state, u, errors.New("internal error: no certificates in the build state"))
	}
	account, err := s.accountID(ctx, state, sess)
	if err != nil {
		return amibuild.Halt(state, u, err)
	}
	w, err := s.newWriter(ctx, state, sess)
	if err != nil {
		return amibuild.Halt(state, u, err)
	}
	script, stop, err := s.scripts()
	if err != nil {
		return amibuild.Halt(state, u, err)
	}
	loc := bundlestore.Location{Bucket: s.Bucket, Prefix: s.Prefix, Name: s.Name}
	u.Sayf("Bundling the image (%s) from the instance into s3://%s/%s/...", s.describeSource(), s.Bucket, s.Prefix)
	out, err := streamBundle(ctx, &streamInput{
		Comm:       comm,
		Command:    bundleCommand(s.CommandPrefix),
		Script:     script,
		StopScript: stop,
		Bundle:     s.bundleInput(account, cs, sourceAncestry(state)),
		Sink:       &s3Sink{Writer: w},
		Options: bundle.Options{
			Concurrency: s.Concurrency,
			Progress:    progressSayer(u),
		},
		UI: u,
	})
	if err != nil {
		return amibuild.Halt(state, u, fmt.Errorf("bundle the image into %s: %w", loc, err))
	}
	m := out.Bundle.Manifest
	u.Sayf("Uploaded the bundle: an image of %d bytes in %d part(s) of %d bytes in all, %d bytes transferred from the instance; manifest %s",
		out.ImageSize, len(m.Parts), m.BundledSize, out.Transferred, loc)
	stateBundle.Put(state, &bundled{Location: loc, Manifest: m})
	return multistep.ActionContinue
}

// accountID returns the account the manifest names: account_id, else the
// account the build already knows, else that of the credentials.
func (s *stepBundleVolume) accountID(ctx context.Context, state multistep.StateBag, sess *awscfg.Session) (string, error) {
	account := s.AccountID
	if account == "" {
		account, _ = amibuild.StateAccountID.Get(state)
	}
	if account != "" {
		return account, nil
	}
	account, err := sess.AccountID(ctx)
	if err != nil {
		return "", fmt.Errorf("account_id: look up the account of the credentials (or set account_id): %w", err)
	}
	return account, nil
}

// newWriter returns the writer that uploads the bundle's objects to the
// bucket, in the bucket's region, recording each object it stores so that
// Cleanup can delete them.
func (s *stepBundleVolume) newWriter(ctx context.Context, state multistep.StateBag, sess *awscfg.Session) (*bundlestore.Writer, error) {
	region, _ := stateBucketRegion.Get(state)
	region = cmp.Or(region, s.Region)
	// Only the bundle of the AMI force_deregister replaces may be
	// replaced; any other manifest there, even one stored since
	// stepCheckBundleLocation looked, makes the upload fail.
	replace, _ := stateReplaceBundle.Get(state)
	w, err := bundlestore.NewWriter(ctx, sess.S3(region), &bundlestore.WriterInput{
		Bucket:          s.Bucket,
		Prefix:          s.Prefix,
		Region:          region,
		ReplaceManifest: replace,
	}, func(o *bundlestore.Options) {
		o.Concurrency = s.Concurrency
		o.Ledger = &s.created
		// Every bundle is encrypted with a fresh key and IV, so no object
		// already in the bucket can be one of its parts: looking for
		// intact copies to resume from would cost a request per part and
		// never find one.
		o.DisableResume = true
	})
	if err != nil {
		return nil, fmt.Errorf("upload the bundle to s3://%s/%s: %w", s.Bucket, s.Prefix, err)
	}
	return w, nil
}

// scripts returns the bundle script and, in copy mode, the script that
// stops it and cleans up on the instance after a failure. A copy names its
// files on the instance after a fresh run ID, and is told the build's SSH
// public key, which it removes from the image's authorized_keys files
// unless bundle_keep keeps it.
func (s *stepBundleVolume) scripts() (script, stop string, err error) {
	opts := s.Script
	if opts.Source == BundleSourceCopy {
		if opts.RunID, err = newRunID(); err != nil {
			return "", "", err
		}
		opts.BuildKey = buildPublicKey(s.Comm)
		stop = stopScript(opts)
	}
	return bundleScript(opts), stop, nil
}

// bundleInput describes the bundle to make of the image: its name, the
// manifest's contents, and the keys it is encrypted and signed with.
func (s *stepBundleVolume) bundleInput(account string, cs *certs, ancestry []string) bundle.BundleInput {
	return bundle.BundleInput{
		Name:                s.Name,
		Architecture:        s.Architecture,
		User:                account,
		UserCert:            cs.UserCert,
		UserKey:             cs.UserKey,
		EC2Cert:             cs.EC2Cert,
		KernelID:            s.KernelID,
		RamdiskID:           s.RamdiskID,
		ProductCodes:        s.ProductCodes,
		BlockDeviceMappings: s.BlockDeviceMappings,
		Ancestry:            ancestry,
	}
}

// sourceAncestry returns the manifest's ancestry: the source AMI, when
// known.
func sourceAncestry(state multistep.StateBag) []string {
	if src, ok := amibuild.StateSourceImage.Get(state); ok && src.ImageId != nil {
		return []string{*src.ImageId}
	}
	return nil
}

// newRunID returns a random name for the bundle script's files on the
// instance.
func newRunID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make a name for the bundle script's files: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// buildPublicKey returns the base64 body of the public key of the SSH
// private key the build logs in with (the temporary key pair's or
// ssh_private_key_file's), or "" when there is none or it cannot be read
// (a key with a passphrase, an agent).
func buildPublicKey(c *communicator.Config) string {
	if c == nil || c.Type != "ssh" {
		return ""
	}
	pem := c.SSHPrivateKey
	if len(pem) == 0 && c.SSHPrivateKeyFile != "" {
		b, err := os.ReadFile(c.SSHPrivateKeyFile)
		if err != nil {
			return ""
		}
		pem = b
	}
	if len(pem) == 0 {
		return ""
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(signer.PublicKey().Marshal())
}

// describeSource names what is bundled, for the UI.
func (s *stepBundleVolume) describeSource() string {
	if s.Script.Source == BundleSourceCopy {
		return "a copy of the root file system"
	}
	return s.Script.Source
}

// Cleanup deletes the uploaded objects when the run was cancelled or
// halted.
func (s *stepBundleVolume) Cleanup(state multistep.StateBag) {
	if s.created.Len() == 0 || !amibuild.RolledBack(state) {
		return
	}
	u := amibuild.UI(state)
	u.Sayf("Deleting the uploaded bundle objects from s3://%s/%s/...", s.Bucket, s.Prefix)
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	if err := s.created.Undo(ctx); err != nil {
		u.Error(fmt.Sprintf("Error deleting bundle objects; delete them by hand: %v", err))
	}
}

// s3Sink adapts a bundlestore.Writer to bundleSink.
type s3Sink struct {
	*bundlestore.Writer
	out *bundlestore.UploadOutput
}

// Finish stores the manifest after every part.
func (s *s3Sink) Finish(ctx context.Context, manifestName string, manifest []byte) error {
	out, err := s.Writer.Finish(ctx, manifestName, manifest)
	s.out = out
	return err
}

// progressSayer returns a bundle progress function that reports every
// quarter of the image on the UI.
func progressSayer(u packersdk.Ui) func(done, total int64) {
	next := int64(25)
	return func(done, total int64) {
		if total <= 0 {
			return
		}
		pct := done * 100 / total
		if pct < next {
			return
		}
		for next <= pct {
			next += 25
		}
		u.Sayf("Bundled %d%% of the image (%d of %d MiB)", pct, done>>20, total>>20)
	}
}

// manifestMappings returns the manifest's block device mappings: the image
// as "ami" and "root" on the root device, and the instance-store volumes
// of ami_block_device_mappings, in the original tools' form.
func manifestMappings(rootDevice string, ami []bundleVirtual) []bundle.BlockDeviceMapping {
	short := strings.TrimPrefix(rootDevice, "/dev/")
	out := []bundle.BlockDeviceMapping{
		{Virtual: "ami", Device: short},
		{Virtual: "root", Device: rootDevice},
	}
	for _, m := range ami {
		out = append(out, bundle.BlockDeviceMapping{Virtual: m.Virtual, Device: strings.TrimPrefix(m.Device, "/dev/")})
	}
	return out
}

// bundleVirtual is an instance-store volume of ami_block_device_mappings.
type bundleVirtual struct{ Virtual, Device string }
