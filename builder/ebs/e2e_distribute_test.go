//go:build unix

package ebs_test

// End-to-end tests of HashiCorp's AMI options on the builder: copies to
// ami_regions, sharing, encryption, deprecation, protection,
// skip_save_build_region and skip_create_ami, against moto in three
// regions.

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

const (
	euRegion     = "eu-west-1"
	apRegion     = "ap-southeast-2"
	shareAccount = "210987654321"
)

var allRegions = []string{e2eRegion, euRegion, apRegion}

// regionsFixture is the source image of builds that copy to other regions.
// It has no creation_date: moto 5.2.1 changes a loaded fixture in place
// when it parses that field, and then fails to load it in a second region.
const regionsFixture = `[
  {"ami_id": "ami-0e2e00000000000a1", "name": "al2023-ami-2023.6.20241201.0-kernel-6.1-x86_64",
   "description": "base image", "owner_id": "137112412989", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "ebs", "root_device_name": "/dev/xvda", "sriov": "simple"}
]`

// newRegionsEnv is a world for builds that copy to other regions.
func newRegionsEnv(t *testing.T) *e2eEnv {
	t.Helper()
	e := newE2EEnvWith(t, regionsFixture)
	e.sourceAMI = "ami-0e2e00000000000a1"
	return e
}

// regionClient returns an EC2 client straight to moto in region.
func (e *e2eEnv) regionClient(region string) *ec2.Client {
	c, _ := awstest.Clients(e.moto.Endpoint, region)
	return c
}

// snapshotAll lists what exists in every region, as the baseline of one run.
func (e *e2eEnv) snapshotAll(t *testing.T) *awstest.Snapshot {
	t.Helper()
	s, err := awstest.TakeSnapshot(context.Background(), e.moto.Endpoint, allRegions)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return s
}

func (e *e2eEnv) leaksSince(t *testing.T, base *awstest.Snapshot) awstest.Leaks {
	t.Helper()
	e.proxy.WaitIdle()
	l, err := awstest.ListLeaks(context.Background(), e.moto.Endpoint, allRegions, base)
	if err != nil {
		t.Fatalf("list leaks: %v", err)
	}
	return l
}

// kmsKey makes a customer-managed key in moto and returns its ARN.
func (e *e2eEnv) kmsKey(t *testing.T, region string) string {
	t.Helper()
	c := kms.NewFromConfig(awstest.Config(e.moto.Endpoint, region))
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("e2e key")})
	if err != nil {
		t.Fatalf("CreateKey in %s: %v", region, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// artifactAMIs returns the artifact of ami-ebs.e2e as region → AMI.
func artifactAMIs(t *testing.T, res *packertest.Result) map[string]string {
	t.Helper()
	ids := packertest.ArtifactIDs(res.Stdout)["ami-ebs.e2e"]
	if len(ids) != 1 {
		t.Fatalf("want one artifact id for ami-ebs.e2e, got %q", ids)
	}
	m := map[string]string{}
	for _, part := range strings.Split(ids[0], ",") {
		region, ami, ok := strings.Cut(part, ":")
		if !ok || !strings.HasPrefix(ami, "ami-") {
			t.Fatalf("artifact id %q: part %q is not region:ami-…", ids[0], part)
		}
		m[region] = ami
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func imageRef(amis map[string]string) []string {
	var out []string
	for _, r := range sortedKeys(amis) {
		out = append(out, r+":"+amis[r])
	}
	return out
}

// TestE2EBuilderCopiesAndSharesLikeAmazonEBS builds with HashiCorp's
// builder options for copies and sharing and checks every region's AMI.
func TestE2EBuilderCopiesAndSharesLikeAmazonEBS(t *testing.T) {
	e := newRegionsEnv(t)
	base := e.snapshotAll(t)
	deprecateAt := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Minute).Format(time.RFC3339)
	// moto answers HTTP 500 to both; the proxy stands in with HTTP 200 and
	// the test checks the requests.
	ok200 := &awstest.Fault{Name: "success stand-in", Status: http.StatusOK}
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Action == "EnableImageDeprecation" || c.Action == "EnableImageDeregistrationProtection" {
			return ok200
		}
		return nil
	})
	defer e.proxy.SetFault(nil)
	tpl := e.template(tmpl{
		SourceAMI: e.sourceAMI,
		AMIName:   "e2e-copies-{{timestamp}}",
		Source: fmt.Sprintf(`
  ami_description = "app for {{ .BuildRegion }}"
  # The build region is listed too, as templates often do; it is left out.
  ami_regions     = [%q, %q, %q]
  ami_users       = [%q]
  snapshot_users  = [%q]
  deprecate_at    = %q
  snapshot_copy_duration_minutes = 30
  tags = {
    App    = "e2e"
    Region = "{{ .BuildRegion }}"
  }
  snapshot_tags = {
    Snap = "yes"
  }
  deregistration_protection {
    enabled = true
  }`, euRegion, apRegion, e2eRegion, shareAccount, shareAccount, deprecateAt),
		NoProvision: true,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := artifactAMIs(t, res)
	if got := sortedKeys(amis); !slices.Equal(got, []string{apRegion, euRegion, e2eRegion}) {
		t.Fatalf("artifact regions = %v, want all three", got)
	}
	var names []string
	for region, id := range amis {
		api := e.regionClient(region)
		out, err := api.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err != nil || len(out.Images) != 1 {
			t.Fatalf("DescribeImages %s in %s: %v", id, region, err)
		}
		img := out.Images[0]
		names = append(names, aws.ToString(img.Name))
		// {{ .BuildRegion }} is the build region in every region, as in
		// HashiCorp's builders.
		if got, want := tagMap(img.Tags), map[string]string{"App": "e2e", "Region": e2eRegion}; !mapsContain(got, want) {
			t.Errorf("%s %s tags = %v, want %v", region, id, got, want)
		}
		if got := aws.ToString(img.Description); got != "app for "+e2eRegion {
			t.Errorf("%s %s description = %q", region, id, got)
		}
		perms, err := api.DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{ImageId: aws.String(id), Attribute: types.ImageAttributeNameLaunchPermission})
		if err != nil {
			t.Fatalf("DescribeImageAttribute %s: %v", id, err)
		}
		if len(perms.LaunchPermissions) != 1 || aws.ToString(perms.LaunchPermissions[0].UserId) != shareAccount {
			t.Errorf("%s %s launch permissions = %+v, want %s", region, id, perms.LaunchPermissions, shareAccount)
		}
		snaps := snapshotIDs(img)
		if len(snaps) == 0 {
			t.Errorf("%s %s has no snapshot", region, id)
		}
		if out, err := api.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: snaps}); err != nil {
			t.Errorf("DescribeSnapshots %v in %s: %v", snaps, region, err)
		} else {
			for _, sn := range out.Snapshots {
				if got := tagMap(sn.Tags); got["App"] != "e2e" || got["Snap"] != "yes" {
					t.Errorf("%s snapshot %s tags = %v, want App=e2e and Snap=yes", region, aws.ToString(sn.SnapshotId), got)
				}
			}
		}
		for _, snap := range snaps {
			sa, err := api.DescribeSnapshotAttribute(context.Background(), &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(snap), Attribute: types.SnapshotAttributeNameCreateVolumePermission})
			if err != nil {
				t.Fatalf("DescribeSnapshotAttribute %s: %v", snap, err)
			}
			if len(sa.CreateVolumePermissions) != 1 || aws.ToString(sa.CreateVolumePermissions[0].UserId) != shareAccount {
				t.Errorf("%s snapshot %s create-volume permissions = %+v, want %s", region, snap, sa.CreateVolumePermissions, shareAccount)
			}
		}
	}
	if names[0] == "" || names[0] != names[1] || names[1] != names[2] {
		t.Errorf("AMI names %q, want the same ami_name in every region", names)
	}
	// moto drops deprecation and protection; the requests show them.
	for _, action := range []string{"EnableImageDeprecation", "EnableImageDeregistrationProtection"} {
		var got []string
		for _, c := range e.proxy.CallsFor("ec2", action) {
			got = append(got, c.Region+":"+c.Params.Get("ImageId"))
			if action == "EnableImageDeprecation" && c.Params.Get("DeprecateAt") != deprecateAt {
				t.Errorf("%s DeprecateAt = %q, want %q", action, c.Params.Get("DeprecateAt"), deprecateAt)
			}
		}
		sort.Strings(got)
		if want := imageRef(amis); !slices.Equal(got, want) {
			t.Errorf("%s for %v, want %v", action, got, want)
		}
	}
	// One copy per other region, none into the build region.
	var copies []string
	for _, c := range e.proxy.CallsFor("ec2", "CopyImage") {
		copies = append(copies, c.Region)
		if got := c.Params.Get("SnapshotCopyCompletionDurationMinutes"); got != "30" {
			t.Errorf("CopyImage into %s SnapshotCopyCompletionDurationMinutes = %q, want 30", c.Region, got)
		}
	}
	sort.Strings(copies)
	if !slices.Equal(copies, []string{apRegion, euRegion}) {
		t.Errorf("CopyImage into %v, want %s and %s once each", copies, apRegion, euRegion)
	}
	// Each copy region: its name looked up once, before the launch, and
	// the copy tagged by CopyImage (no CreateTags there).
	for _, region := range []string{apRegion, euRegion} {
		nameChecks := 0
		for _, c := range e.proxy.CallsFor("ec2", "DescribeImages") {
			if c.Region == region && c.Params.Get("Filter.1.Name") == "name" {
				nameChecks++
			}
		}
		if nameChecks != 1 {
			t.Errorf("%d name lookups in %s, want 1 (before the launch)", nameChecks, region)
		}
		for _, c := range e.proxy.CallsFor("ec2", "CreateTags") {
			if c.Region == region {
				t.Errorf("CreateTags in %s (%v); CopyImage tags the copy", region, c.Params)
			}
		}
	}
	l := e.leaksSince(t, base)
	if got, want := sortedCopy(l.Images), imageRef(amis); !slices.Equal(got, want) {
		t.Errorf("images left = %v, want exactly the artifact %v", got, want)
	}
	if len(l.Instances)+len(l.KeyPairs)+len(l.SecurityGroups)+len(l.Volumes) > 0 {
		t.Errorf("the build leaked: %s", l)
	}
	checkCopiesPolicy(t, e.proxy.Calls(), map[string]string{
		"ec2:DeleteSnapshot":                       "removing copies after a failure",
		"ec2:DeregisterImage":                      "removing copies after a failure",
		"ec2:DisableImageDeregistrationProtection": "turning protection off again when a later region fails",
		"ec2:DescribeSnapshots":                    "finding the KMS key of an encrypted AMI shared with other accounts",
		"kms:DescribeKey":                          "refusing to share an AMI encrypted with the AWS-managed key",
	})
}

// checkCopiesPolicy checks that the ami-ebs policy and the policy for the
// builders' copy and sharing options together allow every call, and that
// each action of the latter was needed or is listed in optional.
func checkCopiesPolicy(t *testing.T, calls []awstest.Call, optional map[string]string) {
	t.Helper()
	build, err := awstest.LoadPolicy(filepath.Join("..", "..", "example", "iam", "ami-ebs-policy.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	copies, err := awstest.LoadPolicy(filepath.Join("..", "..", "example", "iam", "ami-builder-copies-policy.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	both := &awstest.Policy{Statements: append(slices.Clone(build.Statements), copies.Statements...)}
	denied, used := both.Denied(calls)
	for _, problem := range denied {
		t.Errorf("example/iam/ami-ebs-policy.json + ami-builder-copies-policy.json: %s", problem)
	}
	for _, st := range copies.Statements {
		for _, a := range st.Actions {
			if !used[a] && optional[a] == "" {
				t.Errorf("ami-builder-copies-policy.json allows %s, which no call of the build needed", a)
			}
		}
	}
}

// TestE2EBuilderEncryptBootNeedsNoCopy checks that encrypt_boot with a key
// launches the build instance with encrypted volumes, so that the AMI is
// encrypted without a copy in the build region, and that the copy uses
// its region's key.
func TestE2EBuilderEncryptBootNeedsNoCopy(t *testing.T) {
	e := newRegionsEnv(t)
	base := e.snapshotAll(t)
	buildKey := e.kmsKey(t, e2eRegion)
	euKey := e.kmsKey(t, euRegion)
	tpl := e.template(tmpl{
		SourceAMI: e.sourceAMI,
		AMIName:   "e2e-encrypted-{{timestamp}}",
		Source: fmt.Sprintf(`
  ebs_optimized      = true
  encrypt_boot       = true
  kms_key_id         = %q
  ami_regions        = [%q]
  region_kms_key_ids = { %q = %q }
  ami_users          = [%q]`, buildKey, euRegion, euRegion, euKey, shareAccount),
		NoProvision: true,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := artifactAMIs(t, res)
	runs := e.proxy.CallsFor("ec2", "RunInstances")
	if len(runs) != 1 {
		t.Fatalf("RunInstances calls = %d", len(runs))
	}
	p := runs[0].Params
	if p.Get("EbsOptimized") != "true" {
		t.Errorf("RunInstances EbsOptimized = %q, want true (ebs_optimized)", p.Get("EbsOptimized"))
	}
	var encrypted []string
	for k, v := range p {
		if strings.HasPrefix(k, "BlockDeviceMapping.") && strings.HasSuffix(k, ".Ebs.Encrypted") && v[0] == "true" {
			n := strings.TrimSuffix(k, ".Ebs.Encrypted")
			encrypted = append(encrypted, p.Get(n+".DeviceName"))
			if got := p.Get(n + ".Ebs.KmsKeyId"); got != buildKey {
				t.Errorf("RunInstances %s KmsKeyId = %q, want %q", p.Get(n+".DeviceName"), got, buildKey)
			}
		}
	}
	if !slices.Equal(encrypted, []string{"/dev/xvda"}) {
		t.Errorf("RunInstances encrypted devices = %v, want the source's root /dev/xvda; params %v", encrypted, p)
	}
	var copies []string
	for _, c := range e.proxy.CallsFor("ec2", "CopyImage") {
		copies = append(copies, c.Region)
		if c.Params.Get("Encrypted") != "true" || c.Params.Get("KmsKeyId") != euKey {
			t.Errorf("CopyImage into %s: Encrypted=%q KmsKeyId=%q, want true and %s", c.Region, c.Params.Get("Encrypted"), c.Params.Get("KmsKeyId"), euKey)
		}
	}
	if !slices.Equal(copies, []string{euRegion}) {
		t.Errorf("CopyImage into %v, want only %s (no copy in the build region)", copies, euRegion)
	}
	if got := sortedKeys(amis); !slices.Equal(got, []string{euRegion, e2eRegion}) {
		t.Errorf("artifact regions = %v", got)
	}
	if got, want := sortedCopy(e.leaksSince(t, base).Images), imageRef(amis); !slices.Equal(got, want) {
		t.Errorf("images left = %v, want exactly the artifact %v", got, want)
	}
}

// TestE2EBuilderCopyFailureLeavesNothing fails the second region's copy
// after the first was made: no AMI is left in any region.
func TestE2EBuilderCopyFailureLeavesNothing(t *testing.T) {
	e := newRegionsEnv(t)
	base := e.snapshotAll(t)
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if awstest.Matches(c, "ec2", "ModifyImageAttribute") && c.Region == apRegion {
			return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
		}
		return nil
	})
	defer e.proxy.SetFault(nil)
	tpl := e.template(tmpl{
		SourceAMI: e.sourceAMI,
		AMIName:   "e2e-copy-fails-{{timestamp}}",
		Source: fmt.Sprintf(`
  ami_regions = [%q, %q]
  ami_users   = [%q]`, euRegion, apRegion, shareAccount),
		NoProvision: true,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build"}, Template: tpl})
	if res.ExitCode == 0 {
		t.Fatal("packer build succeeded although sharing in " + apRegion + " failed")
	}
	if !strings.Contains(res.Output(), "UnauthorizedOperation") {
		t.Errorf("the output does not name the failure:\n%s", res.Output())
	}
	if n := len(e.proxy.CallsFor("ec2", "CopyImage")); n != 2 {
		t.Errorf("CopyImage calls = %d, want 2 (the failure came after the copies started)", n)
	}
	if l := e.leaksSince(t, base); !l.Empty() {
		t.Errorf("the failed build left:\n%s", l)
	}
}

// TestE2EBuilderSkipSaveBuildRegion keeps only the copies.
func TestE2EBuilderSkipSaveBuildRegion(t *testing.T) {
	e := newRegionsEnv(t)
	base := e.snapshotAll(t)
	name := fmt.Sprintf("e2e-skip-save-%d", time.Now().UnixNano())
	tpl := e.template(tmpl{
		SourceAMI: e.sourceAMI,
		AMIName:   name,
		Source: fmt.Sprintf(`
  ami_regions            = [%q]
  skip_save_build_region = true`, euRegion),
		NoProvision: true,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := artifactAMIs(t, res)
	if got := sortedKeys(amis); !slices.Equal(got, []string{euRegion}) {
		t.Fatalf("artifact regions = %v, want only %s", got, euRegion)
	}
	out, err := e.regionClient(euRegion).DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{amis[euRegion]}})
	if err != nil || len(out.Images) != 1 || aws.ToString(out.Images[0].Name) != name {
		t.Errorf("the copy in %s: %v %v, want it named %q", euRegion, out, err, name)
	}
	if got, want := sortedCopy(e.leaksSince(t, base).Images), imageRef(amis); !slices.Equal(got, want) {
		t.Errorf("images left = %v, want only the copy %v (the build region's temporary AMI removed)", got, want)
	}
	creates := e.proxy.CallsFor("ec2", "CreateImage")
	if len(creates) != 1 || creates[0].Params.Get("Name") == name {
		t.Errorf("CreateImage names %v, want one temporary name other than %q", creates, name)
	}
}

// TestE2EBuilderSkipCreateAMI provisions and makes no AMI.
func TestE2EBuilderSkipCreateAMI(t *testing.T) {
	e := newRegionsEnv(t)
	base := e.snapshotAll(t)
	tpl := e.template(tmpl{
		SourceAMI:   e.sourceAMI,
		AMIName:     "e2e-skip-create-{{timestamp}}",
		Source:      "\n  skip_create_ami = true\n  ami_regions = [\"" + euRegion + "\"]",
		NoProvision: true,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	if n := len(e.proxy.CallsFor("ec2", "RunInstances")); n != 1 {
		t.Errorf("RunInstances calls = %d, want 1: the instance is still built", n)
	}
	for _, a := range []string{"CreateImage", "CopyImage"} {
		if n := len(e.proxy.CallsFor("ec2", a)); n != 0 {
			t.Errorf("%s calls = %d, want none", a, n)
		}
	}
	if ids := packertest.ArtifactIDs(res.Stdout)["ami-ebs.e2e"]; len(ids) != 0 {
		t.Errorf("artifact %q, want none", ids)
	}
	if l := e.leaksSince(t, base); !l.Empty() {
		t.Errorf("the build left:\n%s", l)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}
