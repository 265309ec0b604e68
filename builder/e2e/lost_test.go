//go:build unix

package e2e

import (
	"net/http"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestLostCreateResponses loses the answer to a create call (the request
// takes effect in AWS, the client sees HTTP 500 and the SDK retries): once
// for the creates that AWS refuses to repeat or that moto repeats
// (CreateKeyPair, CreateSecurityGroup, CreateImage, RegisterImage), and on
// every attempt for RunInstances. The build succeeds when the answer was
// lost once, fails when it was always lost, and in both cases leaves
// nothing but its artifact behind.
func TestLostCreateResponses(t *testing.T) {
	w := theWorld(t)
	lost := &awstest.Fault{Name: "lost response", Forward: true, Code: "InternalError", Status: http.StatusInternalServerError}
	tests := []struct {
		component string // ebs or instance
		action    string
		always    bool // lose every answer, not just the first
	}{
		{component: "ebs", action: "CreateKeyPair"},
		{component: "ebs", action: "CreateSecurityGroup"},
		{component: "ebs", action: "CreateImage"},
		{component: "ebs", action: "RunInstances", always: true},
		{component: "instance", action: "RegisterImage"},
	}
	for _, tc := range tests {
		t.Run(tc.component+"/"+tc.action, func(t *testing.T) {
			base := w.baseline(t)
			fault := awstest.FailFirst(1, "ec2", tc.action, lost)
			if tc.always {
				fault = awstest.FailAlways("ec2", tc.action, lost)
			}
			var tpl, build, prefix string
			switch tc.component {
			case "ebs":
				tpl, build = w.ebsTemplate(buildOpts{TempKey: true, Provision: []string{"echo provisioned"}}), "ami-ebs.e2e"
			case "instance":
				prefix = "rel/" + uniqueName("lost")
				tpl, build = w.instanceTemplate(w.scratch(t), prefix, buildOpts{}), "ami-instance.e2e"
			}
			res := w.run(t, runSpec{Template: tpl, Fault: fault})
			if n := len(w.proxy.CallsFor("ec2", tc.action)); n < 2 {
				t.Fatalf("%d %s calls; the lost answer was not retried", n, tc.action)
			}
			var keep []string
			switch {
			case tc.always && res.ExitCode == 0:
				t.Fatalf("packer build succeeded although every %s answer was lost", tc.action)
			case tc.always:
				mustContain(t, "the failure message", res.Output(), tc.action, buildRegion, "InternalError")
			case res.ExitCode != 0:
				t.Fatalf("packer build failed after one lost %s answer (exit %d)", tc.action, res.ExitCode)
			default:
				amis := artifactAMIs(t, res, build)
				keep = w.artifactKeep(t, amis)
				if prefix != "" {
					keep = append(keep, w.objectsUnder(t, prefix)...)
				}
				defer w.removeAMIs(t, amis)
			}
			w.expectNoLeaks(t, base, keep...)
			if prefix != "" {
				w.removeObjects(t, prefix)
			}
		})
	}
}
