//go:build unix

package e2e

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// spotCorpusFile is the corpus template built on a spot instance.
const spotCorpusFile = "ci-runner-spot.pkr.hcl"

// checkSpotBuild checks the requests of the spot corpus build: the launch
// template and the instant fleet it launched from (moto drops the maximum
// price, the groups and the block devices of the template, so they are
// checked as sent), no on-demand launch and no stop, the removal of the
// fleet, the instance and the template, and that example/iam's ami-ebs
// policy allows every call.
func checkSpotBuild(t *testing.T, w *world, _ corpusSetup) {
	t.Helper()
	lts := w.proxy.CallsFor("ec2", "CreateLaunchTemplate")
	fleets := w.proxy.CallsFor("ec2", "CreateFleet")
	if len(lts) != 1 || len(fleets) != 1 {
		t.Fatalf("%d CreateLaunchTemplate and %d CreateFleet calls, want one each", len(lts), len(fleets))
	}
	for _, a := range []string{"RunInstances", "StopInstances"} {
		if n := len(w.proxy.CallsFor("ec2", a)); n != 0 {
			t.Errorf("%d %s calls; a spot build instance is launched by the fleet and not stopped", n, a)
		}
	}
	lt := lts[0].Params
	for k, v := range map[string]string{
		"LaunchTemplateData.ImageId":                                    ebsSourceAMI,
		"LaunchTemplateData.InstanceMarketOptions.MarketType":           "spot",
		"LaunchTemplateData.InstanceMarketOptions.SpotOptions.MaxPrice": "0.0300",
		"LaunchTemplateData.BlockDeviceMapping.1.DeviceName":            "/dev/xvda",
		"LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeSize":        "30",
		"LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeType":        "gp3",
		"LaunchTemplateData.InstanceType":                               "",
	} {
		if got := lt.Get(k); got != v {
			t.Errorf("CreateLaunchTemplate %s = %q, want %q", k, got, v)
		}
	}
	if lt.Get("LaunchTemplateData.SecurityGroupId.1") == "" || lt.Get("LaunchTemplateData.KeyName") == "" {
		t.Errorf("the launch template lacks the temporary security group or key pair: %v", lt)
	}
	wantSpotTags := map[string]string{"CostCenter": "ci-0017", "Purpose": "runner-image-build", "BaseImage": ebsSourceName}
	if got := queryTags(lt, "TagSpecification.1.Tag"); lt.Get("TagSpecification.1.ResourceType") != "launch-template" || !containsAll(got, wantSpotTags) {
		t.Errorf("launch template tags %v, want at least %v", got, wantSpotTags)
	}
	fl := fleets[0].Params
	for k, v := range map[string]string{
		"Type": "instant",
		"TargetCapacitySpecification.TotalTargetCapacity":       "1",
		"TargetCapacitySpecification.DefaultTargetCapacityType": "spot",
		"LaunchTemplateConfigs.1.Overrides.1.InstanceType":      "t3.medium",
		"LaunchTemplateConfigs.1.Overrides.2.InstanceType":      "t3a.medium",
		"LaunchTemplateConfigs.1.Overrides.3.InstanceType":      "m5.large",
		"SpotOptions.AllocationStrategy":                        "price-capacity-optimized",
		"TagSpecification.1.ResourceType":                       "fleet",
	} {
		if got := fl.Get(k); got != v {
			t.Errorf("CreateFleet %s = %q, want %q", k, got, v)
		}
	}
	if tok := fl.Get("ClientToken"); tok == "" || tok != lt.Get("ClientToken") {
		t.Errorf("CreateFleet ClientToken %q, launch template's %q; want one token for both", tok, lt.Get("ClientToken"))
	}
	wantFleetTags := map[string]string{"CostCenter": "ci-0017", "Purpose": "runner-image-build", instance.CreateTokenTag: fl.Get("ClientToken")}
	if got := queryTags(fl, "TagSpecification.1.Tag"); !containsAll(got, wantFleetTags) || len(got) != len(wantFleetTags) {
		t.Errorf("fleet tags %v, want %v", got, wantFleetTags)
	}
	checkSpotCleanupOrder(t, w.proxy.Calls())

	pol, err := awstest.LoadPolicy(filepath.Join("..", "..", "example", "iam", "ami-ebs-policy.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	denied, _ := pol.Denied(w.proxy.Calls())
	for _, problem := range denied {
		t.Errorf("example/iam/ami-ebs-policy.json: %s", problem)
	}
}

// checkSpotCleanupOrder checks that the fleet is deleted, then the instance
// terminated, then the launch template and the temporary security group
// deleted.
func checkSpotCleanupOrder(t *testing.T, calls []awstest.Call) {
	t.Helper()
	last := map[string]int{}
	for i, c := range calls {
		if c.Service == "ec2" && c.Status == 200 {
			last[c.Action] = i + 1
		}
	}
	order := []string{"DeleteFleets", "TerminateInstances", "DeleteLaunchTemplate"}
	for i, a := range order {
		if last[a] == 0 {
			t.Errorf("no successful %s call", a)
			continue
		}
		if i > 0 && last[a] < last[order[i-1]] {
			t.Errorf("%s came before %s", a, order[i-1])
		}
	}
	if sg := last["DeleteSecurityGroup"]; sg != 0 && sg < last["TerminateInstances"] {
		t.Error("the temporary security group was deleted before the instance was terminated")
	}
}

// TestMigrationSpotFailureLeavesNothing builds the spot corpus template with
// a failing provisioner, and interrupts it (as Ctrl-C) while it provisions
// and while the launch template and the fleet are being created: the fleet,
// the spot instance, the launch template and every other temporary resource
// are removed. In the last two, the create call is held at the proxy and
// carried out after packer gave up on it (a create whose answer is lost),
// so what it made must be found by its client token tag.
func TestMigrationSpotFailureLeavesNothing(t *testing.T) {
	w := theWorld(t)
	var f corpusFile
	for _, c := range corpusFiles(t) {
		if c.Name == spotCorpusFile {
			f = c
		}
	}
	if f.Name == "" {
		t.Fatalf("%s is not in the corpus", spotCorpusFile)
	}
	src := w.corpusTemplate(t, f)
	const provisionLine = `"uname -a",`
	if !strings.Contains(src, provisionLine) {
		t.Fatalf("the template has no %s line to replace", provisionLine)
	}
	tests := []struct {
		name      string
		provision string // replaces provisionLine
		interrupt string // the UI line to interrupt on
		holdCall  string // interrupt when this call reaches the proxy, which carries it out late
		launched  bool   // the instance was running when the run ended
	}{
		{name: "provisioner fails", provision: `"exit 1",`, launched: true},
		{name: "interrupt while provisioning", provision: `"echo waiting-for-interrupt", "sleep 60",`, interrupt: "waiting-for-interrupt", launched: true},
		{name: "interrupt while the launch template is created", provision: provisionLine, holdCall: "CreateLaunchTemplate"},
		{name: "interrupt while the fleet launches", provision: provisionLine, holdCall: "CreateFleet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := w.baseline(t)
			spec := runSpec{
				Template:    strings.Replace(src, provisionLine, tc.provision, 1),
				Args:        []string{"build"},
				InterruptOn: tc.interrupt,
				Timeout:     2 * time.Minute,
			}
			if tc.holdCall != "" {
				arrived := make(chan struct{})
				var once sync.Once
				spec.Interrupt = arrived
				spec.Fault = func(_ *http.Request, c awstest.Call) *awstest.Fault {
					if !awstest.Matches(c, "ec2", tc.holdCall) {
						return nil
					}
					once.Do(func() { close(arrived) })
					return &awstest.Fault{Name: "late " + tc.holdCall, Delay: time.Second, Detach: true}
				}
			}
			res := w.run(t, spec)
			if (tc.interrupt != "" || tc.holdCall != "") && !res.Interrupted {
				t.Fatal("packer was not interrupted")
			}
			if res.TimedOut {
				t.Fatal("packer did not end in time")
			}
			if res.ExitCode == 0 {
				t.Fatal("packer build exited 0")
			}
			if tc.holdCall != "" {
				held := w.proxy.CallsFor("ec2", tc.holdCall)
				if len(held) == 0 {
					t.Fatalf("no %s call was made", tc.holdCall)
				}
				// Otherwise packer had its answer: the lost-answer path
				// was not taken.
				if !strings.Contains(held[0].Err, "forwarded afterwards") {
					t.Fatalf("%s was not abandoned by packer and carried out late: %s (%s)", tc.holdCall, held[0], held[0].Err)
				}
			}
			if tc.launched {
				checkSpotCleanupOrder(t, w.proxy.Calls())
			}
			if n := len(w.proxy.CallsFor("ec2", "CreateImage")); n != 0 {
				t.Errorf("%d CreateImage calls after the failure", n)
			}
			w.expectNoLeaks(t, base)
		})
	}
}

// queryTags reads the tags under prefix ("TagSpecification.1.Tag") of EC2
// query parameters.
func queryTags(p url.Values, prefix string) map[string]string {
	m := map[string]string{}
	for i := 1; p.Has(prefix + "." + strconv.Itoa(i) + ".Key"); i++ {
		n := prefix + "." + strconv.Itoa(i)
		m[p.Get(n+".Key")] = p.Get(n + ".Value")
	}
	return m
}
