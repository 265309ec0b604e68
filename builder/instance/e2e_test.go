//go:build unix

package instance_test

// End-to-end tests: the real packer binary (./bin/packer) with this plugin
// installed, against moto behind the recording proxy, provisioning and
// bundling over SSH on an OpenSSH server on 127.0.0.1 that stands in for
// the build instance.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/instance"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

const (
	e2eRegion = "us-east-1"
	e2eBucket = "e2e-bundles"
	// sourceAMI is an instance-store image of the fixture.
	sourceAMI = "ami-0e2e1000000000001"
)

// amiFixture replaces moto's preloaded images (MOTO_AMIS_PATH) with one
// instance-store image, which also keeps moto fast.
const amiFixture = `[
  {"ami_id": "` + sourceAMI + `", "name": "instance-store-base-x86_64",
   "description": "instance-store source", "owner_id": "123456789012", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "instance-store", "root_device_name": "/dev/sda1",
   "creation_date": "2024-01-01T00:00:00.000Z"},
  {"ami_id": "ami-0e2e1000000000002", "name": "amzn-ami-minimal-pv-2.0.20180810-x86_64-gp2",
   "description": "like moto's preloaded instance-store image", "owner_id": "137112412989", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "instance-store", "root_device_name": "/dev/sda1",
   "creation_date": "2018-08-10T00:00:00.000Z"},
  {"ami_id": "` + forceOldAMI + `", "name": "` + forceName + `",
   "description": "an earlier build, bundle in the build's bucket", "owner_id": "123456789012", "public": false, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "instance-store", "root_device_name": "/dev/sda1",
   "image_location": "` + e2eBucket + `/force-old/image.manifest.xml",
   "creation_date": "2024-02-01T00:00:00.000Z"},
  {"ami_id": "` + forceOtherAMI + `", "name": "` + forceName + `",
   "description": "an earlier build, bundle in another bucket", "owner_id": "123456789012", "public": false, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "instance-store", "root_device_name": "/dev/sda1",
   "image_location": "` + otherBucket + `/force-old/image.manifest.xml",
   "creation_date": "2024-02-02T00:00:00.000Z"},
  {"ami_id": "` + reuseAMI + `", "name": "` + reuseName + `",
   "description": "an earlier build whose bundle is where the next build of the name uploads", "owner_id": "123456789012", "public": false, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "instance-store", "root_device_name": "/dev/sda1",
   "image_location": "` + e2eBucket + `/` + reusePrefix + `/image.manifest.xml",
   "creation_date": "2024-03-01T00:00:00.000Z"}
]`

// The -force test: two AMIs named forceName that earlier builds made, one
// with its bundle in the build's bucket and one in another bucket.
const (
	forceName     = "e2e-force"
	forceOldAMI   = "ami-0e2e1000000000003"
	forceOtherAMI = "ami-0e2e1000000000004"
	otherBucket   = "e2e-other-bundles"
)

// e2eEnv is one isolated world: moto, proxy, sshd, packer, and a bucket.
type e2eEnv struct {
	moto   *awstest.Moto
	proxy  *awstest.Proxy
	sshd   *awstest.SSHD
	packer *packertest.Packer
	ec2    *ec2.Client // straight to moto, so the proxy records only packer's calls
	s3     *s3.Client
	work   string // the "instance's" directory the provisioner writes to
	// toolsHome is EC2_AMITOOL_HOME in the instance's sessions, where a
	// provisioner may "install" Amazon's EC2 AMI tools; empty otherwise.
	toolsHome string
}

func newE2EEnv(t *testing.T) *e2eEnv {
	t.Helper()
	fixture := filepath.Join(t.TempDir(), "amis.json")
	if err := os.WriteFile(fixture, []byte(amiFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &e2eEnv{toolsHome: filepath.Join(t.TempDir(), "ec2-ami-tools")}
	e.moto = awstest.NewMoto(t, awstest.MotoOptions{Env: map[string]string{"MOTO_AMIS_PATH": fixture}})
	e.proxy = awstest.NewProxy(t, e.moto.Endpoint, awstest.ProxyOptions{})
	e.sshd = awstest.NewSSHD(t, awstest.SSHDSetEnv(map[string]string{"EC2_AMITOOL_HOME": e.toolsHome}))
	e.ec2, e.s3 = awstest.Clients(e.moto.Endpoint, e2eRegion)
	_, err := e.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{
		Bucket:          aws.String(e2eBucket),
		ObjectOwnership: s3types.ObjectOwnershipBucketOwnerPreferred,
	})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	e.packer = packertest.New(t, packertest.Options{
		Env: awstest.Env(e.proxy.URL, e2eRegion),
	})
	e.work = filepath.Join(t.TempDir(), "instance")
	if err := os.MkdirAll(e.work, 0o777); err != nil {
		t.Fatal(err)
	}
	e.proxy.Reset()
	return e
}

// tmpl describes a test template.
type tmpl struct {
	// NoLocalEmulator leaves local_emulator unset, as against AWS.
	NoLocalEmulator bool
	AMIName         string // ami_name; "" is "e2e-instance-{{timestamp}}"
	Prefix          string // s3_prefix
	Source          string // extra lines in the source block
	Provision       []string
}

func (e *e2eEnv) template(p tmpl) string {
	if p.AMIName == "" {
		p.AMIName = "e2e-instance-{{timestamp}}"
	}
	emulator := "\n  local_emulator = true"
	if p.NoLocalEmulator {
		emulator = ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, `source "ami-instance" "e2e" {
  region         = %q
  instance_type  = "m3.medium"%s
  source_ami    = %q

  ssh_host             = "127.0.0.1"
  ssh_port             = %d
  ssh_username         = %q
  ssh_private_key_file = %q
  ssh_timeout          = "1m"

  ami_name  = %q
  s3_bucket = %q
  s3_prefix = %q
%s
}

build {
  sources = ["source.ami-instance.e2e"]
`, e2eRegion, emulator, sourceAMI, e.sshd.Port, e.sshd.User, e.sshd.PrivateKeyPath, p.AMIName, e2eBucket, p.Prefix, p.Source)
	if len(p.Provision) > 0 {
		b.WriteString("\n  provisioner \"shell\" {\n    inline = [\n")
		for _, c := range p.Provision {
			fmt.Fprintf(&b, "      %q,\n", c)
		}
		b.WriteString("    ]\n  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// makeImage returns provisioner commands that make a small ext4 image
// holding a marker file, and the image's path.
func (e *e2eEnv) makeImage(marker string) ([]string, string) {
	tree := filepath.Join(e.work, "tree")
	img := filepath.Join(e.work, "root.img")
	return []string{
		"mkdir -p " + tree,
		"echo " + marker + " > " + tree + "/marker.txt",
		"truncate -s 8M " + img,
		"mkfs.ext4 -q -F -d " + tree + " " + img,
	}, img
}

func (e *e2eEnv) snapshot(t *testing.T) *awstest.Snapshot {
	t.Helper()
	s, err := awstest.TakeSnapshot(context.Background(), e.moto.Endpoint, []string{e2eRegion})
	if err != nil {
		t.Fatalf("baseline snapshot: %v", err)
	}
	return s
}

func (e *e2eEnv) leaks(t *testing.T, baseline *awstest.Snapshot) awstest.Leaks {
	t.Helper()
	l, err := awstest.ListLeaks(context.Background(), e.moto.Endpoint, []string{e2eRegion}, baseline)
	if err != nil {
		t.Fatalf("list leaks: %v", err)
	}
	return l
}

// pemBody returns a distinctive line from the middle of PEM data.
func pemBody(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 3 {
		return ""
	}
	return strings.TrimSpace(lines[len(lines)/2])
}

// loadGeneratedKeys reads the X.509 key (as PEM and parsed) and
// certificate that the build generated into keys (see x509_generated_dir).
func loadGeneratedKeys(t *testing.T, keys string) ([]byte, *rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	keyPEM, err := os.ReadFile(filepath.Join(keys, "x509-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := bundle.LoadCertificate(filepath.Join(keys, "x509-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return keyPEM, key, cert
}

// unbundleImage downloads the bundle "image" under prefix, unbundles its
// image into w with key and cert, and returns the download.
func unbundleImage(t *testing.T, e *e2eEnv, prefix string, key *rsa.PrivateKey, cert *x509.Certificate, w io.Writer) *bundlestore.DownloadOutput {
	t.Helper()
	dl := t.TempDir()
	down, err := bundlestore.Download(context.Background(), e.s3, &bundlestore.DownloadInput{
		Bucket: e2eBucket, Prefix: prefix, Name: "image", Dir: dl,
	})
	if err != nil {
		t.Fatalf("download the bundle: %v", err)
	}
	manifest, err := os.ReadFile(down.ManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Unbundle(context.Background(), &bundle.UnbundleInput{
		Manifest: manifest, Source: bundle.Dir(dl), UserKey: key, UserCert: cert,
	}, w); err != nil {
		t.Fatalf("unbundle: %v", err)
	}
	return down
}

// checkSecrets fails when any secret appears in the sshd command log, the
// packer output or packer's debug log.
func checkSecrets(t *testing.T, e *e2eEnv, res *packertest.Result, secrets map[string]string) {
	t.Helper()
	log, err := res.Log()
	if err != nil {
		t.Fatalf("read packer log: %v", err)
	}
	places := map[string]string{
		"sshd command log": strings.Join(e.sshd.CommandLog(), "\n"),
		"packer output":    res.Output(),
		"packer debug log": log,
	}
	for what, secret := range secrets {
		if secret == "" {
			t.Fatalf("empty secret %s", what)
		}
		for where, text := range places {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains the %s", where, what)
			}
		}
	}
}

func TestE2E(t *testing.T) {
	e := newE2EEnv(t)
	t.Run("build", func(t *testing.T) { testBuild(t, e) })
	t.Run("failure after upload leaves nothing", func(t *testing.T) { testRegisterFailure(t, e) })
	t.Run("interrupt after upload leaves nothing", func(t *testing.T) { testInterrupt(t, e) })
	t.Run("examples", func(t *testing.T) { testExamples(t, e) })
	t.Run("EC2 certificate from the AMI tools on the instance", func(t *testing.T) { testEC2CertFromInstance(t, e) })
	t.Run("invalid templates make no AWS call", func(t *testing.T) { testValidate(t, e) })
	// Last: it deregisters two of the fixture's images.
	t.Run("force replaces the AMI and deletes its bundle", func(t *testing.T) { testForce(t, e) })
}

func testForce(t *testing.T, e *e2eEnv) {
	ctx := context.Background()
	if _, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(otherBucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	// The old bundles (parts only: a bundle whose manifest is gone is
	// deleted by name) and an object of another bundle beside one of them.
	oldParts := []string{"force-old/image.part.0", "force-old/image.part.1"}
	keep := map[string][]string{e2eBucket: {"force-old/other.part.0"}, otherBucket: oldParts}
	put := func(bucket, key string) {
		t.Helper()
		if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("part")}); err != nil {
			t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
		}
	}
	for _, k := range oldParts {
		put(e2eBucket, k)
	}
	for b, keys := range keep {
		for _, k := range keys {
			put(b, k)
		}
	}
	e.proxy.Reset()
	provision, img := e.makeImage("forced")
	tpl := e.template(tmpl{AMIName: forceName, Prefix: "builds/force", Source: fmt.Sprintf("  bundle_source = %q", img), Provision: provision})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-force"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build -force exited %d", res.ExitCode)
	}
	for _, id := range []string{forceOldAMI, forceOtherAMI} {
		if n := len(slices.DeleteFunc(e.proxy.CallsFor("ec2", "DeregisterImage"), func(c awstest.Call) bool { return c.Params.Get("ImageId") != id })); n != 1 {
			t.Errorf("%d DeregisterImage calls for %s, want 1", n, id)
		}
	}
	exists := func(bucket, key string) bool {
		_, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		return err == nil
	}
	for _, k := range oldParts {
		if exists(e2eBucket, k) {
			t.Errorf("the old AMI's bundle object s3://%s/%s is still there", e2eBucket, k)
		}
	}
	for b, keys := range keep {
		for _, k := range keys {
			if !exists(b, k) {
				t.Errorf("s3://%s/%s, not the old AMI's bundle in s3_bucket, was deleted", b, k)
			}
		}
	}
	for _, w := range []string{"is in bucket " + otherBucket + ", not in s3_bucket " + e2eBucket, "Deleted the bundle s3://" + e2eBucket + "/force-old/image.manifest.xml"} {
		if !strings.Contains(res.Output(), w) {
			t.Errorf("output does not mention %q", w)
		}
	}
	if n := len(e.proxy.CallsFor("s3", "DeleteObjects")) + len(e.proxy.CallsFor("s3", "DeleteObject")); n == 0 {
		t.Error("no S3 delete call")
	}
	for _, c := range e.proxy.Calls() {
		if c.Bucket == otherBucket && c.Method != "GET" && c.Method != "HEAD" {
			t.Errorf("%s %s on %s, a bucket the build must not touch", c.Method, c.Key, otherBucket)
		}
	}
}

func testBuild(t *testing.T, e *e2eEnv) {
	baseline := e.snapshot(t)
	e.proxy.Reset()
	keys := filepath.Join(t.TempDir(), "keys")
	marker := "bundled-by-e2e"
	provision, img := e.makeImage(marker)
	const prefix = "builds/e2e"
	tpl := e.template(tmpl{
		Prefix: prefix,
		Source: fmt.Sprintf(`
  bundle_source      = %q
  x509_generated_dir = %q
  ami_description    = "from {{ .SourceAMI }}"
  ena_support        = true
  tags = {
    Name = "e2e-instance"
  }`, img, keys),
		Provision: provision,
	})

	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	t.Logf("packer build took %s", res.Duration)
	ids := packertest.ArtifactIDs(res.Stdout)["ami-instance.e2e"]
	if len(ids) != 1 {
		t.Fatalf("artifact ids = %q, want one", ids)
	}
	region, ami, _ := strings.Cut(ids[0], ":")
	if region != e2eRegion || !strings.HasPrefix(ami, "ami-") {
		t.Fatalf("artifact id %q, want %s:ami-…", ids[0], e2eRegion)
	}

	// Every object went up with the ACL EC2 needs, the manifest last.
	loc := bundlestore.Location{Bucket: e2eBucket, Prefix: prefix, Name: "image"}
	puts := e.proxy.CallsFor("s3", "PutObject")
	if len(puts) < 2 {
		t.Fatalf("PutObject calls = %d, want parts and a manifest", len(puts))
	}
	var putKeys []string
	for _, c := range puts {
		putKeys = append(putKeys, c.Key)
		if c.Bucket != e2eBucket || !strings.HasPrefix(c.Key, prefix+"/") {
			t.Errorf("PutObject to %s/%s, want under %s/%s/", c.Bucket, c.Key, e2eBucket, prefix)
		}
		if got := c.Header.Get("X-Amz-Acl"); got != "aws-exec-read" {
			t.Errorf("PutObject %s has x-amz-acl %q, want aws-exec-read", c.Key, got)
		}
		if c.Status != 200 {
			t.Errorf("PutObject %s answered %d", c.Key, c.Status)
		}
	}
	if last := putKeys[len(putKeys)-1]; last != loc.ManifestKey() {
		t.Errorf("last object uploaded %q, want the manifest %q", last, loc.ManifestKey())
	}

	// RegisterImage named the manifest (moto drops ImageLocation, so the
	// request is what counts).
	regs := e.proxy.CallsFor("ec2", "RegisterImage")
	if len(regs) != 1 {
		t.Fatalf("RegisterImage calls = %d, want 1", len(regs))
	}
	if got, want := regs[0].Params.Get("ImageLocation"), e2eBucket+"/"+prefix+"/image.manifest.xml"; got != want {
		t.Errorf("RegisterImage ImageLocation = %q, want %q", got, want)
	}
	if got := regs[0].Params.Get("EnaSupport"); got != "true" {
		t.Errorf("RegisterImage EnaSupport = %q, want true", got)
	}
	if got := regs[0].Params.Get("Region"); got != "" {
		t.Errorf("unexpected Region parameter %q", got)
	}
	if regs[0].Region != e2eRegion {
		t.Errorf("RegisterImage sent to %s, want the bucket's region %s", regs[0].Region, e2eRegion)
	}
	// The tags are given to RegisterImage (moto drops them; the proxy
	// applies them, as EC2 does), and nothing tags the AMI afterwards.
	p := regs[0].Params
	if p.Get("TagSpecification.1.ResourceType") != "image" || p.Get("TagSpecification.1.Tag.1.Key") != "Name" || p.Get("TagSpecification.1.Tag.1.Value") != "e2e-instance" {
		t.Errorf("RegisterImage tag specifications: %v, want image Name=e2e-instance", p)
	}
	if n := len(e.proxy.CallsFor("ec2", "CreateTags")); n != 0 {
		t.Errorf("%d CreateTags calls, want none", n)
	}
	// The build waited for the AMI to become available: a describe of it
	// after RegisterImage.
	waited := false
	for _, c := range e.proxy.Calls() {
		if c.Action == "DescribeImages" && c.Seq > regs[0].Seq && c.Params.Get("ImageId.1") == ami {
			waited = true
		}
	}
	if !waited {
		t.Errorf("no DescribeImages of %s after RegisterImage", ami)
	}
	if imgs, err := e.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{ami}}); err != nil || len(imgs.Images) != 1 {
		t.Errorf("DescribeImages %s: %v", ami, err)
	} else if got := tagValue(imgs.Images[0].Tags, "Name"); got != "e2e-instance" {
		t.Errorf("AMI %s tag Name = %q, want e2e-instance", ami, got)
	}
	// The instance is terminated once the bundle is in S3, while the AMI
	// registers, and only once.
	terms := e.proxy.CallsFor("ec2", "TerminateInstances")
	if len(terms) != 1 {
		t.Errorf("TerminateInstances calls = %d, want 1", len(terms))
	} else if terms[0].Seq > regs[0].Seq {
		t.Errorf("the instance was terminated after RegisterImage (call %d after %d), want before", terms[0].Seq, regs[0].Seq)
	}

	// The generated key was kept, private, and unbundles the image.
	keyPath := filepath.Join(keys, "x509-key.pem")
	for _, f := range []string{keyPath, filepath.Join(keys, "x509-cert.pem")} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("generated file: %v", err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	keyPEM, key, cert := loadGeneratedKeys(t, keys)
	var got bytes.Buffer
	down := unbundleImage(t, e, prefix, key, cert, &got)
	want, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("unbundled image (%d bytes) differs from the image on the instance (%d bytes)", got.Len(), len(want))
	}
	if !bytes.Contains(got.Bytes(), []byte(marker)) {
		t.Errorf("unbundled image lacks the marker file's contents")
	}
	if m := down.Manifest; m.User != awstest.TestAccountID || m.Architecture != "x86_64" {
		t.Errorf("manifest user %q architecture %q, want %s x86_64", m.User, m.Architecture, awstest.TestAccountID)
	}

	// The instance ran the bundle script through "sh -s" (root needs no
	// sudo) and saw no secret.
	if !slices.ContainsFunc(e.sshd.CommandLog(), func(c string) bool { return strings.TrimSpace(c) == "sh -s" }) {
		t.Errorf("sshd command log lacks the bundle command \"sh -s\": %q", e.sshd.CommandLog())
	}
	sshKey, err := os.ReadFile(e.sshd.PrivateKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	_, secret := awstest.TestCredentials()
	checkSecrets(t, e, res, map[string]string{
		"AWS secret key":          secret,
		"generated X.509 key":     pemBody(keyPEM),
		"SSH private key":         pemBody(sshKey),
		"X.509 key's RSA prime":   key.Primes[0].Text(16)[:32],
		"X.509 key (PKCS #1 DER)": fmt.Sprintf("%x", x509.MarshalPKCS1PrivateKey(key))[100:140],
	})

	// Only the AMI (with the snapshot moto invents for it) and the bundle
	// are left.
	l := e.leaks(t, baseline)
	if want := []string{e2eRegion + ":" + ami}; !slices.Equal(l.Images, want) {
		t.Errorf("images left = %q, want only %q", l.Images, want)
	}
	var wantObjects []string
	for _, k := range putKeys {
		wantObjects = append(wantObjects, e2eBucket+"/"+k)
	}
	sort.Strings(wantObjects)
	wantObjects = slices.Compact(wantObjects)
	if !slices.Equal(l.S3Objects, wantObjects) {
		t.Errorf("S3 objects left = %q, want the bundle %q", l.S3Objects, wantObjects)
	}
	out, err := e.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("describe %s: %v", ami, err)
	}
	img0 := out.Images[0]
	if got := aws.ToString(img0.Description); got != "from "+sourceAMI {
		t.Errorf("AMI description = %q", got)
	}
	var amiSnaps []string
	for _, m := range img0.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			amiSnaps = append(amiSnaps, e2eRegion+":"+*m.Ebs.SnapshotId)
		}
	}
	l.Snapshots = slices.DeleteFunc(l.Snapshots, func(s string) bool { return slices.Contains(amiSnaps, s) })
	l.Images, l.S3Objects = nil, nil
	if !l.Empty() {
		t.Errorf("build leaked resources:\n%s", l)
	}

	// Destroying the artifact deregisters the AMI and deletes the bundle,
	// so that the later subtests start clean.
	art := &instance.Artifact{
		Artifact: &amibuild.Artifact{Amis: map[string]string{e2eRegion: ami}, BuilderIdValue: instance.BuilderId},
		Bundle:   loc,
		EC2:      func(string) bundlestore.DeregisterAPI { return e.ec2 },
		S3:       func(string) bundlestore.DeleteAPI { return e.s3 },
	}
	if err := art.Destroy(); err != nil {
		t.Fatalf("destroy the artifact: %v", err)
	}
	l = e.leaks(t, baseline)
	l.Snapshots = slices.DeleteFunc(l.Snapshots, func(s string) bool { return slices.Contains(amiSnaps, s) })
	if !l.Empty() {
		t.Errorf("left after Destroy:\n%s", l)
	}
}

func testRegisterFailure(t *testing.T, e *e2eEnv) {
	baseline := e.snapshot(t)
	e.proxy.Reset()
	e.proxy.SetFault(awstest.FailAlways("ec2", "RegisterImage", awstest.ErrorFault("UnauthorizedOperation", 403)))
	defer e.proxy.SetFault(nil)

	// Bring-your-own X.509 files this time.
	certPath, keyPath := writeUserCert(t)
	provision, img := e.makeImage("never-registered")
	tpl := e.template(tmpl{
		Prefix: "builds/fail",
		Source: fmt.Sprintf(`
  bundle_source  = %q
  x509_cert_path = %q
  x509_key_path  = %q`, img, certPath, keyPath),
		Provision: provision,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build"}, Template: tpl})
	if res.ExitCode == 0 {
		t.Fatal("packer build succeeded although RegisterImage failed")
	}
	for _, w := range []string{"RegisterImage", "UnauthorizedOperation", "builds/fail/image.manifest.xml"} {
		if !strings.Contains(res.Output(), w) {
			t.Errorf("output does not mention %q", w)
		}
	}
	if n := len(e.proxy.CallsFor("s3", "PutObject")); n < 2 {
		t.Fatalf("PutObject calls = %d; the build failed before the upload", n)
	}
	if len(e.proxy.CallsFor("s3", "DeleteObject"))+len(e.proxy.CallsFor("s3", "DeleteObjects")) == 0 {
		t.Error("no S3 delete after the failure")
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	_, secret := awstest.TestCredentials()
	checkSecrets(t, e, res, map[string]string{"AWS secret key": secret, "X.509 key": pemBody(keyPEM)})
	if l := e.leaks(t, baseline); !l.Empty() {
		t.Errorf("failed build leaked resources:\n%s", l)
	}
}

// writeUserCert writes a fresh RSA key and self-signed certificate.
func writeUserCert(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "e2e user"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func testInterrupt(t *testing.T, e *e2eEnv) {
	baseline := e.snapshot(t)
	e.proxy.Reset()
	// Slow the registration down so that the interrupt arrives while the
	// bundle is in S3 and the AMI is being registered.
	e.proxy.SetFault(awstest.FailAlways("ec2", "RegisterImage", &awstest.Fault{Delay: 3 * time.Second}))
	defer e.proxy.SetFault(nil)
	provision, img := e.makeImage("interrupted")
	tpl := e.template(tmpl{
		Prefix:    "builds/interrupted",
		Source:    fmt.Sprintf("  bundle_source = %q\n", img),
		Provision: provision,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build"}, Template: tpl, InterruptOn: "Registering AMI"})
	if !res.Interrupted {
		t.Fatal("the build was not interrupted")
	}
	if res.ExitCode == 0 {
		t.Fatal("interrupted build exited 0")
	}
	if n := len(e.proxy.CallsFor("s3", "PutObject")); n < 2 {
		t.Fatalf("PutObject calls = %d; the interrupt came before the upload", n)
	}
	if l := e.leaks(t, baseline); !l.Empty() {
		t.Errorf("interrupted build leaked resources:\n%s", l)
	}
}

// testExamples builds the local example template and validates the
// real-AWS one.
func testExamples(t *testing.T, e *e2eEnv) {
	root, err := packertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "example", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	baseline := e.snapshot(t)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(out, 0o777); err != nil {
		t.Fatal(err)
	}
	res := e.packer.RunT(t, packertest.RunOptions{
		Args: []string{"build", "-machine-readable",
			"-var", "ssh_port=" + fmt.Sprint(e.sshd.Port),
			"-var", "ssh_username=" + e.sshd.User,
			"-var", "ssh_private_key_file=" + e.sshd.PrivateKeyPath,
			"-var", "output_dir=" + out,
			"-var", "s3_bucket=" + e2eBucket,
		},
		Template:     read("local/instance.pkr.hcl"),
		TemplateName: "instance.pkr.hcl",
	})
	if res.ExitCode != 0 {
		t.Fatalf("building example/local/instance.pkr.hcl exited %d", res.ExitCode)
	}
	ids := packertest.ArtifactIDs(res.Stdout)["ami-instance.demo"]
	if len(ids) != 1 {
		t.Fatalf("artifact ids = %q", ids)
	}
	if _, err := os.Stat(filepath.Join(out, "keys", "x509-key.pem")); err != nil {
		t.Errorf("generated key not kept: %v", err)
	}
	l := e.leaks(t, baseline)
	if len(l.Images) != 1 || len(l.S3Objects) != 2 {
		t.Errorf("want one AMI and a bundle of one part and a manifest, got:\n%s", l)
	}

	ec2Cert, _ := writeUserCert(t)
	e.proxy.Reset()
	res = e.packer.RunT(t, packertest.RunOptions{
		Args:         []string{"validate", "-var", "s3_bucket=my-bundles", "-var", "ec2_cert_path=" + ec2Cert},
		Template:     read("instance.pkr.hcl"),
		TemplateName: "instance-aws.pkr.hcl",
	})
	if res.ExitCode != 0 {
		t.Errorf("packer validate example/instance.pkr.hcl exited %d", res.ExitCode)
	}
	if n := len(e.proxy.Calls()); n != 0 {
		t.Errorf("validate made %d AWS calls", n)
	}
}

func testValidate(t *testing.T, e *e2eEnv) {
	tests := []struct {
		name   string
		source string
		build  bool
		want   []string
	}{
		{name: "unknown option", source: `  s3_bucket_name = "x"`, want: []string{"s3_bucket_name"}},
		{name: "cert without key", source: `  x509_cert_path = "/nonexistent/cert.pem"`, want: []string{"x509_cert_path, x509_key_path"}},
		{name: "relative bundle source", source: `  bundle_source = "root.img"`, want: []string{"bundle_source", "absolute path"}},
		{name: "architecture", source: `  architecture = "sparc"`, want: []string{"architecture", "sparc"}},
		{name: "windows", source: `  communicator = "winrm"
  winrm_username = "Administrator"`, want: []string{"Windows instance-store AMIs cannot be created"}},
		{name: "build with invalid options", source: `  boot_mode = "bios"`, build: true, want: []string{"boot_mode", "legacy-bios"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.Reset()
			tpl := e.template(tmpl{Prefix: "builds/invalid", Source: tc.source})
			var res *packertest.Result
			if tc.build {
				res = e.packer.Build(t, tpl)
			} else {
				res = e.packer.Validate(t, tpl)
			}
			if res.ExitCode == 0 {
				t.Fatal("packer accepted an invalid template")
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Output(), w) {
					t.Errorf("output does not mention %q:\n%s", w, res.Output())
				}
			}
			if calls := e.proxy.Calls(); len(calls) != 0 {
				t.Errorf("invalid template made %d AWS calls, want none: %v", len(calls), calls)
			}
		})
	}
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, tg := range tags {
		if aws.ToString(tg.Key) == key {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}
