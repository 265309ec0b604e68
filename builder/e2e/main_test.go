//go:build unix

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// Regions: builds run in buildRegion; ami-distribute copies to the others.
const (
	buildRegion = "us-east-1"
	euRegion    = "eu-west-1"
	apRegion    = "ap-southeast-2"
)

var allRegions = []string{buildRegion, euRegion, apRegion}

const (
	// ebsSourceAMI is the public EBS-backed image ami-ebs starts from.
	ebsSourceAMI  = "ami-0e2e9000000000001"
	ebsSourceName = "al2023-ami-2023.6.20241201.0-kernel-6.1-x86_64"
	// storeSourceAMI is the public instance-store image ami-instance starts
	// from.
	storeSourceAMI = "ami-0e2e9000000000002"
	// bucket receives ami-instance bundles.
	bucket = "e2e-reliability-bundles"
)

// amiFixture replaces moto's preloaded images (MOTO_AMIS_PATH). No
// creation_date: moto 5.2.1 parses fixture dates in place and fails in the
// second region that loads them.
const amiFixture = `[
  {"ami_id": "` + ebsSourceAMI + `", "name": "` + ebsSourceName + `",
   "description": "ebs source", "owner_id": "137112412989", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "ebs", "root_device_name": "/dev/xvda", "sriov": "simple"},
  {"ami_id": "` + storeSourceAMI + `", "name": "instance-store-base-x86_64",
   "description": "instance-store source", "owner_id": "137112412989", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "instance-store", "root_device_name": "/dev/sda1"}
]`

// stats are the numbers printed at the end of the run.
var stats struct {
	runs, faults, leaks, invalid atomic.Int64
}

// fullMatrix reports whether the full fault and interrupt matrices run.
func fullMatrix() bool { return os.Getenv("AMI_E2E_FULL") != "" }

// onlyInFullMatrix skips a case of the full matrices unless they run, so
// that it shows as skipped rather than not at all.
func onlyInFullMatrix(t *testing.T) {
	t.Helper()
	if !fullMatrix() {
		t.Skip("only in the full matrix; run with AMI_E2E_FULL=1")
	}
}

// world is the environment every test of the package shares: one moto,
// one sshd, a recording proxy for builds and packer with the plugin. Tests
// that use the build proxy run one at a time (none calls t.Parallel); each
// compares leaks against a baseline it takes itself.
type world struct {
	dir     string
	moto    *awstest.Moto
	proxy   *awstest.Proxy
	sshd    *awstest.SSHD
	packer  *packertest.Packer
	plugin  string
	ec2     map[string]*ec2.Client // straight to moto: the proxy sees only packer
	s3      *s3.Client
	decoys  decoys
	workDir string // the "instance's" scratch directory
	// ssmPluginDir holds the stand-in session-manager-plugin (first on
	// packer's PATH) and the records of its runs.
	ssmPluginDir string
}

var (
	shared    *world
	sharedErr error
	worldOnce sync.Once
)

// theWorld returns the shared world, setting it up on first use.
func theWorld(t *testing.T) *world {
	t.Helper()
	worldOnce.Do(func() { shared, sharedErr = setUpWorld(context.Background()) })
	if sharedErr != nil {
		t.Fatalf("set up the end-to-end world: %v", sharedErr)
	}
	return shared
}

func setUpWorld(ctx context.Context) (_ *world, err error) {
	w := &world{ec2: map[string]*ec2.Client{}}
	if w.dir, err = os.MkdirTemp("", "ami-e2e-"); err != nil {
		return nil, err
	}
	fixture := filepath.Join(w.dir, "amis.json")
	if err := os.WriteFile(fixture, []byte(amiFixture), 0o644); err != nil {
		return nil, err
	}
	if w.moto, err = awstest.StartMoto(ctx, awstest.MotoOptions{Env: map[string]string{"MOTO_AMIS_PATH": fixture}}); err != nil {
		return nil, err
	}
	if w.proxy, err = awstest.StartProxy(w.moto.Endpoint, awstest.ProxyOptions{}); err != nil {
		return nil, err
	}
	// Any key passes, so that builds with a temporary key pair connect too.
	if w.sshd, err = awstest.StartSSHD(ctx, filepath.Join(w.dir, "sshd"), awstest.AcceptAnyKey()); err != nil {
		return nil, err
	}
	for _, r := range allRegions {
		w.ec2[r], _ = awstest.ObserverClients(w.moto.Endpoint, r)
	}
	_, w.s3 = awstest.ObserverClients(w.moto.Endpoint, buildRegion)
	if _, err := w.s3.CreateBucket(ctx, &s3.CreateBucketInput{
		Bucket: aws.String(bucket), ObjectOwnership: s3types.ObjectOwnershipBucketOwnerPreferred,
	}); err != nil {
		return nil, fmt.Errorf("create bucket: %w", err)
	}
	if err := createInstanceProfile(ctx, w.moto.Endpoint, ssmInstanceProfile); err != nil {
		return nil, err
	}
	if w.decoys, err = makeDecoys(ctx, w); err != nil {
		return nil, fmt.Errorf("decoys: %w", err)
	}
	built, err := packertest.BuildPlugin()
	if err != nil {
		return nil, err
	}
	// A private copy: the built binary's path is shared by every checkout
	// that uses the same bin directory, and may be rebuilt meanwhile.
	w.plugin = filepath.Join(w.dir, "packer-plugin-ami")
	if err := copyFile(built, w.plugin, 0o755); err != nil {
		return nil, fmt.Errorf("copy the plugin: %w", err)
	}
	pdir := filepath.Join(w.dir, "packer")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return nil, err
	}
	// The stand-in session-manager-plugin is on packer's PATH, for builds
	// with ssh_interface = "session_manager".
	w.ssmPluginDir = filepath.Join(w.dir, "ssm-plugin")
	if err := os.MkdirAll(w.ssmPluginDir, 0o755); err != nil {
		return nil, err
	}
	if _, err := awstest.BuildSessionManagerPlugin(w.ssmPluginDir); err != nil {
		return nil, err
	}
	if w.packer, err = packertest.Setup(ctx, pdir, packertest.Options{
		Plugin: w.plugin,
		Env:    append(awstest.Env(w.proxy.URL, buildRegion), "PATH="+w.ssmPluginDir+string(os.PathListSeparator)+os.Getenv("PATH")),
	}); err != nil {
		return nil, err
	}
	w.workDir = filepath.Join(w.dir, "instance")
	if err := os.MkdirAll(w.workDir, 0o777); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *world) close() error {
	var errs []error
	if w.proxy != nil {
		errs = append(errs, w.proxy.Close())
	}
	if w.sshd != nil {
		errs = append(errs, w.sshd.Stop())
	}
	if w.moto != nil {
		errs = append(errs, w.moto.Stop())
	}
	if os.Getenv("AMI_E2E_KEEP") == "" && w.dir != "" {
		errs = append(errs, os.RemoveAll(w.dir))
	}
	return errors.Join(errs...)
}

func TestMain(m *testing.M) {
	start := time.Now()
	code := m.Run()
	if shared != nil {
		if err := shared.close(); err != nil {
			fmt.Fprintln(os.Stderr, "builder/e2e: tear down:", err)
			code = 1
		}
	}
	summary := fmt.Sprintf("builder/e2e summary: %d packer runs, %d faults injected, %d leaks found, %d invalid inputs tried, %s (exit %d)\n",
		stats.runs.Load(), stats.faults.Load(), stats.leaks.Load(), stats.invalid.Load(), time.Since(start).Round(time.Second), code)
	fmt.Print(summary)
	// go test shows a passing package's output only with -v; the summary
	// is also written to .cache/e2e-summary.txt for make to print.
	if root, err := packertest.ModuleRoot(); err == nil {
		_ = os.MkdirAll(filepath.Join(root, ".cache"), 0o755)
		_ = os.WriteFile(filepath.Join(root, ".cache", "e2e-summary.txt"), []byte(summary), 0o644)
	}
	os.Exit(code)
}

// seed is the seed of the random faults: AMI_E2E_SEED, or def.
func seed(t *testing.T, def uint64) uint64 {
	t.Helper()
	if s := os.Getenv("AMI_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("AMI_E2E_SEED=%q: %v", s, err)
		}
		return v
	}
	return def
}

// describeImage returns the image, ok false when it does not exist or is
// deregistered.
func (w *world) describeImage(t *testing.T, region, id string) (types.Image, bool) {
	t.Helper()
	out, err := w.ec2[region].DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		return types.Image{}, false
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == id && img.State != types.ImageStateDeregistered {
			return img, true
		}
	}
	return types.Image{}, false
}

// ssmInstanceProfile is the iam_instance_profile of the Session Manager
// corpus template; moto's RunInstances refuses a profile that does not
// exist.
const ssmInstanceProfile = "SSMInstanceProfile"

// createInstanceProfile creates an IAM instance profile in moto with a
// plain query-protocol request (moto does not check signatures; it takes
// the service from the credential scope).
func createInstanceProfile(ctx context.Context, endpoint, name string) error {
	form := url.Values{"Action": {"CreateInstanceProfile"}, "Version": {"2010-05-08"}, "InstanceProfileName": {name}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+awstest.TestAccessKeyID+"/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("create instance profile %s: %w", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("create instance profile %s: HTTP %d: %s", name, resp.StatusCode, body)
	}
	return nil
}

// copyFile copies src to dst with mode perm.
func copyFile(src, dst string, perm os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, perm)
}
