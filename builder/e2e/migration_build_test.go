//go:build unix

package e2e

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// corpusBuild is what building one migrated corpus template must leave in
// AWS.
type corpusBuild struct {
	file string
	// vars are -var arguments, as a CI job passes them.
	vars []string
	// amis are the artifact's regions per build name (such as
	// "ami-ebs.web"); no entry means the build has no artifact.
	amis map[string][]string
	// launch and snapshot are the permissions every AMI and its snapshots
	// must carry ("account:…", "group:all", "org:…", "ou:…").
	launch, snapshot []string
	// launchOf replaces launch for the named builds.
	launchOf map[string][]string
	// tags must be on every AMI (a subset of its tags).
	tags map[string]string
	// noImageIn are regions where no AMI of the run may exist.
	noImageIn []string
	// runParams must be in the RunInstances request (moto drops many of
	// them).
	runParams map[string]string
	// setup, when set, prepares moto for the template before the baseline
	// is taken; check then asserts the build's requests.
	setup func(t *testing.T, w *world) corpusSetup
	check func(t *testing.T, w *world, s corpusSetup)
}

const (
	corpusShareAccount = "444455556666"
	corpusOrg          = "arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5"
)

var corpusBuilds = []corpusBuild{
	{
		file: "ci-pr-check-skip-create.pkr.hcl",
		amis: map[string][]string{},
	},
	{
		// As CI builds it: shared and copied.
		file:   "dev-al2023-base.pkr.hcl",
		vars:   []string{"-var", `ami_users=["` + corpusShareAccount + `"]`, "-var", `ami_regions=["` + euRegion + `"]`, "-var", "environment=ci"},
		amis:   map[string][]string{"ami-ebs.al2023": {euRegion, buildRegion}},
		launch: []string{"account:" + corpusShareAccount},
		tags:   map[string]string{"Environment": "ci", "BaseAMI": ebsSourceAMI, "BaseAMIName": ebsSourceName, "ManagedBy": "packer"},
	},
	{
		// As a developer builds it: the variables' empty defaults.
		file: "dev-al2023-base.pkr.hcl",
		amis: map[string][]string{"ami-ebs.al2023": {buildRegion}},
		tags: map[string]string{"Environment": "dev"},
	},
	{
		file:      "dr-copy-skip-build-region.pkr.hcl",
		amis:      map[string][]string{"ami-ebs.dr": {apRegion, euRegion}},
		noImageIn: []string{buildRegion},
	},
	{
		file:     "dr-snapshot-sharing.pkr.hcl",
		amis:     map[string][]string{"ami-ebs.app": {euRegion, buildRegion}},
		launch:   []string{"account:210987654321"},
		snapshot: []string{"account:210987654321"},
	},
	{
		file: "dynamic-tag-blocks.pkr.hcl",
		amis: map[string][]string{"ami-ebs.tagged": {buildRegion}},
		tags: map[string]string{"CostCenter": "platform-0042", "Owner": "platform@example.com", "Environment": "shared", "Compliance": "baseline"},
	},
	{
		file: "org-golden-shared.pkr.hcl",
		amis: map[string][]string{"golden.ami-ebs.golden": {apRegion, euRegion, buildRegion}},
		launch: []string{"account:" + corpusShareAccount, "org:" + corpusOrg,
			"ou:arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cd34ef56",
			"ou:arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-77aa88bb"},
		snapshot: []string{"account:" + corpusShareAccount},
	},
	{
		file:     "public-community-image.pkr.hcl",
		amis:     map[string][]string{"ami-ebs.appliance": {apRegion, euRegion, buildRegion}},
		launch:   []string{"group:all"},
		snapshot: []string{"group:all"},
		tags:     map[string]string{"Version": "3.4.0", "License": "Apache-2.0"},
	},
	{
		file:   "legacy-public-share.json",
		amis:   map[string][]string{"ami-ebs": {apRegion, euRegion, buildRegion}},
		launch: []string{"group:all"},
	},
	{
		file:     "legacy-two-builders.json",
		amis:     map[string][]string{"ami-ebs.app": {euRegion}, "ami-ebs.bastion": {euRegion}},
		launchOf: map[string][]string{"ami-ebs.app": {"account:" + corpusShareAccount}},
		tags:     map[string]string{"SourceAMI": ebsSourceAMI},
	},
	{
		file: "licensed-dedicated-host.pkr.hcl",
		amis: map[string][]string{"ami-ebs.licensed": {buildRegion}},
		tags: map[string]string{"Licensing": "dedicated"},
		runParams: map[string]string{
			"Placement.Tenancy": "dedicated",
			"LicenseSpecification.1.LicenseConfigurationArn":                 "arn:aws:license-manager:us-east-1:111122223333:license-configuration:lic-0f0e0d0c0b0a09080706050403020100",
			"CapacityReservationSpecification.CapacityReservationPreference": "none",
			"CreditSpecification.CpuCredits":                                 "unlimited",
			"EnclaveOptions.Enabled":                                         "true",
			"InstanceInitiatedShutdownBehavior":                              "stop",
			"EbsOptimized":                                                   "true",
			"BlockDeviceMapping.1.DeviceName":                                "xvdca",
		},
	},
	{
		// Launched in the most free tagged subnet of the template's VPC,
		// with its security group and no public IP.
		file:  "private-subnet-network.pkr.hcl",
		amis:  map[string][]string{"ami-ebs.private": {buildRegion}},
		tags:  map[string]string{"Name": "private-base"},
		setup: setUpPrivateNetwork,
		check: checkPrivateNetwork,
	},
	{
		// The temporary instance profile's calls, its removal and the
		// failure paths: TestMigrationTemporaryIAMProfile.
		file: "artifact-reader-temporary-profile.pkr.hcl",
		amis: map[string][]string{"ami-ebs.reader": {buildRegion}},
		tags: map[string]string{"Name": "reader"},
	},
	{
		// Launched through an instant fleet; checkSpotBuild checks the
		// requests moto drops parameters of.
		file:  "ci-runner-spot.pkr.hcl",
		amis:  map[string][]string{"ami-ebs.runner": {buildRegion}},
		tags:  map[string]string{"Name": "ci-runner", "CostCenter": "ci-0017"},
		check: checkSpotBuild,
	},
	{
		// Reached through the Session Manager stand-in and the stand-in
		// session-manager-plugin (session_manager_test.go checks the calls).
		file: "ssm-no-inbound.pkr.hcl",
		amis: map[string][]string{"ami-ebs.hardened": {buildRegion}},
		tags: map[string]string{"Access": "session-manager", "BaseAMI": ebsSourceAMI},
	},
	{
		file:   "web-api-multi-source.pkr.hcl",
		amis:   map[string][]string{"ami-ebs.web": {buildRegion}, "ami-ebs.api": {buildRegion}},
		launch: []string{"account:" + corpusShareAccount},
	},
}

// TestMigrationCorpusBuilds builds migrated corpus templates against the
// emulator (pointed at the loopback SSH server, nothing else changed) and
// checks what each leaves in AWS: the AMIs in every region, their launch
// and snapshot permissions and tags, and nothing else.
func TestMigrationCorpusBuilds(t *testing.T) {
	w := theWorld(t)
	files := map[string]corpusFile{}
	for _, f := range corpusFiles(t) {
		files[f.Name] = f
	}
	built := map[string]bool{}
	ran := 0
	for _, cb := range corpusBuilds {
		name := strings.TrimSuffix(strings.TrimSuffix(cb.file, ".pkr.hcl"), ".json")
		if len(cb.vars) > 0 {
			name += "/with-vars"
		}
		t.Run(name, func(t *testing.T) {
			f, ok := files[cb.file]
			if !ok {
				t.Fatalf("%s is not in the corpus", cb.file)
			}
			if !f.JSON() && !strings.Contains(f.Src, "# build: yes") {
				t.Fatalf("%s is not marked \"# build: yes\"", cb.file)
			}
			built[cb.file] = true
			ran++
			src := w.corpusTemplate(t, f)
			var setup corpusSetup
			if cb.setup != nil {
				setup = cb.setup(t, w)
				for from, to := range setup.replace {
					src = strings.ReplaceAll(src, from, to)
				}
			}
			base := w.baseline(t)
			tplName := ""
			if f.JSON() {
				tplName = "template.json"
			}
			res := w.run(t, runSpec{
				Template:     src,
				TemplateName: tplName,
				Args:         append([]string{"build", "-machine-readable"}, cb.vars...),
				Fault:        awstest.FirstFault(standInProtection, awstest.SessionManagerStandIn()),
			})
			if res.ExitCode != 0 {
				t.Fatalf("packer build exited %d:\n%s", res.ExitCode, res.Output())
			}
			for k, want := range cb.runParams {
				for _, c := range w.proxy.CallsFor("ec2", "RunInstances") {
					if got := c.Params.Get(k); got != want {
						t.Errorf("RunInstances %s = %q, want %q", k, got, want)
					}
				}
			}
			arts := packertest.ArtifactIDs(res.Stdout)
			var keep []string
			all := map[string]string{}
			for buildName, wantRegions := range cb.amis {
				amis := parseArtifact(t, arts[buildName])
				if got := sortedKeys(amis); !slices.Equal(got, wantRegions) {
					t.Errorf("%s: artifact regions %v, want %v", buildName, got, wantRegions)
				}
				for region, id := range amis {
					w.checkCorpusAMI(t, cb, buildName, region, id)
					all[buildName+"/"+region] = id
				}
				keep = append(keep, w.artifactKeep(t, amis)...)
			}
			for buildName := range arts {
				if _, ok := cb.amis[buildName]; !ok {
					t.Errorf("unexpected artifact of %s: %q", buildName, arts[buildName])
				}
			}
			for _, region := range cb.noImageIn {
				for _, k := range keep {
					if strings.HasPrefix(k, region+":ami-") {
						t.Errorf("an AMI is left in %s: %s", region, k)
					}
				}
			}
			if cb.check != nil {
				cb.check(t, w, setup)
			}
			w.expectNoLeaks(t, base, keep...)
			for key, id := range all {
				_, region, _ := strings.Cut(key, "/")
				w.removeAMIs(t, map[string]string{region: id})
			}
		})
	}
	if ran < len(corpusBuilds) {
		return // a -run filter chose some builds
	}
	// Every template marked for building is built.
	for name, f := range files {
		if strings.Contains(f.Src, "# build: yes") && !built[name] {
			t.Errorf("%s is marked \"# build: yes\" but has no entry in corpusBuilds", name)
		}
	}
	if len(built) < len(files)/3 {
		t.Errorf("%d of %d corpus templates are built; build at least a third", len(built), len(files))
	}
}

// TestMigrationCorpusFailureAfterCopiesLeavesNothing builds a migrated
// template whose sharing fails in the last region after every copy was
// made: nothing of the run may remain in any region.
func TestMigrationCorpusFailureAfterCopiesLeavesNothing(t *testing.T) {
	w := theWorld(t)
	var f corpusFile
	for _, c := range corpusFiles(t) {
		if c.Name == "org-golden-shared.pkr.hcl" {
			f = c
		}
	}
	src := w.corpusTemplate(t, f)
	base := w.baseline(t)
	res := w.run(t, runSpec{
		Template: src,
		Fault: func(r *http.Request, c awstest.Call) *awstest.Fault {
			if awstest.Matches(c, "ec2", "ModifySnapshotAttribute") && c.Region == apRegion {
				return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
			}
			return standInProtection(r, c)
		},
	})
	if res.ExitCode == 0 {
		t.Fatal("packer build succeeded although sharing the snapshots in " + apRegion + " failed")
	}
	if n := len(w.proxy.CallsFor("ec2", "CopyImage")); n != 2 {
		t.Errorf("CopyImage calls = %d, want 2: the failure must come after the copies started", n)
	}
	w.expectNoLeaks(t, base)
}

// corpusTemplate migrates f and points it at the loopback SSH server.
func (w *world) corpusTemplate(t *testing.T, f corpusFile) string {
	t.Helper()
	src, err := localize(migrate(f.Name, f.Src), loopback{Port: w.sshd.Port, User: w.sshd.User})
	if err != nil {
		t.Fatalf("localize %s: %v", f.Name, err)
	}
	return src
}

// checkCorpusAMI checks one AMI of a corpus build.
func (w *world) checkCorpusAMI(t *testing.T, cb corpusBuild, buildName, region, id string) {
	t.Helper()
	img, ok := w.describeImage(t, region, id)
	if !ok {
		t.Errorf("%s does not exist in %s", id, region)
		return
	}
	if got := tagMap(img.Tags); !containsAll(got, cb.tags) {
		t.Errorf("%s in %s: tags %v, want at least %v", id, region, got, cb.tags)
	}
	ctx := context.Background()
	out, err := w.ec2[region].DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(id), Attribute: types.ImageAttributeNameLaunchPermission})
	if err != nil {
		t.Fatalf("DescribeImageAttribute %s: %v", id, err)
	}
	var launch []string
	for _, p := range out.LaunchPermissions {
		switch {
		case p.UserId != nil:
			launch = append(launch, "account:"+*p.UserId)
		case p.Group != "":
			launch = append(launch, "group:"+string(p.Group))
		case p.OrganizationArn != nil:
			launch = append(launch, "org:"+*p.OrganizationArn)
		case p.OrganizationalUnitArn != nil:
			launch = append(launch, "ou:"+*p.OrganizationalUnitArn)
		}
	}
	sort.Strings(launch)
	wantLaunch := cb.launch
	if l, ok := cb.launchOf[buildName]; ok {
		wantLaunch = l
	}
	if want := sortedStrings(wantLaunch); !slices.Equal(launch, want) {
		t.Errorf("%s in %s: launch permissions %v, want %v", id, region, launch, want)
	}
	for _, snap := range snapshotIDs(img) {
		sa, err := w.ec2[region].DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(snap), Attribute: types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil {
			t.Fatalf("DescribeSnapshotAttribute %s: %v", snap, err)
		}
		var got []string
		for _, p := range sa.CreateVolumePermissions {
			switch {
			case p.UserId != nil:
				got = append(got, "account:"+*p.UserId)
			case p.Group != "":
				got = append(got, "group:"+string(p.Group))
			}
		}
		sort.Strings(got)
		if want := sortedStrings(cb.snapshot); !slices.Equal(got, want) {
			t.Errorf("%s snapshot %s in %s: create-volume permissions %v, want %v", id, snap, region, got, want)
		}
	}
}

// standInProtection answers deprecation and deregistration protection,
// which moto does not implement (HTTP 500), with HTTP 200.
func standInProtection(_ *http.Request, c awstest.Call) *awstest.Fault {
	switch c.Action {
	case "EnableImageDeprecation", "EnableImageDeregistrationProtection", "DisableImageDeregistrationProtection":
		return &awstest.Fault{Name: "success stand-in", Status: http.StatusOK}
	}
	return nil
}

// parseArtifact reads the artifact ID of a build as region → AMI. A
// post-processor that passes the artifact on (manifest) repeats its ID.
func parseArtifact(t *testing.T, ids []string) map[string]string {
	t.Helper()
	ids = slices.Compact(slices.Clone(ids))
	if len(ids) != 1 {
		t.Fatalf("artifact ids %q, want one", ids)
	}
	m := map[string]string{}
	for _, part := range strings.Split(ids[0], ",") {
		region, id, ok := strings.Cut(part, ":")
		if !ok {
			t.Fatalf("artifact id %q is not region:ami-…", ids[0])
		}
		m[region] = id
	}
	return m
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func containsAll(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
