//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/iamprofile"
)

const tempProfileTemplate = "artifact-reader-temporary-profile.pkr.hcl"

// notReadyFault is EC2's answer to a launch with an instance profile it
// does not know yet (IAM is eventually consistent), which moto never
// gives.
var notReadyFault = &awstest.Fault{Name: "profile not ready", Code: "InvalidParameterValue", Status: http.StatusBadRequest,
	Message: "Value (packer-x) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"}

// TestMigrationTemporaryIAMProfile builds the corpus template with
// temporary_iam_instance_profile_policy_document: the role (trusted by
// EC2, tagged with run_tags), its inline policy from the document and the
// profile are made, the launch that EC2 first refuses is retried with the
// profile, and all three are deleted after the build, after a failing
// provisioner and after Ctrl-C. A role and a profile of somebody else
// named like Packer's survive every run.
func TestMigrationTemporaryIAMProfile(t *testing.T) {
	w := theWorld(t)
	var f corpusFile
	for _, c := range corpusFiles(t) {
		if c.Name == tempProfileTemplate {
			f = c
		}
	}
	src := w.corpusTemplate(t, f)
	ctx := context.Background()
	direct := awstest.IAMClient(w.moto.Endpoint, buildRegion)
	decoy := uniqueName("packer-decoy")
	if _, err := direct.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(decoy), AssumeRolePolicyDocument: aws.String(iamprofile.EC2TrustPolicy)}); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(decoy)}); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(decoy), RoleName: aws.String(decoy)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := direct.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(decoy)}); err != nil {
			t.Errorf("somebody else's instance profile %s: %v", decoy, err)
		}
		if _, err := direct.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(decoy)}); err != nil {
			t.Errorf("somebody else's role %s: %v", decoy, err)
		}
		_, _ = iamprofile.Delete(ctx, direct, &iamprofile.DeleteInput{ProfileName: decoy, RoleName: decoy})
	})

	t.Run("build", func(t *testing.T) {
		base := w.baseline(t)
		res := w.run(t, runSpec{Template: src, Fault: awstest.FailFirst(1, "ec2", "RunInstances", notReadyFault)})
		if res.ExitCode != 0 {
			t.Fatalf("packer build exited %d", res.ExitCode)
		}
		amis := artifactAMIs(t, res, "ami-ebs.reader")
		name := checkProfileCalls(t, w.proxy)

		wantDoc := `{"Version":"2012-10-17","Statement":[` +
			`{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::acme-build-artifacts/releases/*"]},` +
			`{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":["*"]}]}`
		if got := w.proxy.CallsFor("iam", "PutRolePolicy")[0].Params.Get("PolicyDocument"); got != wantDoc {
			t.Errorf("inline policy = %s\nwant %s", got, wantDoc)
		}
		role := w.proxy.CallsFor("iam", "CreateRole")[0].Params
		var trust struct {
			Statement []struct {
				Effect    string
				Principal struct{ Service string }
				Action    string
			}
		}
		if err := json.Unmarshal([]byte(role.Get("AssumeRolePolicyDocument")), &trust); err != nil || len(trust.Statement) != 1 ||
			trust.Statement[0].Principal.Service != "ec2.amazonaws.com" || trust.Statement[0].Action != "sts:AssumeRole" {
			t.Errorf("trust policy = %s, want EC2 allowed to assume the role", role.Get("AssumeRolePolicyDocument"))
		}
		for _, action := range []string{"CreateRole", "CreateInstanceProfile"} {
			if tags := iamTags(w.proxy.CallsFor("iam", action)[0].Params); tags["Team"] != "payments" || tags["Purpose"] != "image-build" || tags[iamprofile.CreateTokenTag] == "" {
				t.Errorf("%s tags = %v, want run_tags and the create token", action, tags)
			}
		}
		// EC2 refused the profile once; the launch was repeated with it.
		runs := w.proxy.CallsFor("ec2", "RunInstances")
		if len(runs) != 2 {
			t.Fatalf("RunInstances calls = %d, want the refused one and the retry", len(runs))
		}
		for _, r := range runs {
			if got := r.Params.Get("IamInstanceProfile.Name"); got != name {
				t.Errorf("RunInstances IamInstanceProfile.Name = %q, want %q", got, name)
			}
		}
		w.expectNoLeaks(t, base, w.artifactKeep(t, amis)...)
		checkTemporaryProfilePolicy(t, w.proxy.Calls())
		w.removeAMIs(t, amis)
	})

	t.Run("failing provisioner", func(t *testing.T) {
		base := w.baseline(t)
		failing := strings.Replace(src, `"uname -a",`, `"exit 3",`, 1)
		if failing == src {
			t.Fatal("the template has no uname line to replace")
		}
		res := w.run(t, runSpec{Template: failing})
		if res.ExitCode == 0 {
			t.Fatal("packer build succeeded although the provisioner failed")
		}
		checkProfileCalls(t, w.proxy)
		w.expectNoLeaks(t, base)
	})

	t.Run("interrupt", func(t *testing.T) {
		base := w.baseline(t)
		waiting := strings.Replace(src, `"uname -a",`, `"echo waiting-for-interrupt", "sleep 60",`, 1)
		res := w.run(t, runSpec{Template: waiting, InterruptOn: "waiting-for-interrupt"})
		if !res.Interrupted || res.ExitCode == 0 {
			t.Fatalf("packer build: interrupted %v, exit %d; want an interrupted, failed build", res.Interrupted, res.ExitCode)
		}
		checkProfileCalls(t, w.proxy)
		w.expectNoLeaks(t, base)
	})
}

// checkProfileCalls checks that the run made one role, inline policy and
// instance profile of one name, launched the instance after that and
// removed all three after terminating it. It returns the name.
func checkProfileCalls(t *testing.T, p *awstest.Proxy) string {
	t.Helper()
	one := func(action string) awstest.Call {
		t.Helper()
		calls := p.CallsFor("iam", action)
		if len(calls) != 1 {
			t.Fatalf("iam:%s calls = %d, want 1 (all: %v)", action, len(calls), p.Actions())
		}
		return calls[0]
	}
	create := one("CreateRole")
	name := create.Params.Get("RoleName")
	if !strings.HasPrefix(name, "packer-") {
		t.Errorf("role name %q, want packer-<uuid>", name)
	}
	seq := map[string]int{}
	for _, a := range []string{"CreateRole", "PutRolePolicy", "CreateInstanceProfile", "AddRoleToInstanceProfile",
		"RemoveRoleFromInstanceProfile", "DeleteInstanceProfile", "DeleteRolePolicy", "DeleteRole"} {
		c := one(a)
		for _, k := range []string{"RoleName", "InstanceProfileName", "PolicyName"} {
			if v := c.Params.Get(k); v != "" && v != name {
				t.Errorf("iam:%s %s = %q, want %q", a, k, v, name)
			}
		}
		if c.Status != http.StatusOK {
			t.Errorf("iam:%s answered %d", a, c.Status)
		}
		seq[a] = c.Seq
	}
	runs := p.CallsFor("ec2", "RunInstances")
	terms := p.CallsFor("ec2", "TerminateInstances")
	if len(runs) == 0 || len(terms) == 0 {
		t.Fatalf("RunInstances %d, TerminateInstances %d calls", len(runs), len(terms))
	}
	if runs[0].Seq < seq["AddRoleToInstanceProfile"] {
		t.Error("the instance was launched before the role was in the profile")
	}
	if seq["RemoveRoleFromInstanceProfile"] < terms[len(terms)-1].Seq {
		t.Error("the profile was dismantled before the instance was terminated")
	}
	if !(seq["RemoveRoleFromInstanceProfile"] < seq["DeleteInstanceProfile"] && seq["DeleteRolePolicy"] < seq["DeleteRole"]) {
		t.Errorf("deletion order %v", seq)
	}
	return name
}

// iamTags returns the Tags.member.N of an IAM query request.
func iamTags(params url.Values) map[string]string {
	m := map[string]string{}
	for k, v := range params {
		if strings.HasPrefix(k, "Tags.member.") && strings.HasSuffix(k, ".Key") {
			m[v[0]] = params.Get(strings.TrimSuffix(k, ".Key") + ".Value")
		}
	}
	return m
}

// checkBesidePolicy checks that the ami-ebs policy and the policy file
// extra (in example/iam, with placeholders replaced) together allow every
// call, and that each action of extra was needed or is a key of optional,
// whose value names the path that needs it.
func checkBesidePolicy(t *testing.T, calls []awstest.Call, extra string, placeholders, optional map[string]string) {
	t.Helper()
	dir := filepath.Join("..", "..", "example", "iam")
	build, err := awstest.LoadPolicy(filepath.Join(dir, "ami-ebs-policy.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	beside, err := awstest.LoadPolicy(filepath.Join(dir, extra), placeholders)
	if err != nil {
		t.Fatal(err)
	}
	both := &awstest.Policy{Statements: append(slices.Clone(build.Statements), beside.Statements...)}
	denied, used := both.Denied(calls)
	for _, problem := range denied {
		t.Errorf("example/iam/ami-ebs-policy.json + %s: %s", extra, problem)
	}
	for _, st := range beside.Statements {
		for _, a := range st.Actions {
			if !used[a] && optional[a] == "" {
				t.Errorf("%s allows %s, which no call of the build needed", extra, a)
			}
		}
	}
}

// checkTemporaryProfilePolicy checks the ami-ebs policy together with the
// policy for temporary instance profiles (see checkBesidePolicy).
func checkTemporaryProfilePolicy(t *testing.T, calls []awstest.Call) {
	t.Helper()
	checkBesidePolicy(t, calls, "ami-builder-temporary-profile-policy.json", map[string]string{"ACCOUNT_ID": awstest.TestAccountID}, map[string]string{
		"iam:GetRole": "finding the role of a create call whose answer was lost",
	})
}
