//go:build unix

package e2e

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestPermanentFaults fails one action on every attempt with an error that
// is not transient (or with throttling that never ends): the run fails,
// its message names the action, the region and the resource, the action
// was not retried beyond the SDK's attempts, and nothing is left behind.
func TestPermanentFaults(t *testing.T) {
	w := theWorld(t)
	denied := func(code string) *awstest.Fault {
		return &awstest.Fault{Code: code, Status: http.StatusForbidden, Message: "You are not authorized to perform this operation."}
	}
	type tc struct {
		name      string
		component string // ebs, instance, distribute
		service   string
		action    string
		region    string
		fault     *awstest.Fault
		// want are regular expressions the output must match, besides the
		// action, the region and the error code.
		want []string
		full bool // only with AMI_E2E_FULL=1
	}
	tests := []tc{
		{name: "ebs CreateImage unauthorized", component: "ebs", service: "ec2", action: "CreateImage", region: buildRegion,
			fault: denied("UnauthorizedOperation"), want: []string{`i-[0-9a-f]+`}},
		{name: "ebs RunInstances throttled forever", component: "ebs", service: "ec2", action: "RunInstances", region: buildRegion,
			fault: awstest.ThrottleFault("ec2"), want: []string{ebsSourceAMI}},
		{name: "ebs CreateSecurityGroup unauthorized", component: "ebs", service: "ec2", action: "CreateSecurityGroup", region: buildRegion,
			fault: denied("UnauthorizedOperation"), full: true},
		{name: "ebs StopInstances unauthorized", component: "ebs", service: "ec2", action: "StopInstances", region: buildRegion,
			fault: denied("UnauthorizedOperation"), want: []string{`i-[0-9a-f]+`}, full: true},
		{name: "instance PutObject access denied", component: "instance", service: "s3", action: "PutObject", region: buildRegion,
			fault: denied("AccessDenied"), want: []string{bucket}},
		{name: "instance RegisterImage unauthorized", component: "instance", service: "ec2", action: "RegisterImage", region: buildRegion,
			fault: denied("UnauthorizedOperation"), want: []string{`image\.manifest\.xml`}, full: true},
		{name: "distribute CopyImage unauthorized", component: "distribute", service: "ec2", action: "CopyImage", region: apRegion,
			fault: denied("UnauthorizedOperation"), want: []string{`ami-[0-9a-f]+`}},
		{name: "distribute ModifyImageAttribute unauthorized", component: "distribute", service: "ec2", action: "ModifyImageAttribute", region: euRegion,
			fault: denied("UnauthorizedOperation"), want: []string{`ami-[0-9a-f]+`}, full: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.full {
				onlyInFullMatrix(t)
			}
			var src string
			if tc.component == "distribute" {
				src = w.registerAMI(t, buildRegion, uniqueName("e2e-perm"), nil)
				defer w.removeAMIs(t, map[string]string{buildRegion: src})
			}
			base := w.baseline(t)
			var tpl string
			switch tc.component {
			case "ebs":
				tpl = w.ebsTemplate(buildOpts{TempKey: true})
			case "instance":
				tpl = w.instanceTemplate(w.scratch(t), "rel/"+uniqueName("perm"), buildOpts{})
			case "distribute":
				tpl = distributeTemplate(distributeBody(src, ""))
			}
			fault := func(_ *http.Request, c awstest.Call) *awstest.Fault {
				if awstest.Matches(c, tc.service, tc.action) && c.Region == tc.region {
					return tc.fault
				}
				return nil
			}
			res := w.run(t, runSpec{Template: tpl, Args: []string{"build"}, Fault: fault})
			if res.ExitCode == 0 {
				t.Fatalf("packer build succeeded although every %s fails", tc.action)
			}
			out := res.Output()
			mustContain(t, "the failure message", out, tc.action, tc.region, tc.fault.Code)
			for _, re := range tc.want {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("the failure message does not name the resource (%s)", re)
				}
			}
			var n int
			for _, c := range w.proxy.CallsFor(tc.service, tc.action) {
				if c.Region == tc.region {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("no %s call in %s; the build failed before reaching it", tc.action, tc.region)
			}
			if n > 10 {
				t.Errorf("%s was attempted %d times; a permanent error must not be retried without bound", tc.action, n)
			}
			w.expectNoLeaks(t, base)
		})
	}
}
