package instance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/instance"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// instancePolicyPath is the least-privilege policy documented for
// ami-instance.
var instancePolicyPath = filepath.Join("..", "..", "example", "iam", "ami-instance-policy.json")

// optionalInstanceActions are actions of the policy that the build below
// does not call, each with the code path that needs it.
var optionalInstanceActions = map[string]string{
	"ec2:CreateKeyPair":          "the temporary key pair, made when neither ssh_private_key_file nor ssh_keypair_name is set (the build below uses the test sshd's key)",
	"ec2:DeleteKeyPair":          "deleting the temporary key pair",
	"ec2:DescribeSubnets":        "subnet_id: the temporary security group goes into the subnet's VPC",
	"ec2:DescribeKeyPairs":       "finding the temporary key pair a CreateKeyPair with a lost answer made",
	"ec2:DescribeSecurityGroups": "finding the temporary security group a CreateSecurityGroup with a lost answer made",
	"s3:ListBucket":              "HeadBucket when GetBucketLocation is denied, HeadObject answering 404 rather than 403 for parts not yet stored, and deleting a bundle by prefix when its manifest is gone",
}

// TestE2EPolicy builds an instance-store AMI through the recording proxy,
// then destroys the artifact through it, and checks that every AWS call is
// allowed by example/iam/ami-instance-policy.json and that every action of
// the policy was needed.
func TestE2EPolicy(t *testing.T) {
	e := newE2EEnv(t)
	provision, img := e.makeImage("policy-check")
	const prefix = "builds/policy"
	tpl := e.template(tmpl{
		Prefix: prefix,
		Source: fmt.Sprintf(`
  bundle_source   = %q
  ami_description = "policy check"
  tags = {
    Name = "policy-check"
  }`, img),
		Provision: provision,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	ids := packertest.ArtifactIDs(res.Stdout)["ami-instance.e2e"]
	if len(ids) != 1 {
		t.Fatalf("artifact ids = %q, want one", ids)
	}
	_, ami, _ := strings.Cut(ids[0], ":")

	// Destroy the artifact through the proxy, so that its calls are
	// checked too.
	pec2, ps3 := awstest.Clients(e.proxy.URL, e2eRegion)
	art := &instance.Artifact{
		Artifact: &amibuild.Artifact{Amis: map[string]string{e2eRegion: ami}, BuilderIdValue: instance.BuilderId},
		Bundle:   bundlestore.Location{Bucket: e2eBucket, Prefix: prefix, Name: "image"},
		EC2:      func(string) bundlestore.DeregisterAPI { return pec2 },
		S3:       func(string) bundlestore.DeleteAPI { return ps3 },
	}
	if err := art.Destroy(); err != nil {
		t.Fatalf("destroy the artifact: %v", err)
	}

	p := loadPolicy(t, instancePolicyPath, map[string]string{"BUNDLE_BUCKET": e2eBucket})
	t.Logf("AWS actions: %v", e.proxy.Actions())
	checkPolicy(t, p, e.proxy.Calls(), optionalInstanceActions)
	l, err := awstest.ListLeaks(context.Background(), e.moto.Endpoint, []string{e2eRegion}, nil)
	if err != nil {
		t.Fatalf("list leaks: %v", err)
	}
	if len(l.S3Objects) > 0 {
		t.Errorf("bundle objects left after Destroy: %q", l.S3Objects)
	}
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
