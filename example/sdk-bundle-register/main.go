// Command sdk-bundle-register makes an instance-store AMI from an image
// file with this project's SDK alone (no Packer, no ec2-ami-tools): it
// bundles the image (sdk/bundle) while uploading the parts to S3
// (sdk/bundlestore's streaming Writer), then registers the AMI from the
// manifest (sdk/bundlestore.Register).
//
//	go run ./example/sdk-bundle-register -region eu-west-1 \
//	    -image root.img -name my-image-2024-06 -bucket my-bundles -prefix my-image \
//	    -ec2-cert cert-ec2.pem -keys-dir ./bundle-keys
//
// The bundle's key and IV are encrypted for your certificate and for EC2's.
// Without -cert and -key a key and self-signed certificate are generated
// and written (mode 0600) to -keys-dir; keep them to unbundle the image
// later. -ec2-cert is Amazon's EC2 certificate (cert-ec2.pem, shipped with
// Amazon's ec2-ami-tools in etc/ec2/amitools/; the China and GovCloud
// partitions have their own). It is required, also with -endpoint; only
// with -local-emulator, for tests against an emulator such as moto on a
// loopback -endpoint, a generated stand-in is used when it is missing.
//
// The bucket must be in -region and have ACLs enabled: the objects get the
// aws-exec-read canned ACL so that EC2 can read them. The credentials need
// the S3 and EC2 actions of example/iam/ami-instance-policy.json that touch
// the bucket and RegisterImage (and DeregisterImage, DescribeImages with
// -cleanup).
//
// -cleanup deregisters the AMI and deletes its bundle afterwards, which
// makes a dry run of the whole flow. If anything fails after the first
// upload, the objects uploaded and the AMI registered are removed.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sdk-bundle-register:", err)
		}
		os.Exit(2)
	}
}

// options are the command-line flags.
type options struct {
	image, name, description, bucket, prefix, bundleName string
	region, profile, endpoint, arch, account             string
	cert, key, ec2Cert, keysDir                          string
	cleanup, localEmulator                               bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sdk-bundle-register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.image, "image", "", "image file to bundle (required)")
	fs.StringVar(&o.name, "name", "", "AMI name (required)")
	fs.StringVar(&o.description, "description", "", "AMI description")
	fs.StringVar(&o.bucket, "bucket", "", "S3 bucket for the bundle, in -region, with ACLs enabled (required)")
	fs.StringVar(&o.prefix, "prefix", "bundles", "key prefix of the bundle's objects")
	fs.StringVar(&o.bundleName, "bundle-name", "image", "bundle name: prefix of the part and manifest file names")
	fs.StringVar(&o.region, "region", "", "AWS region (default: from the environment or profile)")
	fs.StringVar(&o.profile, "profile", "", "shared config profile")
	fs.StringVar(&o.endpoint, "endpoint", "", "endpoint URL for EC2, S3 and STS (an emulator such as moto)")
	fs.StringVar(&o.arch, "arch", bundle.ArchX86_64, "architecture: i386, x86_64 or arm64")
	fs.StringVar(&o.account, "account", "", "AWS account id written into the manifest (default: looked up with STS)")
	fs.StringVar(&o.cert, "cert", "", "your X.509 certificate (PEM); generated when empty")
	fs.StringVar(&o.key, "key", "", "the private key of -cert (PEM); generated when empty")
	fs.StringVar(&o.ec2Cert, "ec2-cert", "", "EC2's X.509 certificate (PEM); required unless -local-emulator is set")
	fs.BoolVar(&o.localEmulator, "local-emulator", false, "testing against a local AWS emulator on a loopback -endpoint only: use a stand-in EC2 certificate when -ec2-cert is empty (real EC2 cannot launch the AMI)")
	fs.StringVar(&o.keysDir, "keys-dir", "bundle-keys", "directory the generated key and certificates are written to (mode 0600)")
	fs.BoolVar(&o.cleanup, "cleanup", false, "deregister the AMI and delete its bundle afterwards")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.image == "" || o.name == "" || o.bucket == "":
		return nil, errors.New("-image, -name and -bucket are required")
	case (o.cert == "") != (o.key == ""):
		return nil, errors.New("-cert and -key go together: give both, or neither to generate them")
	case o.localEmulator && !awscfg.LoopbackEndpoint(o.endpoint):
		return nil, fmt.Errorf("-local-emulator needs -endpoint on a loopback address (127.0.0.1, [::1] or localhost), not %q", o.endpoint)
	case o.ec2Cert == "" && !o.localEmulator:
		return nil, errors.New("-ec2-cert is required: Amazon's EC2 certificate (cert-ec2.pem from ec2-ami-tools' etc/ec2/amitools/)")
	}
	switch o.arch {
	case bundle.ArchI386, bundle.ArchX86_64, bundle.ArchARM64:
	default:
		return nil, fmt.Errorf("-arch %q: want i386, x86_64 or arm64", o.arch)
	}
	return o, nil
}

// run makes the AMI the flags in args describe: it bundles the image while
// uploading the parts, registers the AMI from the manifest and, with
// -cleanup, removes both again. If a step after the first upload fails,
// what the run created is removed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	r, err := prepare(ctx, o, stdout)
	if err != nil {
		return err
	}
	f, err := os.Open(o.image)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}

	// Everything created from here on is undone if a later step fails.
	defer func() { err = r.undoAfter(err, stderr) }()
	out, up, err := r.upload(ctx, f, st.Size())
	if err != nil {
		return err
	}
	reg, err := r.register(ctx, out, up)
	if err != nil {
		return err
	}
	if !o.cleanup {
		return nil
	}
	return r.cleanUp(ctx, reg)
}

// registration is one run from the image to the AMI: the flags, the
// account and keys the bundle is made for, the clients of the region, and
// the ledger of what the run created.
type registration struct {
	o       *options
	region  string
	account string
	keys    *keyMaterial
	s3c     *s3.Client
	ec2c    *ec2.Client
	stdout  io.Writer
	created ledger.Ledger
}

// prepare connects to AWS as the flags say, finds the account (-account,
// or else the caller's), loads or generates the keys and checks the
// bucket, before anything is created.
func prepare(ctx context.Context, o *options, stdout io.Writer) (*registration, error) {
	cfg := awscfg.Config{Region: o.region, Profile: o.profile}
	if o.endpoint != "" {
		cfg.Endpoints = awscfg.Endpoints{EC2: o.endpoint, S3: o.endpoint, STS: o.endpoint}
	}
	sess, err := awscfg.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &registration{o: o, region: sess.Region(), account: o.account, stdout: stdout}
	if r.account == "" {
		if r.account, err = sess.AccountID(ctx); err != nil {
			return nil, fmt.Errorf("look up the account id (or set -account): %w", err)
		}
	}
	if r.keys, err = loadOrGenerateKeys(o, stdout); err != nil {
		return nil, err
	}
	r.s3c, r.ec2c = sess.S3(r.region), sess.EC2(r.region)
	if _, err := bundlestore.CheckBucket(ctx, r.s3c, &bundlestore.CheckBucketInput{Bucket: o.bucket, Region: r.region}); err != nil {
		return nil, err
	}
	return r, nil
}

// withLedger records what a bundlestore call creates in the run's ledger.
func (r *registration) withLedger(opt *bundlestore.Options) { opt.Ledger = &r.created }

// undoAfter removes what the run created when err is a failure, and
// returns err, joined with the removal's own failure if any.
func (r *registration) undoAfter(err error, stderr io.Writer) error {
	if err == nil {
		return nil
	}
	undo, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if uerr := r.created.Undo(undo); uerr != nil {
		return errors.Join(err, fmt.Errorf("clean up after the failure: %w", uerr))
	}
	fmt.Fprintln(stderr, "removed what this run had created")
	return err
}

// upload bundles the image f of size bytes while a bundlestore.Writer
// uploads each part as it is made, then uploads the manifest.
func (r *registration) upload(ctx context.Context, f *os.File, size int64) (*bundle.BundleOutput, *bundlestore.UploadOutput, error) {
	o := r.o
	w, err := bundlestore.NewWriter(ctx, r.s3c, &bundlestore.WriterInput{
		Bucket: o.bucket, Prefix: o.prefix, Region: r.region,
	}, r.withLedger)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(r.stdout, "bundling %s (%d bytes) into s3://%s/%s/\n", o.image, size, o.bucket, o.prefix)
	out, err := bundle.Bundle(ctx, &bundle.BundleInput{
		Image:        f,
		Size:         size,
		Name:         o.bundleName,
		Architecture: o.arch,
		User:         r.account,
		UserCert:     r.keys.userCert,
		UserKey:      r.keys.userKey,
		EC2Cert:      r.keys.ec2Cert,
		Sink:         w,
	})
	if err != nil {
		w.Abort()
		return nil, nil, fmt.Errorf("bundle %s: %w", o.image, err)
	}
	up, err := w.Finish(ctx, out.ManifestName, out.ManifestBytes)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(r.stdout, "uploaded %d object(s), manifest s3://%s/%s\n", len(up.Uploaded), o.bucket, up.ManifestKey)
	return out, up, nil
}

// register registers the AMI from the uploaded manifest.
func (r *registration) register(ctx context.Context, out *bundle.BundleOutput, up *bundlestore.UploadOutput) (*bundlestore.RegisterOutput, error) {
	reg, err := bundlestore.Register(ctx, r.ec2c, &bundlestore.RegisterInput{
		ImageLocation: up.ImageLocation,
		Region:        r.region,
		Name:          r.o.name,
		Description:   r.o.description,
		Manifest:      out.Manifest,
	}, r.withLedger)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(r.stdout, "registered %s in %s from %s\n", reg.ImageID, r.region, reg.ImageLocation)
	return reg, nil
}

// cleanUp deregisters the AMI and deletes its bundle (-cleanup).
func (r *registration) cleanUp(ctx context.Context, reg *bundlestore.RegisterOutput) error {
	del, err := bundlestore.Deregister(ctx, r.ec2c, r.s3c, &bundlestore.DeregisterInput{
		ImageID: reg.ImageID, Region: r.region, ImageLocation: reg.ImageLocation,
	})
	if err != nil {
		return err
	}
	n := 0
	if del.Bundle != nil {
		n = len(del.Bundle.Deleted)
	}
	fmt.Fprintf(r.stdout, "cleanup: deregistered %s and deleted %d object(s)\n", reg.ImageID, n)
	return nil
}

// keyMaterial holds the certificates and key used to bundle.
type keyMaterial struct {
	userCert *x509.Certificate
	userKey  *rsa.PrivateKey
	ec2Cert  *x509.Certificate
}

// loadOrGenerateKeys loads -cert/-key/-ec2-cert, generating what is
// missing into -keys-dir.
func loadOrGenerateKeys(o *options, stdout io.Writer) (*keyMaterial, error) {
	k := &keyMaterial{}
	var err error
	if o.cert != "" {
		if k.userCert, err = bundle.LoadCertificate(o.cert); err != nil {
			return nil, err
		}
		if k.userKey, err = bundle.LoadPrivateKey(o.key); err != nil {
			return nil, err
		}
	} else {
		keyPath, certPath := filepath.Join(o.keysDir, "x509-key.pem"), filepath.Join(o.keysDir, "x509-cert.pem")
		if k.userKey, k.userCert, err = generate("sdk-bundle-register user", keyPath, certPath); err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "generated an X.509 key and certificate: %s, %s (keep them to unbundle the image)\n", keyPath, certPath)
	}
	if o.ec2Cert != "" {
		if k.ec2Cert, err = bundle.LoadCertificate(o.ec2Cert); err != nil {
			return nil, err
		}
	} else {
		// Only with -local-emulator (checked in parseFlags): an emulator does not
		// decrypt bundles, so any certificate stands in for EC2's.
		certPath := filepath.Join(o.keysDir, "ec2-cert-stand-in.pem")
		if _, k.ec2Cert, err = generate("EC2 stand-in for an emulator", "", certPath); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// generate makes an RSA key and a self-signed certificate for it and
// writes them (mode 0600) to keyPath (unless empty) and certPath.
func generate(cn, keyPath, certPath string) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return nil, nil, err
	}
	if keyPath != "" {
		if err := writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
			return nil, nil, err
		}
	}
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// writePEM writes one PEM block to a new file of mode 0600; it refuses to
// overwrite an existing file.
func writePEM(path, typ string, der []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
