//go:build unix

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// point is a place in a component's run: the UI line that starts a step,
// and the calls that keep the run inside the step or make the step fail.
//
// The interrupt is sent the moment the marker line appears, often while
// the step's create call is in flight: the call may take effect on the AWS
// side while the client sees only its cancellation, and the SDK then finds
// and removes what it made (see TestLostCreateResponses), so create calls
// are not held. Other calls after a marker may be held (delayed in the
// proxy, which then drops it when the client gives up), so that the
// interrupt lands inside the step rather than after it.
type point struct {
	name string
	// marker is (part of) the UI line; the interrupt is sent when it
	// appears.
	marker string
	// trigger, hold and holdRegion: once a call of trigger was seen (empty:
	// from the start), the next call of hold (in holdRegion, if set) is
	// delayed. Empty hold: no delay.
	trigger, hold, holdRegion string
	// failAfter, fail and failRegion: once a call of failAfter was seen
	// (empty: from the start), later calls of fail (in failRegion, if set)
	// fail with failCode (default UnauthorizedOperation, or AccessDenied
	// for S3) and failStatus (default 403); only the first one when
	// failOnce.
	failAfter, fail, failRegion string
	failCode                    string
	failStatus                  int
	failOnce                    bool
	// provision replaces the build's provisioner commands; the fail mode of
	// a point without fail makes the provisioner exit 1.
	provision []string
	// sampled points run in every `go test`; the others with
	// AMI_E2E_FULL=1.
	sampled bool
	// standIn lists calls the proxy answers with HTTP 200 in both modes,
	// for APIs moto answers with HTTP 500 (deregistration protection).
	standIn []string
	// retention (ami-distribute) adds an older release of the source AMI
	// and keep_releases = 1, so that retention removes it; protection
	// turns on deregistration protection.
	retention, protection bool
	// keepsCopies: the copies are the run's output and are kept even though
	// the run fails (retention had started).
	keepsCopies bool
}

const holdDelay = 8 * time.Second

// injectedMessage is the message of the failures failFault injects.
const injectedMessage = "injected step failure"

// after applies f to the calls that come after the first call of trigger
// (any call when trigger is empty).
func after(trigger string, f awstest.FaultFunc) awstest.FaultFunc {
	var mu sync.Mutex
	armed := trigger == ""
	return func(r *http.Request, c awstest.Call) *awstest.Fault {
		mu.Lock()
		was := armed
		if c.Action == trigger {
			armed = true
		}
		mu.Unlock()
		if !was {
			return nil
		}
		return f(r, c)
	}
}

func (p point) holdFault() awstest.FaultFunc {
	if p.hold == "" {
		return nil
	}
	var mu sync.Mutex
	held := false
	hold := &awstest.Fault{Name: "hold", Delay: holdDelay}
	return after(p.trigger, func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Action != p.hold || p.holdRegion != "" && c.Region != p.holdRegion {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if held {
			return nil
		}
		held = true
		return hold
	})
}

func (p point) failFault() awstest.FaultFunc {
	var mu sync.Mutex
	failed := false
	return after(p.failAfter, func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Action != p.fail || p.failRegion != "" && c.Region != p.failRegion {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if failed && p.failOnce {
			return nil
		}
		failed = true
		code, status := p.failCode, p.failStatus
		if code == "" {
			code = "UnauthorizedOperation"
			if c.Service == "s3" {
				code = "AccessDenied"
			}
		}
		if status == 0 {
			status = http.StatusForbidden
		}
		return &awstest.Fault{Code: code, Status: status, Message: injectedMessage}
	})
}

// standInFault answers p.standIn calls with HTTP 200 and passes the rest to
// f.
func (p point) standInFault(f awstest.FaultFunc) awstest.FaultFunc {
	if len(p.standIn) == 0 {
		return f
	}
	ok := &awstest.Fault{Name: "success stand-in", Status: http.StatusOK}
	return func(r *http.Request, c awstest.Call) *awstest.Fault {
		if f != nil {
			if fault := f(r, c); fault != nil {
				return fault
			}
		}
		if slices.Contains(p.standIn, c.Action) {
			return ok
		}
		return nil
	}
}

var sleepForInterrupt = []string{"echo waiting-for-interrupt", "sleep 60"}

var ebsPoints = []point{
	{name: "check-region", marker: "Using AWS account", hold: "DescribeImages", fail: "GetCallerIdentity"},
	{name: "check-name", marker: "Checking that AMI name", hold: "DescribeImages", fail: "DescribeImages"},
	{name: "source-ami", marker: "Looking up source AMI", trigger: "DescribeImages", hold: "DescribeImages", failAfter: "DescribeImages", fail: "DescribeImages"},
	{name: "key-pair", marker: "Creating temporary ed25519 key pair", fail: "CreateKeyPair"},
	{name: "security-group", marker: "Creating temporary security group", failAfter: "CreateSecurityGroup", fail: "AuthorizeSecurityGroupIngress", sampled: true},
	{name: "run-instance", marker: "Launching a", failAfter: "RunInstances", fail: "DescribeInstances", failOnce: true},
	{name: "connect", marker: "is running", provision: sleepForInterrupt},
	{name: "provision", marker: "waiting-for-interrupt", provision: sleepForInterrupt, sampled: true},
	{name: "stop-instance", marker: "Stopping the build instance", trigger: "StopInstances", hold: "DescribeInstances", fail: "StopInstances"},
	{name: "create-image", marker: "Creating AMI", failAfter: "CreateImage", fail: "DescribeImages", failOnce: true},
	{name: "tag-image", marker: "Tagging AMI", hold: "CreateTags", fail: "CreateTags", sampled: true},
}

// ebsCopyPoints are the steps of an ami-ebs build with HashiCorp's
// builder-side copy, sharing and protection options (ebsCopiesExtra).
var ebsCopyPoints = []point{
	{name: "copy", marker: "(at most", hold: "CopyImage", holdRegion: apRegion, fail: "CopyImage", failRegion: apRegion, sampled: true},
	{name: "copied", marker: "in " + euRegion + " is available", hold: "ModifyImageAttribute", holdRegion: euRegion, failAfter: "CopyImage", fail: "ModifySnapshotAttribute", failRegion: euRegion},
	{name: "share-build-region", marker: "sharing, tagging and deprecating input AMI", hold: "ModifyImageAttribute", holdRegion: buildRegion, fail: "ModifySnapshotAttribute", failRegion: buildRegion, sampled: true},
	{name: "protect", marker: "turning on deregistration protection",
		standIn: []string{"EnableImageDeregistrationProtection", "DisableImageDeregistrationProtection"},
		hold:    "EnableImageDeregistrationProtection", holdRegion: euRegion, fail: "EnableImageDeregistrationProtection", failRegion: apRegion},
}

// ebsCopiesExtra turns on the builder-side options of ebsCopyPoints.
var ebsCopiesExtra = fmt.Sprintf(`  ami_regions    = [%q, %q]
  ami_users      = ["210987654321"]
  snapshot_users = ["210987654321"]
  deregistration_protection {
    enabled = true
  }
`, euRegion, apRegion)

var instancePoints = []point{
	{name: "check-bucket", marker: "Checking S3 bucket", hold: "GetBucketLocation", fail: "GetBucketLocation", failCode: "NoSuchBucket", failStatus: http.StatusNotFound},
	{name: "check-bundle-location", marker: "Checking that no bundle is at", hold: "HeadObject", fail: "HeadObject"},
	{name: "prepare-certs", marker: "Generating an X.509 key", fail: "CreateKeyPair"},
	{name: "run-instance", marker: "Launching a", failAfter: "RunInstances", fail: "DescribeInstances", failOnce: true},
	{name: "provision", marker: "waiting-for-interrupt", provision: sleepForInterrupt},
	{name: "bundle", marker: "Bundling the image", failAfter: "PutObject", fail: "PutObject", sampled: true},
	{name: "uploaded", marker: "Uploaded the bundle", fail: "RegisterImage"},
	// RegisterImage tags the AMI as it makes it; interrupted while the call
	// is held, the AMI it made must still be found and removed.
	{name: "registering", marker: "Registering AMI", hold: "RegisterImage", sampled: true},
	{name: "registered", marker: "waiting for it to become available", trigger: "RegisterImage", hold: "DescribeImages", failAfter: "RegisterImage", fail: "DescribeImages", sampled: true},
}

var distributePoints = []point{
	{name: "lookup", marker: "Looking up source_ami", hold: "DescribeImages", fail: "DescribeImages"},
	{name: "preflight", marker: "before any change", trigger: "DescribeImages", hold: "DescribeImages", fail: "DescribeRegions"},
	{name: "copy", marker: "(at most", hold: "CopyImage", holdRegion: apRegion, fail: "CopyImage", failRegion: apRegion},
	{name: "copied", marker: "is available", hold: "ModifyImageAttribute", failAfter: "CopyImage", fail: "ModifyImageAttribute", failRegion: euRegion, sampled: true},
	{name: "share-source", marker: "sharing, tagging and deprecating input AMI", hold: "ModifyImageAttribute", holdRegion: buildRegion, fail: "CreateTags", failRegion: buildRegion, sampled: true},
	{name: "protect", marker: "turning on deregistration protection", protection: true,
		standIn: []string{"EnableImageDeregistrationProtection", "DisableImageDeregistrationProtection"},
		hold:    "EnableImageDeregistrationProtection", holdRegion: euRegion, fail: "EnableImageDeregistrationProtection", failRegion: apRegion},
	// Retention comes last: once it started, the copies are kept.
	{name: "retention", marker: "Retention in", retention: true, keepsCopies: true,
		hold: "DeregisterImage", holdRegion: buildRegion, fail: "DeregisterImage", failRegion: buildRegion},
}

// TestInterruptAndFailAtEachStep interrupts each component at the start of
// each step (SIGINT, as Ctrl-C), and separately makes each step fail;
// afterwards nothing the run created is left and the decoys are untouched.
func TestInterruptAndFailAtEachStep(t *testing.T) {
	w := theWorld(t)
	type component struct {
		name   string
		points []point
		setup  func(t *testing.T, p point) (template string, keep func() []string)
	}
	components := []component{
		{name: "ami-ebs", points: ebsPoints, setup: func(t *testing.T, p point) (string, func() []string) {
			prov := p.provision
			if prov == nil {
				prov = []string{"echo provisioned"}
			}
			return w.ebsTemplate(buildOpts{TempKey: true, Provision: prov}), nil
		}},
		{name: "ami-ebs-copies", points: ebsCopyPoints, setup: func(t *testing.T, p point) (string, func() []string) {
			return w.ebsTemplate(buildOpts{TempKey: true, Provision: []string{"echo provisioned"}, Extra: ebsCopiesExtra}), nil
		}},
		{name: "ami-instance", points: instancePoints, setup: func(t *testing.T, p point) (string, func() []string) {
			return w.instanceTemplate(w.scratch(t), "rel/"+uniqueName("int"), buildOpts{
				TempKey: true, Provision: p.provision, Extra: "  tags = {\n    Name = \"e2e\"\n  }\n",
			}), nil
		}},
		{name: "ami-distribute", points: distributePoints, setup: func(t *testing.T, p point) (string, func() []string) {
			name := uniqueName("e2e-int-dist")
			extra := ""
			if p.retention {
				// An older release, which retention removes.
				old := w.registerAMI(t, buildRegion, name+"-old", nil)
				t.Cleanup(func() { w.removeAMIs(t, map[string]string{buildRegion: old}) })
				awstest.NextSecond(t) // moto's creation dates have whole seconds
				extra += fmt.Sprintf("    keep_releases = 1\n    retention {\n      name_pattern = %q\n    }\n", name+"*")
			}
			if p.protection {
				extra += "    deregistration_protection {\n      enabled = true\n    }\n"
			}
			src := w.registerAMI(t, buildRegion, name, nil)
			t.Cleanup(func() { w.removeAMIs(t, map[string]string{buildRegion: src}) })
			return distributeTemplate(distributeBody(src, extra)), func() []string { return []string{buildRegion + ":" + src} }
		}},
	}
	for _, comp := range components {
		for _, p := range comp.points {
			for _, mode := range []string{"interrupt", "fail"} {
				if mode == "fail" && p.fail == "" && p.provision == nil {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/%s", comp.name, p.name, mode), func(t *testing.T) {
					if !p.sampled {
						onlyInFullMatrix(t)
					}
					tpl, _ := comp.setup(t, p)
					base := w.baseline(t)
					spec := runSpec{Template: tpl, Args: []string{"build"}, Timeout: 2 * time.Minute}
					if mode == "interrupt" {
						spec.InterruptOn = p.marker
						spec.Fault = p.standInFault(p.holdFault())
					} else if p.fail != "" {
						spec.Fault = p.standInFault(p.failFault())
					} else {
						spec.Template = failingProvisioner(tpl)
					}
					res := w.run(t, spec)
					injected := injectedFailures(w.proxy.Calls())
					if mode == "interrupt" && !res.Interrupted {
						t.Fatalf("the marker %q never appeared; packer was not interrupted", p.marker)
					}
					if res.TimedOut {
						t.Fatalf("packer did not end within %s", spec.Timeout)
					}
					if res.ExitCode == 0 {
						t.Fatalf("packer build exited 0 after the %s", mode)
					}
					if mode == "fail" && p.fail != "" {
						// The message names the failed call and its region.
						// An injected answer with a meaning of its own
						// (failCode, such as NoSuchBucket) may be told in
						// the user's terms instead of the call's; its
						// region must still be named.
						if len(injected) == 0 {
							t.Fatalf("no %s call was failed", p.fail)
						}
						c := injected[0]
						wants := []string{c.Action, c.Region}
						if p.failCode != "" {
							wants = wants[1:]
						}
						for _, want := range wants {
							if !strings.Contains(res.Output(), want) {
								t.Errorf("the output does not name %q of the injected failure (%s in %s):\n%s", want, c.Action, c.Region, res.Output())
							}
						}
					}
					var keep []string
					if p.keepsCopies {
						keep = w.keptCopies(t, base)
					}
					w.expectNoLeaks(t, base, keep...)
				})
			}
		}
	}
}

// failingProvisioner makes the "provision" point's provisioner fail instead
// of sleeping.
func failingProvisioner(tpl string) string {
	return strings.Replace(tpl, `"sleep 60"`, `"exit 1"`, 1)
}

// injectedFailures returns the calls failed by a point's failFault.
func injectedFailures(calls []awstest.Call) []awstest.Call {
	var out []awstest.Call
	for _, c := range calls {
		if c.Fault != nil && c.Fault.Message == injectedMessage {
			out = append(out, c)
		}
	}
	return out
}

// keptCopies returns the AMIs (and their snapshots) made since base in the
// distribute target regions, which a run keeps once retention started,
// and removes them at the end of the test. It fails the test unless there
// is exactly one in each target region.
func (w *world) keptCopies(t *testing.T, base *awstest.Snapshot) []string {
	t.Helper()
	l, err := awstest.ListLeaks(context.Background(), w.moto.Endpoint, allRegions, base)
	if err != nil {
		t.Fatalf("list leaks: %v", err)
	}
	amis := map[string]string{}
	for _, ri := range l.Images {
		region, id, _ := strings.Cut(ri, ":")
		if region != euRegion && region != apRegion {
			continue
		}
		if amis[region] != "" {
			t.Errorf("more than one new AMI in %s: %s, %s", region, amis[region], id)
		}
		amis[region] = id
	}
	if len(amis) != 2 {
		t.Errorf("the copies were not kept once retention started: new AMIs %q", l.Images)
	}
	t.Cleanup(func() { w.removeAMIs(t, amis) })
	return w.artifactKeep(t, amis)
}
