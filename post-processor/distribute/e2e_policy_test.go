package distribute

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// distributePolicyPath is the least-privilege policy documented for
// ami-distribute.
var distributePolicyPath = filepath.Join("..", "..", "example", "iam", "ami-distribute-policy.json")

// optionalDistributeActions are actions of the policy that the run below
// does not need, each with the code path that needs it.
var optionalDistributeActions = map[string]string{
	"ec2:DisableImageDeregistrationProtection": "rollback: lifting deregistration protection from the copies of this run before deregistering them after a later failure",
	"s3:ListBucket":   "retention of an instance-store AMI whose manifest is gone: its bundle is found by prefix (moto drops ImageLocation, so no AMI here has a bundle)",
	"s3:GetObject":    "retention of an instance-store AMI: reading its manifest to find the parts to delete",
	"s3:DeleteObject": "retention of an instance-store AMI: deleting its bundle",
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
	time.Sleep(1100 * time.Millisecond) // moto's creation dates have whole seconds
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
	key := fmt.Sprintf("arn:aws:kms:%s:%s:key/1234abcd-12ab-34cd-56ef-1234567890ab", apRegion, awstest.TestAccountID)
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

	p := loadPolicy(t, distributePolicyPath, map[string]string{
		"BUNDLE_BUCKET": "bundles", "ACCOUNT_ID": awstest.TestAccountID,
	})
	t.Logf("AWS actions: %v", e.proxy.Actions())
	checkPolicy(t, p, e.proxy.Calls(), optionalDistributeActions)
}

// policy is the Allow statements of an IAM policy document.
type policy []statement

type statement struct {
	Sid       string
	Actions   []string
	Resources []string
}

// permission is one IAM action on one resource ARN ("*" for services
// whose actions the policies do not scope).
type permission struct{ Action, Resource string }

// loadPolicy reads an IAM policy file, replacing its placeholders.
func loadPolicy(t *testing.T, path string, placeholders map[string]string) policy {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range placeholders {
		s = strings.ReplaceAll(s, k, v)
	}
	var doc struct {
		Statement []struct {
			Sid      string
			Effect   string
			Action   json.RawMessage
			Resource json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var p policy
	for _, st := range doc.Statement {
		if st.Effect != "Allow" {
			t.Fatalf("%s: statement %s: effect %q, want Allow", path, st.Sid, st.Effect)
		}
		p = append(p, statement{Sid: st.Sid, Actions: stringList(t, st.Action), Resources: stringList(t, st.Resource)})
	}
	return p
}

// stringList decodes an IAM string-or-list value.
func stringList(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("policy value %s: %v", raw, err)
	}
	return list
}

// globMatch matches IAM wildcards: * any run of characters, ? one.
func globMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile("(?i)" + re).MatchString(s)
}

// allow returns the policy's action patterns granting p; none means p is
// denied.
func (pol policy) allow(p permission) []string {
	var by []string
	for _, st := range pol {
		resOK := false
		for _, r := range st.Resources {
			if globMatch(r, p.Resource) {
				resOK = true
			}
		}
		if !resOK {
			continue
		}
		for _, a := range st.Actions {
			if globMatch(a, p.Action) {
				by = append(by, a)
			}
		}
	}
	return by
}

// permissions returns the IAM permissions a recorded call needs.
func permissions(t *testing.T, c awstest.Call) []permission {
	t.Helper()
	switch c.Service {
	case "sts":
		if c.Action == "GetCallerIdentity" {
			return nil // needs no permission
		}
	case "ec2":
		ps := []permission{{"ec2:" + c.Action, "*"}}
		for k := range c.Params {
			if strings.HasPrefix(k, "TagSpecification") {
				// Tagging on create needs ec2:CreateTags as well.
				ps = append(ps, permission{"ec2:CreateTags", "*"})
				break
			}
		}
		if c.Action == "CopyImage" && c.Params.Get("Encrypted") == "true" {
			// EC2 uses the key on the caller's behalf: the caller needs
			// these on it (the EBS encryption documentation's list).
			key := c.Params.Get("KmsKeyId")
			if !strings.HasPrefix(key, "arn:aws:kms:") {
				t.Fatalf("CopyImage in %s: KmsKeyId %q; the test maps only key ARNs to KMS permissions", c.Region, key)
			}
			for _, a := range []string{"CreateGrant", "Decrypt", "DescribeKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo"} {
				ps = append(ps, permission{"kms:" + a, key})
			}
		}
		return ps
	case "s3":
		bucket := "arn:aws:s3:::" + c.Bucket
		object := bucket + "/" + c.Key
		acl := func(ps []permission) []permission {
			if c.Header.Get("X-Amz-Acl") != "" {
				ps = append(ps, permission{"s3:PutObjectAcl", object})
			}
			return ps
		}
		switch c.Action {
		case "GetBucketLocation", "GetBucketOwnershipControls":
			return []permission{{"s3:" + c.Action, bucket}}
		case "GetBucketEncryption":
			return []permission{{"s3:GetEncryptionConfiguration", bucket}}
		case "HeadBucket", "ListObjects", "ListObjectsV2":
			return []permission{{"s3:ListBucket", bucket}}
		case "GetObject", "HeadObject":
			return []permission{{"s3:GetObject", object}}
		case "PutObject":
			return acl([]permission{{"s3:PutObject", object}})
		case "CopyObject":
			src, err := url.PathUnescape(strings.TrimPrefix(c.Header.Get("X-Amz-Copy-Source"), "/"))
			if err != nil {
				t.Fatalf("CopyObject source %q: %v", c.Header.Get("X-Amz-Copy-Source"), err)
			}
			return acl([]permission{{"s3:PutObject", object}, {"s3:GetObject", "arn:aws:s3:::" + src}})
		case "DeleteObject":
			return []permission{{"s3:DeleteObject", object}}
		case "DeleteObjects":
			return []permission{{"s3:DeleteObject", bucket + "/*"}}
		}
	}
	t.Errorf("no IAM mapping for %s:%s; add one to permissions", c.Service, c.Action)
	return nil
}

// checkPolicy fails when a call needs a permission pol does not grant, or
// when an action of pol is neither needed by some call nor listed in
// optional (with the code path that needs it).
func checkPolicy(t *testing.T, pol policy, calls []awstest.Call, optional map[string]string) {
	t.Helper()
	if len(calls) == 0 {
		t.Fatal("no AWS call was recorded")
	}
	used := map[string]bool{}
	for _, c := range calls {
		for _, p := range permissions(t, c) {
			by := pol.allow(p)
			if len(by) == 0 {
				t.Errorf("%s %s:%s needs %s on %s, which the policy does not allow", c.Region, c.Service, c.Action, p.Action, p.Resource)
			}
			for _, a := range by {
				used[a] = true
			}
		}
	}
	var listed []string
	for _, st := range pol {
		for _, a := range st.Actions {
			listed = append(listed, a)
			if !used[a] && optional[a] == "" {
				t.Errorf("policy statement %s allows %s, which no call needed and which is not a known optional action", st.Sid, a)
			}
		}
	}
	sort.Strings(listed)
	for a := range optional {
		if _, ok := sort.Find(len(listed), func(i int) int { return strings.Compare(a, listed[i]) }); !ok {
			t.Errorf("optional action %s is not in the policy", a)
		}
	}
}
