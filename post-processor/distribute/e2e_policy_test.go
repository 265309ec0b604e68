//go:build unix

package distribute

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// distributePolicyPath is the least-privilege policy documented for
// ami-distribute.
var distributePolicyPath = filepath.Join("..", "..", "example", "iam", "ami-distribute-policy.json")

// optionalDistributeActions are actions of the policy that the run below
// does not need, each with the code path that needs it.
var optionalDistributeActions = map[string]string{
	"ec2:DisableImageDeregistrationProtection": "rollback: lifting deregistration protection from the copies of this run before deregistering them after a later failure",
	"s3:ListBucket":         "retention of an instance-store AMI whose manifest is gone: its bundle is found by prefix (moto drops ImageLocation, so no AMI here has a bundle)",
	"s3:GetObject":          "retention of an instance-store AMI: reading its manifest to find the parts to delete",
	"s3:DeleteObject":       "retention of an instance-store AMI: deleting its bundle",
	"ec2:DescribeSnapshots": "sharing an encrypted AMI with other accounts: reading its snapshots' KMS key (moto's copies are never encrypted)",
}

// TestE2EPolicy runs ami-distribute on an existing AMI through the
// recording proxy with most of its features (copies, one encrypted with a
// KMS key, sharing, snapshot permissions, tags, deprecation, deregistration
// protection, retention) and checks that every AWS call is allowed by
// example/iam/ami-distribute-policy.json and that every action of the
// policy was needed.
func TestE2EPolicy(t *testing.T) {
	e := newE2EWorld(t)
	family := uniqueName(t, "e2e-policy")
	sel := map[string]string{"Family": family}
	e.registerImage(t, srcRegion, family+"-r1", sel)
	e.registerImage(t, euRegion, family+"-r1", sel)
	awstest.NextSecond(t) // moto's creation dates have whole seconds
	src, _ := e.registerImage(t, srcRegion, family+"-r2", sel)
	e.proxy.Reset()
	// moto answers HTTP 500 for deprecation and deregistration protection.
	ok200 := &awstest.Fault{Name: "success stand-in", Status: http.StatusOK}
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Action == "EnableImageDeprecation" || c.Action == "EnableImageDeregistrationProtection" {
			return ok200
		}
		return nil
	})
	key := e.kmsKey(t, apRegion, "")
	res := e.build(t, nullTemplate(fmt.Sprintf(`
    source_ami      = %q
    regions         = [%q, %q]
    ami_users       = [%q]
    snapshot_users  = [%q]
    tags            = %s
    snapshot_tags = {
      Snap = "yes"
    }
    deprecate_after = "2160h"
    deregistration_protection {
      enabled = true
    }
    keep_releases = 1
    retention {
      name_pattern = %q
      tags         = %s
    }
    region_override {
      region     = %q
      kms_key_id = %q
    }
`, src, euRegion, apRegion, shareAccount, snapAccount, hcl(sel), family+"-*", hcl(sel), apRegion, key)))
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	if n := len(e.proxy.CallsFor("ec2", "DeregisterImage")); n == 0 {
		t.Error("retention removed nothing; the run does not exercise it")
	}

	t.Logf("AWS actions: %v", e.proxy.Actions())
	awstest.CheckPolicy(t, distributePolicyPath, map[string]string{
		"BUNDLE_BUCKET": "bundles", "ACCOUNT_ID": awstest.TestAccountID,
	}, e.proxy.Calls(), optionalDistributeActions)
}
