//go:build unix

package ebs_test

// End-to-end tests: the real packer binary (./bin/packer) with this plugin
// installed, against moto behind the recording proxy, provisioning over SSH
// to an OpenSSH server on 127.0.0.1 that stands in for the build instance.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

const e2eRegion = "us-east-1"

// e2eEnv is one isolated world for an end-to-end test: its own moto, proxy,
// sshd and packer directories.
type e2eEnv struct {
	moto      *awstest.Moto
	proxy     *awstest.Proxy
	sshd      *awstest.SSHD
	packer    *packertest.Packer
	ec2       *ec2.Client // straight to moto, so the proxy records only packer's calls
	baseline  *awstest.Snapshot
	sourceAMI string
	outDir    string // the "instance's" directory the provisioner writes to
}

// amiFixture replaces moto's preloaded images (MOTO_AMIS_PATH): two
// releases of one image family, so that most_recent has something to choose,
// and one image the filter must not match. A small fixture also keeps moto's
// start, DescribeImages and leak listing fast.
const amiFixture = `[
  {"ami_id": "ami-0e2e0000000000001", "name": "al2023-ami-2023.1.20240101.0-kernel-6.1-x86_64",
   "description": "older release", "owner_id": "137112412989", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "ebs", "root_device_name": "/dev/xvda", "sriov": "simple",
   "creation_date": "2024-01-01T00:00:00.000Z"},
  {"ami_id": "ami-0e2e0000000000002", "name": "al2023-ami-2023.6.20241201.0-kernel-6.1-x86_64",
   "description": "newer release", "owner_id": "137112412989", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "ebs", "root_device_name": "/dev/xvda", "sriov": "simple",
   "creation_date": "2024-12-01T00:00:00.000Z"},
  {"ami_id": "ami-0e2e0000000000003", "name": "debian-12-amd64-20241201",
   "description": "other family", "owner_id": "136693071363", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "ebs", "root_device_name": "/dev/xvda", "sriov": "simple",
   "creation_date": "2025-01-01T00:00:00.000Z"}
]`

const (
	// sourceAMIName is the template's source_ami_filter name pattern.
	sourceAMIName = "al2023-ami-2023.*-kernel-6.1-x86_64"
	// wantSourceAMI is the newest fixture image matching it.
	wantSourceAMI = "ami-0e2e0000000000002"
)

func newE2EEnv(t *testing.T) *e2eEnv { return newE2EEnvWith(t, amiFixture) }

// newE2EEnvWith starts a world whose moto preloads the images of fixture
// (JSON, see amiFixture). moto 5.2.1 can load a non-empty fixture in one
// region only (it changes the loaded list in place), so multi-region tests
// pass "[]" and register their source AMI (registerSource).
func newE2EEnvWith(t *testing.T, fixtureJSON string) *e2eEnv {
	t.Helper()
	ctx := context.Background()
	fixture := filepath.Join(t.TempDir(), "amis.json")
	if err := os.WriteFile(fixture, []byte(fixtureJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &e2eEnv{sourceAMI: wantSourceAMI}
	e.moto = awstest.NewMoto(t, awstest.MotoOptions{Env: map[string]string{"MOTO_AMIS_PATH": fixture}})
	e.proxy = awstest.NewProxy(t, e.moto.Endpoint, awstest.ProxyOptions{})
	e.sshd = awstest.NewSSHD(t)
	e.ec2, _ = awstest.Clients(e.moto.Endpoint, e2eRegion)
	if fixtureJSON == amiFixture {
		if _, ok := e.image(t, wantSourceAMI); !ok {
			t.Fatalf("moto did not load the fixture image %s", wantSourceAMI)
		}
	}
	var err error
	if e.baseline, err = awstest.TakeSnapshot(ctx, e.moto.Endpoint, []string{e2eRegion}); err != nil {
		t.Fatalf("baseline snapshot: %v", err)
	}
	e.packer = packertest.New(t, packertest.Options{Env: awstest.Env(e.proxy.URL, e2eRegion)})
	e.outDir = filepath.Join(t.TempDir(), "instance")
	if err := os.MkdirAll(e.outDir, 0o777); err != nil {
		t.Fatal(err)
	}
	// The SSH user may differ from the test's user.
	if err := os.Chmod(e.outDir, 0o777); err != nil {
		t.Fatal(err)
	}
	e.proxy.Reset()
	return e
}

// tmpl describes a test template.
type tmpl struct {
	Region      string // empty means e2eRegion
	SourceAMI   string // source_ami; empty means the source_ami_filter
	AMIName     string
	Source      string   // extra lines in the source block
	Provision   []string // inline shell commands
	NoProvision bool
}

func (e *e2eEnv) template(p tmpl) string {
	if p.Region == "" {
		p.Region = e2eRegion
	}
	var b strings.Builder
	source := fmt.Sprintf(`source_ami_filter {
    filters = {
      name = %q
    }
    owners      = ["amazon"]
    most_recent = true
  }`, sourceAMIName)
	if p.SourceAMI != "" {
		source = fmt.Sprintf("source_ami = %q", p.SourceAMI)
	}
	fmt.Fprintf(&b, `source "ami-ebs" "e2e" {
  region        = %q
  instance_type = "t3.micro"

  %s

  ssh_host             = "127.0.0.1"
  ssh_port             = %d
  ssh_username         = %q
  ssh_private_key_file = %q
  ssh_timeout          = "1m"

  ami_name = %q
%s
}

build {
  sources = ["source.ami-ebs.e2e"]
`, p.Region, source, e.sshd.Port, e.sshd.User, e.sshd.PrivateKeyPath, p.AMIName, p.Source)
	if !p.NoProvision {
		b.WriteString("\n  provisioner \"shell\" {\n    inline = [\n")
		for _, c := range p.Provision {
			fmt.Fprintf(&b, "      %q,\n", c)
		}
		b.WriteString("    ]\n  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func (e *e2eEnv) leaks(t *testing.T) awstest.Leaks {
	t.Helper()
	l, err := awstest.ListLeaks(context.Background(), e.moto.Endpoint, []string{e2eRegion}, e.baseline)
	if err != nil {
		t.Fatalf("list leaks: %v", err)
	}
	return l
}

func (e *e2eEnv) image(t *testing.T, id string) (types.Image, bool) {
	t.Helper()
	out, err := e.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if strings.Contains(err.Error(), "InvalidAMIID") {
			return types.Image{}, false
		}
		t.Fatalf("DescribeImages %s: %v", id, err)
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == id && img.State != types.ImageStateDeregistered {
			return img, true
		}
	}
	return types.Image{}, false
}

func (e *e2eEnv) imagesNamed(t *testing.T, name string) []string {
	t.Helper()
	out, err := e.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}},
	})
	if err != nil {
		t.Fatalf("DescribeImages name=%s: %v", name, err)
	}
	var ids []string
	for _, img := range out.Images {
		ids = append(ids, aws.ToString(img.ImageId))
	}
	sort.Strings(ids)
	return ids
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func snapshotIDs(img types.Image) []string {
	var ids []string
	for _, bdm := range img.BlockDeviceMappings {
		if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
			ids = append(ids, *bdm.Ebs.SnapshotId)
		}
	}
	sort.Strings(ids)
	return ids
}

// artifactAMI returns the AMI id of the single artifact of build
// "ami-ebs.e2e" in machine-readable output, checking its region prefix.
func artifactAMI(t *testing.T, res *packertest.Result) string {
	t.Helper()
	ids := packertest.ArtifactIDs(res.Stdout)["ami-ebs.e2e"]
	if len(ids) != 1 {
		t.Fatalf("want one artifact id for ami-ebs.e2e, got %q", ids)
	}
	region, ami, ok := strings.Cut(ids[0], ":")
	if !ok || region != e2eRegion || !strings.HasPrefix(ami, "ami-") {
		t.Fatalf("artifact id %q, want %s:ami-…", ids[0], e2eRegion)
	}
	return ami
}

func TestE2EBuild(t *testing.T) {
	e := newE2EEnv(t)
	marker := "provisioned-" + strings.ReplaceAll(t.Name(), "/", "-")
	out := filepath.Join(e.outDir, "marker.txt")
	tpl := e.template(tmpl{
		AMIName: "e2e-build-{{timestamp}}",
		Source: `
  ami_description = "built by the e2e test"
  run_tags = {
    Purpose = "e2e-build"
  }
  tags = {
    Name      = "e2e"
    SourceAMI = "{{ .SourceAMI }}"
    Region    = "{{ .BuildRegion }}"
  }
  snapshot_tags = {
    Snap = "yes"
  }
  # HashiCorp's repeatable tag blocks, plain and dynamic.
  tag {
    key   = "Team"
    value = "platform-{{ .BuildRegion }}"
  }
  dynamic "tag" {
    for_each = { CostCenter = "cc-42" }
    content {
      key   = tag.key
      value = tag.value
    }
  }
  snapshot_tag {
    key   = "SnapBlock"
    value = "yes"
  }
  run_tag {
    key   = "RunBlock"
    value = "yes"
  }`,
		Provision: []string{"echo " + marker + " > " + out},
	})

	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}

	ami := artifactAMI(t, res)
	img, ok := e.image(t, ami)
	if !ok {
		t.Fatalf("artifact %s does not exist in moto", ami)
	}
	if got := aws.ToString(img.Name); !strings.HasPrefix(got, "e2e-build-") || strings.Contains(got, "{{") {
		t.Errorf("AMI name = %q, want e2e-build-<timestamp>", got)
	}
	if got := aws.ToString(img.Description); got != "built by the e2e test" {
		t.Errorf("AMI description = %q", got)
	}
	wantTags := map[string]string{"Name": "e2e", "SourceAMI": e.sourceAMI, "Region": e2eRegion, "Team": "platform-" + e2eRegion, "CostCenter": "cc-42"}
	if got := tagMap(img.Tags); !mapsContain(got, wantTags) {
		t.Errorf("AMI tags = %v, want at least %v", got, wantTags)
	}
	snaps := snapshotIDs(img)
	if len(snaps) == 0 {
		t.Errorf("AMI %s has no snapshots", ami)
	} else {
		s, err := e.ec2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
		if err != nil {
			t.Fatalf("DescribeSnapshots: %v", err)
		}
		for _, sn := range s.Snapshots {
			if got := tagMap(sn.Tags); got["Snap"] != "yes" || got["SnapBlock"] != "yes" {
				t.Errorf("snapshot %s tags = %v, want Snap=yes and SnapBlock=yes", aws.ToString(sn.SnapshotId), got)
			}
		}
	}

	// The provisioner ran on "the instance" over SSH.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("provisioner output: %v", err)
	}
	if strings.TrimSpace(string(b)) != marker {
		t.Errorf("provisioner wrote %q, want %q", b, marker)
	}
	if !slices.ContainsFunc(e.sshd.CommandLog(), func(c string) bool { return strings.Contains(c, "/tmp/script") || strings.Contains(c, marker) }) {
		t.Errorf("sshd command log has no provisioner command: %q", e.sshd.CommandLog())
	}

	// The build instance was launched from the filtered source AMI and terminated.
	runs := e.proxy.CallsFor("ec2", "RunInstances")
	if len(runs) != 1 {
		t.Fatalf("RunInstances calls = %d, want 1", len(runs))
	}
	if got := runs[0].Params.Get("ImageId"); got != e.sourceAMI {
		t.Errorf("RunInstances ImageId = %q, want %q", got, e.sourceAMI)
	}
	runTags := map[string]string{}
	for k, v := range runs[0].Params {
		if strings.HasPrefix(k, "TagSpecification.1.Tag.") && strings.HasSuffix(k, ".Key") {
			runTags[v[0]] = runs[0].Params.Get(strings.TrimSuffix(k, ".Key") + ".Value")
		}
	}
	if runTags["Purpose"] != "e2e-build" || runTags["RunBlock"] != "yes" {
		t.Errorf("RunInstances instance tags = %v, want Purpose and RunBlock from run_tags and run_tag", runTags)
	}
	if len(e.proxy.CallsFor("ec2", "TerminateInstances")) == 0 {
		t.Error("no TerminateInstances call")
	}
	// Every call says which component made it.
	for _, c := range e.proxy.Calls() {
		if ua := c.Header.Get("User-Agent"); !strings.Contains(ua, " app/"+amiconfig.AppIDEBS) {
			t.Errorf("%s: User-Agent %q lacks app/%s", c, ua, amiconfig.AppIDEBS)
		}
	}

	// Nothing but the AMI and its snapshots is left.
	l := e.leaks(t)
	if want := regional(ami); !slices.Equal(l.Images, want) {
		t.Errorf("images left = %q, want only %q", l.Images, want)
	}
	gotSnaps := append([]string(nil), l.Snapshots...)
	sort.Strings(gotSnaps)
	if want := regional(snaps...); !slices.Equal(gotSnaps, want) {
		t.Errorf("snapshots left = %q, want the AMI's %q", gotSnaps, want)
	}
	l.Images, l.Snapshots = nil, nil
	if !l.Empty() {
		t.Errorf("build leaked resources:\n%s", l)
	}

	// Every AWS action the build used is in the documented IAM policy.
	t.Logf("AWS actions of the build: %v", e.proxy.Actions())
	pol, err := awstest.LoadPolicy(filepath.Join("..", "..", "example", "iam", "ami-ebs-policy.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	denied, _ := pol.Denied(e.proxy.Calls())
	for _, problem := range denied {
		t.Errorf("example/iam/ami-ebs-policy.json: %s", problem)
	}

	// No secret reached packer's output or debug log.
	_, secret := awstest.TestCredentials()
	key, err := os.ReadFile(e.sshd.PrivateKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	log, err := res.Log()
	if err != nil {
		t.Fatalf("read packer log: %v", err)
	}
	for name, s := range map[string]string{"output": res.Output(), "debug log": log} {
		if strings.Contains(s, secret) {
			t.Errorf("packer %s contains the AWS secret key", name)
		}
		if keyBody := privateKeyBody(key); keyBody != "" && strings.Contains(s, keyBody) {
			t.Errorf("packer %s contains the SSH private key", name)
		}
	}
}

// regional returns ids in the "region:id" form that awstest.Leaks uses.
func regional(ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = e2eRegion + ":" + id
	}
	return out
}

// privateKeyBody returns a distinctive line from the middle of a PEM key.
func privateKeyBody(pem []byte) string {
	lines := strings.Split(strings.TrimSpace(string(pem)), "\n")
	if len(lines) < 3 {
		return ""
	}
	return strings.TrimSpace(lines[len(lines)/2])
}

func mapsContain(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestE2EProvisionerFailureLeavesNothing(t *testing.T) {
	e := newE2EEnv(t)
	tpl := e.template(tmpl{
		AMIName:   "e2e-fail-{{timestamp}}",
		Provision: []string{"echo about to fail", "exit 1"},
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build"}, Template: tpl})
	if res.ExitCode == 0 {
		t.Fatal("packer build succeeded, want a failure from the provisioner")
	}
	if !strings.Contains(res.Output(), "about to fail") {
		t.Errorf("output lacks the provisioner's output")
	}
	if len(e.proxy.CallsFor("ec2", "RunInstances")) != 1 {
		t.Errorf("the build did not get as far as launching an instance")
	}
	if n := len(e.proxy.CallsFor("ec2", "CreateImage")); n != 0 {
		t.Errorf("CreateImage called %d times after a provisioner failure", n)
	}
	if l := e.leaks(t); !l.Empty() {
		t.Errorf("failed build leaked resources:\n%s", l)
	}
}

func TestE2EForceReplacesSameNamedAMI(t *testing.T) {
	e := newE2EEnv(t)
	name := "e2e-force-" + time.Now().UTC().Format("20060102150405")
	tpl := e.template(tmpl{
		AMIName:     name,
		Source:      "  force_delete_snapshot = true\n",
		NoProvision: true,
	})
	build := func(args ...string) *packertest.Result {
		t.Helper()
		return e.packer.RunT(t, packertest.RunOptions{
			Args: append([]string{"build", "-machine-readable"}, args...), Template: tpl,
		})
	}

	first := build()
	if first.ExitCode != 0 {
		t.Fatalf("first build exited %d", first.ExitCode)
	}
	oldAMI := artifactAMI(t, first)
	oldImg, ok := e.image(t, oldAMI)
	if !ok {
		t.Fatalf("first AMI %s missing", oldAMI)
	}
	oldSnaps := snapshotIDs(oldImg)

	// Without -force the name clash is an error and nothing is created.
	e.proxy.Reset()
	clash := build()
	if clash.ExitCode == 0 {
		t.Fatal("second build without -force succeeded despite an AMI of the same name")
	}
	if !strings.Contains(clash.Output(), name) {
		t.Errorf("name-clash failure does not mention %q", name)
	}
	if n := len(e.proxy.CallsFor("ec2", "RunInstances")); n != 0 {
		t.Errorf("RunInstances called %d times although the name is taken", n)
	}
	if got := e.imagesNamed(t, name); !slices.Equal(got, []string{oldAMI}) {
		t.Errorf("images named %s after the failed build = %q, want only %s", name, got, oldAMI)
	}

	second := build("-force")
	if second.ExitCode != 0 {
		t.Fatalf("build -force exited %d", second.ExitCode)
	}
	newAMI := artifactAMI(t, second)
	if newAMI == oldAMI {
		t.Fatalf("build -force returned the old AMI %s", oldAMI)
	}
	if _, ok := e.image(t, oldAMI); ok {
		t.Errorf("old AMI %s still registered after -force", oldAMI)
	}
	if got := e.imagesNamed(t, name); !slices.Equal(got, []string{newAMI}) {
		t.Errorf("images named %s = %q, want only the new %s", name, got, newAMI)
	}
	l := e.leaks(t)
	for _, s := range regional(oldSnaps...) {
		if slices.Contains(l.Snapshots, s) {
			t.Errorf("snapshot %s of the replaced AMI was not deleted (force_delete_snapshot)", s)
		}
	}
	if want := regional(newAMI); !slices.Equal(l.Images, want) {
		t.Errorf("images left = %q, want only %q", l.Images, want)
	}
	l.Images, l.Snapshots = nil, nil
	if !l.Empty() {
		t.Errorf("forced build leaked resources:\n%s", l)
	}
}

func TestE2EValidate(t *testing.T) {
	e := newE2EEnv(t)
	tests := []struct {
		name     string
		tpl      tmpl
		wantOK   bool
		wantText []string // each must appear in the output
	}{
		{
			name:   "valid template",
			tpl:    tmpl{AMIName: "ok-{{timestamp}}", Provision: []string{"true"}},
			wantOK: true,
		},
		{
			name:     "bad region",
			tpl:      tmpl{Region: "us-east-one", AMIName: "ok-{{timestamp}}"},
			wantText: []string{"region", "us-east-one"},
		},
		{
			name:     "bad ami_name",
			tpl:      tmpl{AMIName: "x", Provision: []string{"true"}},
			wantText: []string{"ami_name"},
		},
		{
			name:     "malformed source CIDR",
			tpl:      tmpl{AMIName: "ok-{{timestamp}}", Source: `  temporary_security_group_source_cidrs = ["10.0.0.0/99"]`},
			wantText: []string{"temporary_security_group_source_cidrs", "10.0.0.0/99"},
		},
		{
			name:     "unknown ssh_interface",
			tpl:      tmpl{AMIName: "ok-{{timestamp}}", Source: `  ssh_interface = "carrier-pigeon"`},
			wantText: []string{"ssh_interface", "carrier-pigeon"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.Reset()
			res := e.packer.Validate(t, e.template(tc.tpl))
			if ok := res.ExitCode == 0; ok != tc.wantOK {
				t.Fatalf("packer validate exit %d, want success=%v", res.ExitCode, tc.wantOK)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(res.Output(), s) {
					t.Errorf("output does not mention %q", s)
				}
			}
			if calls := e.proxy.Calls(); len(calls) != 0 {
				t.Errorf("packer validate made %d AWS calls, want none: %v", len(calls), calls)
			}
		})
	}
}

func TestE2EInterruptLeavesNothing(t *testing.T) {
	e := newE2EEnv(t)
	tpl := e.template(tmpl{
		AMIName:   "e2e-interrupt-{{timestamp}}",
		Provision: []string{"echo waiting-for-interrupt", "sleep 120"},
	})
	res := e.packer.RunT(t, packertest.RunOptions{
		Args:        []string{"build"},
		Template:    tpl,
		InterruptOn: "waiting-for-interrupt",
		Timeout:     90 * time.Second,
	})
	if !res.Interrupted {
		t.Fatal("the provisioner's marker never appeared; packer was not interrupted")
	}
	if res.TimedOut {
		t.Fatalf("packer did not stop within %s of SIGINT", 90*time.Second)
	}
	if res.ExitCode == 0 {
		t.Error("interrupted packer build exited 0")
	}
	if n := len(e.proxy.CallsFor("ec2", "CreateImage")); n != 0 {
		t.Errorf("CreateImage called %d times after the interrupt", n)
	}
	if len(e.proxy.CallsFor("ec2", "TerminateInstances")) == 0 {
		t.Error("the build instance was not terminated after the interrupt")
	}
	if l := e.leaks(t); !l.Empty() {
		t.Errorf("interrupted build leaked resources:\n%s", l)
	}
}

// The README shows the same IAM policy as example/iam/ami-ebs-policy.json,
// which TestE2EBuild checks against the calls a build makes.
func TestREADMEPolicyMatchesExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "### IAM policy for `ami-ebs`")
	if !ok {
		t.Fatal("README has no IAM policy section")
	}
	_, block, _ = strings.Cut(block, "```json\n")
	block, _, _ = strings.Cut(block, "```")
	policy, err := os.ReadFile(filepath.Join("..", "..", "example", "iam", "ami-ebs-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(block) != strings.TrimSpace(string(policy)) {
		t.Errorf("README's IAM policy differs from example/iam/ami-ebs-policy.json:\nREADME:\n%s\nfile:\n%s", block, policy)
	}
}

// TestIAMReadmeListsEveryPolicy checks that example/iam/README.md's table
// names every policy file beside it, with the test that checks it.
func TestIAMReadmeListsEveryPolicy(t *testing.T) {
	dir := filepath.Join("..", "..", "example", "iam")
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // file name -> its table row
	for line := range strings.Lines(string(readme)) {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ = strings.Cut(name, "`")
			rows[name] = line
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no policy files in example/iam")
	}
	for _, f := range files {
		name := filepath.Base(f)
		row, ok := rows[name]
		switch {
		case !ok:
			t.Errorf("example/iam/README.md's table does not list %s", name)
		case !strings.Contains(row, "_test.go"):
			t.Errorf("example/iam/README.md's row for %s names no test: %s", name, row)
		}
	}
}

// TestE2EValidateExample validates the real-AWS example, as a developer
// (defaults: no copies, no sharing) and as a release job (regions and
// accounts), and checks that a bad account ID is named.
func TestE2EValidateExample(t *testing.T) {
	e := newE2EEnv(t)
	root, err := packertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "example", "ebs.pkr.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		vars   []string
		wantOK bool
		want   string
	}{
		{name: "development defaults", wantOK: true},
		{name: "release", vars: []string{"-var", `ami_regions=["eu-central-1","us-east-1"]`, "-var", `ami_users=["123456789012"]`}, wantOK: true},
		{name: "bad account", vars: []string{"-var", `ami_users=["1234"]`}, want: "ami_users[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.Reset()
			res := e.packer.RunT(t, packertest.RunOptions{
				Args: append([]string{"validate"}, tc.vars...), Template: string(src), TemplateName: "ebs.pkr.hcl",
			})
			if ok := res.ExitCode == 0; ok != tc.wantOK {
				t.Fatalf("packer validate exit %d, want success=%v", res.ExitCode, tc.wantOK)
			}
			if tc.want != "" && !strings.Contains(res.Output(), tc.want) {
				t.Errorf("output does not mention %q", tc.want)
			}
			if calls := e.proxy.Calls(); len(calls) != 0 {
				t.Errorf("packer validate made %d AWS calls: %v", len(calls), calls)
			}
		})
	}
}
