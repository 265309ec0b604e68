//go:build unix

package distribute

// End-to-end tests: the real packer binary (./bin/packer) with the plugin
// installed, against moto behind the recording proxy. Every assertion on
// AWS state reads moto directly, from the owner account.

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// TestE2EBuildThenDistribute builds an AMI with ami-ebs (no communicator)
// and distributes it to two more regions with sharing to accounts and an
// organization, tags and snapshot permissions.
func TestE2EBuildThenDistribute(t *testing.T) {
	e := newE2EWorld(t)
	name := uniqueName(t, "e2e-dist")
	manifest := filepath.Join(e.dir, "manifest.json")
	tpl := fmt.Sprintf(`source "ami-ebs" "e2e" {
  region        = %q
  instance_type = "t3.micro"
  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  communicator = "none"
  ami_name     = %q
}

build {
  sources = ["source.ami-ebs.e2e"]

  post-processor "ami-distribute" {
    regions         = [%q, %q]
    ami_users       = [%q]
    ami_org_arns    = [%q]
    snapshot_users  = [%q]
    tags = {
      App    = "web"
      Region = "{{ .Region }}"
      Source = "{{ .SourceAMI }}"
    }
    snapshot_tags = {
      Snap = "yes"
    }
    manifest_output = %q
  }
}
`, srcRegion, name, euRegion, apRegion, shareAccount, orgARN, snapAccount, manifest)

	res := e.build(t, tpl)
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := distributedAMIs(t, res, "ami-ebs.e2e")
	if len(amis) != 3 {
		t.Fatalf("distributed AMIs = %v, want one in each of %q", amis, allRegions)
	}
	built := amis[srcRegion]
	if ids := e.proxy.CallsFor("ec2", "CreateImage"); len(ids) != 1 {
		t.Fatalf("CreateImage calls = %d, want 1", len(ids))
	}

	for _, region := range allRegions {
		id := amis[region]
		img, ok := e.image(t, region, id)
		if !ok {
			t.Fatalf("%s: %s does not exist", region, id)
		}
		if got := aws.ToString(img.Name); got != name {
			t.Errorf("%s: name = %q, want %q", region, got, name)
		}
		if got, want := tagMap(img.Tags), map[string]string{"App": "web", "Region": region, "Source": built}; !mapsContain(got, want) {
			t.Errorf("%s: tags = %v, want %v", region, got, want)
		}
		if got, want := e.launchPermissions(t, region, id), []string{"account:" + shareAccount, "org:" + orgARN}; !slices.Equal(got, want) {
			t.Errorf("%s: launch permissions = %q, want %q", region, got, want)
		}
		snaps := snapshotIDs(img)
		if len(snaps) == 0 {
			t.Errorf("%s: %s has no snapshot", region, id)
		}
		for _, s := range snaps {
			if got := e.volumePermissions(t, region, s); !slices.Equal(got, []string{"account:" + snapAccount}) {
				t.Errorf("%s: snapshot %s create-volume permissions = %q", region, s, got)
			}
			if got := e.snapshotTags(t, region, s); !mapsContain(got, map[string]string{"Snap": "yes", "App": "web"}) {
				t.Errorf("%s: snapshot %s tags = %v", region, s, got)
			}
		}
	}

	// The per-region table reached packer's output.
	out := res.Output()
	for _, w := range []string{"Per-region results", "REGION", euRegion, apRegion, "available"} {
		if !strings.Contains(out, w) {
			t.Errorf("packer output lacks %q", w)
		}
	}

	// The manifest lists every region, the source first.
	m := readManifest(t, manifest)
	if m.Source.ImageID != built || m.Source.Region != srcRegion {
		t.Errorf("manifest source = %+v, want %s in %s", m.Source, built, srcRegion)
	}
	got := map[string]string{}
	for _, r := range m.Regions {
		if r.Status != distribute.StatusAvailable {
			t.Errorf("manifest: %s is %s", r.Region, r.Status)
		}
		got[r.Region] = r.ImageID
		if !slices.Equal(r.SharedWith.Accounts, []string{shareAccount}) || !slices.Equal(r.SharedWith.OrgARNs, []string{orgARN}) {
			t.Errorf("manifest: %s shared with %+v", r.Region, r.SharedWith)
		}
	}
	if len(m.Regions) != 3 || !m.Regions[0].Source || fmt.Sprint(got) != fmt.Sprint(amis) {
		t.Errorf("manifest regions = %v, want %v with the source first", got, amis)
	}

	// Nothing but the three AMIs and their snapshots is left.
	l := e.leaks(t)
	var wantImages []string
	for _, r := range allRegions {
		wantImages = append(wantImages, r+":"+amis[r])
	}
	if !slices.Equal(l.Images, sortedCopy(wantImages)) {
		t.Errorf("images = %q, want %q", l.Images, sortedCopy(wantImages))
	}
	l.Images, l.Snapshots = nil, nil
	if !l.Empty() {
		t.Errorf("the build left behind:\n%s", l)
	}
}

// TestE2EDistributeExistingAMI distributes an AMI that exists already,
// with a null source and source_ami.
func TestE2EDistributeExistingAMI(t *testing.T) {
	e := newE2EWorld(t)
	name := uniqueName(t, "e2e-existing")
	src, _ := e.registerImage(t, srcRegion, name, nil)
	alias := "alias/" + uniqueName(t, "team-key")
	e.kmsKey(t, apRegion, alias)
	e.proxy.Reset()
	res := e.build(t, nullTemplate(fmt.Sprintf(`
    source_ami = %q
    regions    = [%q, %q]
    ami_name   = "{{ .SourceAMIName }}-{{ .Region }}"
    ami_users  = [%q]

    region_override {
      region     = %q
      ami_name   = "{{ .SourceAMIName }}-override"
      kms_key_id = %q
      ami_users  = [%q]
    }
`, src, euRegion, apRegion, shareAccount, apRegion, alias, snapAccount)))
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := distributedAMIs(t, res, "null.existing")
	if amis[srcRegion] != src || amis[euRegion] == "" || amis[apRegion] == "" || len(amis) != 3 {
		t.Fatalf("distributed AMIs = %v, want %s in %s and copies in %s and %s", amis, src, srcRegion, euRegion, apRegion)
	}
	wantNames := map[string]string{srcRegion: name, euRegion: name + "-" + euRegion, apRegion: name + "-override"}
	wantPerms := map[string][]string{srcRegion: {"account:" + shareAccount}, euRegion: {"account:" + shareAccount}, apRegion: {"account:" + snapAccount}}
	for _, region := range allRegions {
		img, ok := e.image(t, region, amis[region])
		if !ok {
			t.Fatalf("%s: %s missing", region, amis[region])
		}
		if got := aws.ToString(img.Name); got != wantNames[region] {
			t.Errorf("%s: name = %q, want %q", region, got, wantNames[region])
		}
		if got := e.launchPermissions(t, region, amis[region]); !slices.Equal(got, wantPerms[region]) {
			t.Errorf("%s: launch permissions = %q, want %q", region, got, wantPerms[region])
		}
	}
	// moto ignores encryption on CopyImage: check the requests.
	copies := e.proxy.CallsFor("ec2", "CopyImage")
	if len(copies) != 2 {
		t.Fatalf("CopyImage calls = %d, want 2", len(copies))
	}
	for _, c := range copies {
		if c.Params.Get("SourceImageId") != src || c.Params.Get("SourceRegion") != srcRegion {
			t.Errorf("CopyImage in %s: %v", c.Region, c.Params)
		}
		enc, key := c.Params.Get("Encrypted"), c.Params.Get("KmsKeyId")
		switch c.Region {
		case apRegion:
			if enc != "true" || key != alias {
				t.Errorf("CopyImage into %s: Encrypted=%q KmsKeyId=%q, want true and %s", c.Region, enc, key, alias)
			}
		default:
			if enc != "" || key != "" {
				t.Errorf("CopyImage into %s: Encrypted=%q KmsKeyId=%q, want neither", c.Region, enc, key)
			}
		}
	}
}

// TestE2ERegionFailureLeavesNoCopy fails every CopyImage into one region;
// the copy already made in the other region is removed and the source
// AMI is untouched.
func TestE2ERegionFailureLeavesNoCopy(t *testing.T) {
	e := newE2EWorld(t)
	name := uniqueName(t, "e2e-fail")
	src, srcSnaps := e.registerImage(t, srcRegion, name, map[string]string{"Owner": "team"})
	e.proxy.Reset()
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if awstest.Matches(c, "ec2", "CopyImage") && c.Region == apRegion {
			return awstest.ErrorFault("InvalidRequest", http.StatusBadRequest)
		}
		return nil
	})
	res := e.build(t, nullTemplate(fmt.Sprintf(`
    source_ami       = %q
    regions          = [%q, %q]
    copy_concurrency = 1
    ami_users        = [%q]
    tags = {
      Distributed = "yes"
    }
`, src, euRegion, apRegion, shareAccount)))
	if res.ExitCode == 0 {
		t.Fatal("packer build succeeded although CopyImage fails in " + apRegion)
	}
	out := res.Output()
	for _, w := range []string{apRegion, "InvalidRequest", "removed copy", "Every copy this run made was removed again"} {
		if !strings.Contains(out, w) {
			t.Errorf("packer output lacks %q", w)
		}
	}
	var euCopy string
	for _, c := range e.proxy.CallsFor("ec2", "ModifyImageAttribute") {
		if c.Region == euRegion {
			euCopy = c.Params.Get("ImageId")
		}
	}
	if euCopy == "" {
		t.Fatal("no copy was made and shared in " + euRegion + " before the failure; the test proves nothing")
	}

	l := e.leaks(t)
	if want := regional(srcRegion, src); !slices.Equal(l.Images, want) {
		t.Errorf("images left = %q, want only the source %q", l.Images, want)
	}
	if want := regional(srcRegion, srcSnaps...); !slices.Equal(sortedCopy(l.Snapshots), want) {
		t.Errorf("snapshots left = %q, want only the source's %q", l.Snapshots, want)
	}
	img, ok := e.image(t, srcRegion, src)
	if !ok {
		t.Fatal("the source AMI is gone")
	}
	if got := tagMap(img.Tags); len(got) != 1 || got["Owner"] != "team" {
		t.Errorf("source tags = %v, want them unchanged", got)
	}
	if got := e.launchPermissions(t, srcRegion, src); len(got) != 0 {
		t.Errorf("source launch permissions = %q, want none", got)
	}
	for _, c := range e.proxy.Calls() {
		switch c.Action {
		case "DeregisterImage", "ModifyImageAttribute", "CreateTags", "ModifySnapshotAttribute", "DeleteSnapshot":
			if c.Region == srcRegion {
				t.Errorf("the failed run called %s in the source region: %v", c.Action, c.Params)
			}
		}
	}
}

// TestE2ERetention removes exactly the older releases beyond
// keep_releases in every region, with their snapshots, and nothing else.
func TestE2ERetention(t *testing.T) {
	e := newE2EWorld(t)
	family := uniqueName(t, "fam")
	sel := map[string]string{"Family": family}
	type ami struct{ region, id string }
	var snaps = map[string][]string{}
	reg := func(region, name string, tags map[string]string) ami {
		id, s := e.registerImage(t, region, name, tags)
		snaps[id] = s
		return ami{region, id}
	}
	// Oldest first; moto's creation dates have whole seconds.
	usR1, euR1, apR1 := reg(srcRegion, family+"-r1", sel), reg(euRegion, family+"-r1", sel), reg(apRegion, family+"-r1", sel)
	euInUse := reg(euRegion, family+"-r0", sel)
	otherFamily := reg(srcRegion, family+"-x", map[string]string{"Family": family + "-other"})
	outsidePattern := reg(euRegion, "unrelated-"+family, sel)
	awstest.NextSecond(t)
	usR2, euR2 := reg(srcRegion, family+"-r2", sel), reg(euRegion, family+"-r2", sel)
	awstest.NextSecond(t)
	src := reg(srcRegion, family+"-r3", sel)
	// An instance uses the oldest release in eu-west-1.
	run, err := e.clients[euRegion].RunInstances(t.Context(), runInput(euInUse.id))
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	defer e.clients[euRegion].TerminateInstances(t.Context(), terminateInput(aws.ToString(run.Instances[0].InstanceId)))
	var err2 error
	if e.baseline, err2 = awstest.TakeSnapshot(t.Context(), e.moto.Endpoint, allRegions); err2 != nil {
		t.Fatal(err2)
	}
	e.proxy.Reset()

	res := e.build(t, nullTemplate(fmt.Sprintf(`
    source_ami    = %q
    regions       = [%q, %q]
    tags          = %s
    keep_releases = 2
    retention {
      name_pattern = %q
      tags         = %s
    }
`, src.id, euRegion, apRegion, hcl(sel), family+"-*", hcl(sel))))
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := distributedAMIs(t, res, "null.existing")

	removed := []ami{usR1, euR1}
	kept := []ami{src, usR2, euR2, apR1, euInUse, otherFamily, outsidePattern,
		{euRegion, amis[euRegion]}, {apRegion, amis[apRegion]}}
	for _, a := range removed {
		if _, ok := e.image(t, a.region, a.id); ok {
			t.Errorf("%s: %s should have been removed", a.region, a.id)
		}
		for _, s := range snaps[a.id] {
			if _, err := e.clients[a.region].DescribeSnapshots(t.Context(), describeSnapshot(s)); err == nil {
				t.Errorf("%s: snapshot %s of removed %s still exists", a.region, s, a.id)
			}
		}
	}
	for _, a := range kept {
		if _, ok := e.image(t, a.region, a.id); !ok {
			t.Errorf("%s: %s was removed but must be kept", a.region, a.id)
		}
		for _, s := range snaps[a.id] {
			if _, err := e.clients[a.region].DescribeSnapshots(t.Context(), describeSnapshot(s)); err != nil {
				t.Errorf("%s: snapshot %s of kept %s: %v", a.region, s, a.id, err)
			}
		}
	}
	var deregistered []string
	for _, c := range e.proxy.CallsFor("ec2", "DeregisterImage") {
		deregistered = append(deregistered, c.Region+":"+c.Params.Get("ImageId"))
	}
	want := sortedCopy([]string{usR1.region + ":" + usR1.id, euR1.region + ":" + euR1.id})
	if got := sortedCopy(deregistered); !slices.Equal(got, want) {
		t.Errorf("DeregisterImage calls = %q, want exactly %q", got, want)
	}
	if !strings.Contains(res.Output(), "in use") {
		t.Errorf("output does not say why %s was kept", euInUse.id)
	}
}

// TestE2EDeprecationAndProtection sets deprecate_at and deregistration
// protection. moto answers HTTP 500 for both APIs, so the proxy answers
// them with HTTP 200 and the test checks the requests sent.
func TestE2EDeprecationAndProtection(t *testing.T) {
	e := newE2EWorld(t)
	name := uniqueName(t, "e2e-deprecate")
	src, _ := e.registerImage(t, srcRegion, name, nil)
	e.proxy.Reset()
	ok200 := &awstest.Fault{Name: "success stand-in", Status: http.StatusOK}
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Action == "EnableImageDeprecation" || c.Action == "EnableImageDeregistrationProtection" {
			return ok200
		}
		return nil
	})
	at := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	manifest := filepath.Join(e.dir, "manifest.json")
	res := e.build(t, nullTemplate(fmt.Sprintf(`
    source_ami   = %q
    regions      = [%q, %q]
    deprecate_at = %q
    deregistration_protection {
      enabled = true
    }
    manifest_output = %q
`, src, euRegion, apRegion, at.Format(time.RFC3339), manifest)))
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := distributedAMIs(t, res, "null.existing")
	if len(amis) != 3 {
		t.Fatalf("distributed AMIs = %v", amis)
	}
	want := map[string]string{}
	for r, id := range amis {
		want[r] = id
	}
	check := func(action, param, value string) {
		t.Helper()
		got := map[string]string{}
		for _, c := range e.proxy.CallsFor("ec2", action) {
			got[c.Region] = c.Params.Get("ImageId")
			if v := c.Params.Get(param); v != value {
				t.Errorf("%s in %s: %s = %q, want %q", action, c.Region, param, v, value)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s calls = %v, want one per region %v", action, got, want)
		}
	}
	check("EnableImageDeprecation", "DeprecateAt", at.Format("2006-01-02T15:04:05Z"))
	check("EnableImageDeregistrationProtection", "WithCooldown", "false")

	// Protection comes after every copy was shared and tagged.
	var lastCopyWork, firstProtect int
	for _, c := range e.proxy.Calls() {
		switch c.Action {
		case "CopyImage", "EnableImageDeprecation":
			lastCopyWork = c.Seq
		case "EnableImageDeregistrationProtection":
			if firstProtect == 0 {
				firstProtect = c.Seq
			}
		}
	}
	if firstProtect < lastCopyWork {
		t.Errorf("deregistration protection (call %d) started before the copies were done (call %d)", firstProtect, lastCopyWork)
	}
	m := readManifest(t, manifest)
	for _, r := range m.Regions {
		if r.DeprecateAt == nil || !r.DeprecateAt.Equal(at) || !r.Protected {
			t.Errorf("manifest %s: deprecate_at %v, protected %v", r.Region, r.DeprecateAt, r.Protected)
		}
	}
}

// TestE2EValidateBadConfig runs packer validate on bad post-processor
// configurations: each fails naming the option, without any AWS call.
func TestE2EValidateBadConfig(t *testing.T) {
	e := newE2EWorld(t)
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"valid", `source_ami = "ami-0123456789abcdef0"
    regions = ["eu-west-1"]`, nil},
		{"bad account", `source_ami = "ami-0123456789abcdef0"
    regions = ["eu-west-1"]
    ami_users = ["12345"]`, []string{"ami_users[0]", "12345", "12 digits"}},
		{"bad region", `source_ami = "ami-0123456789abcdef0"
    regions = ["eu-west-1", "Frankfurt"]`, []string{"regions[1]", "Frankfurt"}},
		{"encrypt_boot false with key", `source_ami = "ami-0123456789abcdef0"
    regions = ["eu-west-1"]
    encrypt_boot = false
    kms_key_id = "alias/team"`, []string{"encrypt_boot, kms_key_id"}},
		{"bad deprecate_at", `source_ami = "ami-0123456789abcdef0"
    regions = ["eu-west-1"]
    deprecate_at = "next year"`, []string{"deprecate_at", "RFC 3339"}},
		{"retention without selector", `source_ami = "ami-0123456789abcdef0"
    regions = ["eu-west-1"]
    keep_releases = 3`, []string{"retention", "selector"}},
		{"unknown option", `source_ami = "ami-0123456789abcdef0"
    region_list = ["eu-west-1"]`, []string{"region_list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.Reset()
			res := e.packer.Validate(t, nullTemplate(tc.body))
			if ok := res.ExitCode == 0; ok != (tc.want == nil) {
				t.Fatalf("packer validate exit %d, want success=%v\n%s", res.ExitCode, tc.want == nil, res.Output())
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Output(), w) {
					t.Errorf("output does not mention %q:\n%s", w, res.Output())
				}
			}
			if calls := e.proxy.Calls(); len(calls) != 0 {
				t.Errorf("packer validate made %d AWS calls: %v", len(calls), calls)
			}
		})
	}
}

// TestE2EInterruptRemovesCopies interrupts packer (SIGINT, as Ctrl-C)
// while the second region's copy hangs; the copy already made in the first
// region is removed and the source is untouched.
func TestE2EInterruptRemovesCopies(t *testing.T) {
	e := newE2EWorld(t)
	name := uniqueName(t, "e2e-interrupt")
	src, srcSnaps := e.registerImage(t, srcRegion, name, nil)
	e.proxy.Reset()
	// The first CopyImage into the second region hangs and never reaches
	// EC2; packer is interrupted once that call is at the proxy (not when
	// the plugin announces it, which can be before the request is sent),
	// and the cleanup's replay of it goes through.
	var hung atomic.Bool
	arrived := make(chan struct{})
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if awstest.Matches(c, "ec2", "CopyImage") && c.Region == apRegion && hung.CompareAndSwap(false, true) {
			close(arrived)
			return awstest.LatencyFault(2 * time.Minute)
		}
		return nil
	})
	res := e.packer.RunT(t, packertest.RunOptions{
		Args: []string{"build"},
		Template: nullTemplate(fmt.Sprintf(`
    source_ami       = %q
    regions          = [%q, %q]
    copy_concurrency = 1
    ami_users        = [%q]
`, src, euRegion, apRegion, shareAccount)),
		Interrupt: arrived,
		Timeout:   60 * time.Second,
	})
	if !res.Interrupted {
		t.Fatal("the copy into " + apRegion + " never started; packer was not interrupted")
	}
	if res.TimedOut {
		t.Fatal("packer did not stop after SIGINT")
	}
	if res.ExitCode == 0 {
		t.Error("interrupted packer build exited 0")
	}
	if len(e.proxy.CallsFor("ec2", "DeregisterImage")) == 0 {
		t.Error("no DeregisterImage call: the copy in " + euRegion + " was not removed")
	}
	l := e.leaks(t)
	if want := regional(srcRegion, src); !slices.Equal(l.Images, want) {
		t.Errorf("images left = %q, want only the source %q", l.Images, want)
	}
	if want := regional(srcRegion, srcSnaps...); !slices.Equal(sortedCopy(l.Snapshots), want) {
		t.Errorf("snapshots left = %q, want only the source's %q", l.Snapshots, want)
	}
	if got := e.launchPermissions(t, srcRegion, src); len(got) != 0 {
		t.Errorf("source launch permissions = %q, want none", got)
	}
}
