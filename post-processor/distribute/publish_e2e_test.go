//go:build unix

package distribute

// End-to-end tests of ssm_parameters, launch_templates and
// target_accounts: the real packer against moto behind the proxy, with a
// second account reached through sts:AssumeRole (moto keeps resources per
// account of the calling credentials; the proxy emulates the
// cross-account copy and DeleteLaunchTemplateVersions, which moto lacks).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

const (
	teamAccount = "222222222222"
	teamRole    = "arn:aws:iam::222222222222:role/ami-publisher"
	teamExtID   = "golden-ami-e2e-external-id"
)

// publishWorld is a source AMI in srcRegion; in this account a launch
// template in srcRegion and euRegion and a parameter holding an older AMI
// in srcRegion; in the team account a launch template in euRegion.
type publishWorld struct {
	*e2eWorld
	name, src string
	oldAMI    string
	lt        map[string]string // region → this account's template
	teamLT    string            // the team account's template in euRegion
}

func newPublishWorld(t *testing.T, prefix string) *publishWorld {
	t.Helper()
	ctx := context.Background()
	e := newE2EWorld(t)
	w := &publishWorld{e2eWorld: e, name: uniqueName(t, prefix), lt: map[string]string{}}
	w.src, _ = e.registerImage(t, srcRegion, w.name, nil)
	w.oldAMI, _ = e.registerImage(t, srcRegion, w.name+"-old", nil)
	for _, r := range []string{srcRegion, euRegion} {
		out, err := e.clients[r].CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
			LaunchTemplateName: aws.String(w.name),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(w.oldAMI), InstanceType: types.InstanceTypeT3Micro},
		})
		if err != nil {
			t.Fatalf("create launch template in %s: %v", r, err)
		}
		w.lt[r] = aws.ToString(out.LaunchTemplate.LaunchTemplateId)
	}
	if _, err := w.ssm(srcRegion).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(w.param()), Value: aws.String(w.oldAMI), Type: ssmtypes.ParameterTypeString, DataType: aws.String("aws:ec2:image"),
	}); err != nil {
		t.Fatalf("put parameter: %v", err)
	}
	out, err := w.teamEC2(euRegion).CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(w.name),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0000000000000000e"), InstanceType: types.InstanceTypeT3Micro},
	})
	if err != nil {
		t.Fatalf("create the team account's launch template: %v", err)
	}
	w.teamLT = aws.ToString(out.LaunchTemplate.LaunchTemplateId)
	e.proxy.Reset()
	return w
}

func (w *publishWorld) param() string { return "/golden/" + w.name + "/latest" }

func (w *publishWorld) ssm(region string) *ssm.Client {
	return ssm.NewFromConfig(awstest.Config(w.moto.Endpoint, region))
}

// teamConfig has the credentials of the team account's role, straight
// from moto (for setup and assertions).
func (w *publishWorld) teamConfig(region string) aws.Config {
	return teamConfig(w.moto.Endpoint, region)
}

// teamConfig has the credentials of the team account's role at endpoint.
func teamConfig(endpoint, region string) aws.Config {
	cfg := awstest.Config(endpoint, region)
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), teamRole))
	return cfg
}

func (w *publishWorld) teamEC2(region string) *ec2.Client {
	return ec2.NewFromConfig(w.teamConfig(region))
}
func (w *publishWorld) teamSSM(region string) *ssm.Client {
	return ssm.NewFromConfig(w.teamConfig(region))
}

// template distributes the source to euRegion, writes two parameters per
// region here, bumps this account's template in both regions, and copies
// into the team account in euRegion, with a parameter and a template
// there.
func (w *publishWorld) template(manifest string) string {
	return nullTemplate(fmt.Sprintf(`
    source_ami = %q
    regions    = [%q]
    tags = {
      Release = "{{ .SourceAMIName }}"
    }

    ssm_parameters {
      name = %q
      tags = {
        team = "web"
      }
    }
    ssm_parameters {
      name = "/golden/by-region/{{ .Region }}/{{ .Name }}"
    }

    launch_templates {
      name                = %q
      source_version      = "$Latest"
      set_default_version = true
    }

    target_accounts {
      account_id  = %q
      role_arn    = %q
      external_id = %q
      regions     = [%q]

      ssm_parameters {
        name = %q
      }
      launch_templates {
        id                  = %q
        region              = %q
        set_default_version = true
      }
    }

    manifest_output = %q
`, w.src, euRegion, w.param(), w.name, teamAccount, teamRole, teamExtID, euRegion, w.param(), w.teamLT, euRegion, manifest))
}

func (w *publishWorld) parameter(t *testing.T, c *ssm.Client, name string) (string, bool) {
	t.Helper()
	out, err := c.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		return "", false
	}
	return aws.ToString(out.Parameter.Value), true
}

// defaultImage returns the default version of a template and its AMI.
func defaultImage(t *testing.T, c *ec2.Client, id string) (int64, string) {
	t.Helper()
	out, err := c.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"$Default"}})
	if err != nil || len(out.LaunchTemplateVersions) != 1 {
		t.Fatalf("default version of %s: %v", id, err)
	}
	v := out.LaunchTemplateVersions[0]
	return aws.ToInt64(v.VersionNumber), aws.ToString(v.LaunchTemplateData.ImageId)
}

// TestE2EPublish distributes to a region and another account and points
// parameters and launch templates in both accounts at the new AMIs.
func TestE2EPublish(t *testing.T) {
	w := newPublishWorld(t, "e2e-pub")
	manifest := filepath.Join(w.dir, "manifest.json")
	res := w.build(t, w.template(manifest))
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	calls := w.proxy.Calls()
	if strings.Contains(res.Output(), teamExtID) {
		t.Error("the external ID is in packer's output")
	}
	amis := distributedAMIs(t, res, "null.existing")
	if amis[srcRegion] != w.src || amis[euRegion] == "" || len(amis) != 2 {
		t.Fatalf("artifact AMIs %v, want the source and a copy in %s (the team account's copy is not part of the ID)", amis, euRegion)
	}

	// This account: parameters and templates point at each region's AMI.
	for _, r := range []string{srcRegion, euRegion} {
		if v, _ := w.parameter(t, w.ssm(r), w.param()); v != amis[r] {
			t.Errorf("%s: %s = %q, want %s", r, w.param(), v, amis[r])
		}
		byRegion := "/golden/by-region/" + r + "/" + w.name
		if v, _ := w.parameter(t, w.ssm(r), byRegion); v != amis[r] {
			t.Errorf("%s: %s = %q, want %s", r, byRegion, v, amis[r])
		}
		if def, img := defaultImage(t, w.clients[r], w.lt[r]); def != 2 || img != amis[r] {
			t.Errorf("%s: default version %d with %s, want 2 with %s", r, def, img, amis[r])
		}
	}
	// The parameter the run created got its tags; the one it overwrote
	// kept none (SSM takes tags only on creation).
	tags, err := w.ssm(euRegion).ListTagsForResource(context.Background(), &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(w.param())})
	if err != nil || len(tags.TagList) != 1 || aws.ToString(tags.TagList[0].Key) != "team" {
		t.Errorf("tags of the created parameter: %+v (%v)", tags, err)
	}

	// The team account owns its copy, tagged, and its parameter and
	// template point at it; the source is not shared with it any more.
	out, err := w.teamEC2(euRegion).DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{w.name}}}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("the team account's AMIs named %s: %+v (%v), want one", w.name, out, err)
	}
	teamAMI := aws.ToString(out.Images[0].ImageId)
	if got := tagMap(out.Images[0].Tags); got["Release"] != w.name {
		t.Errorf("the team account's copy has tags %v, want Release=%s", got, w.name)
	}
	if v, _ := w.parameter(t, w.teamSSM(euRegion), w.param()); v != teamAMI {
		t.Errorf("the team account's %s = %q, want %s", w.param(), v, teamAMI)
	}
	if def, img := defaultImage(t, w.teamEC2(euRegion), w.teamLT); def != 2 || img != teamAMI {
		t.Errorf("the team account's template: default %d with %s, want 2 with %s", def, img, teamAMI)
	}
	if got := w.launchPermissions(t, srcRegion, w.src); len(got) != 0 {
		t.Errorf("the source is shared with %q after the run", got)
	}
	// moto ignores the external ID: check the request.
	assumed := false
	for _, c := range w.proxy.CallsFor("sts", "AssumeRole") {
		assumed = assumed || c.Params.Get("RoleArn") == teamRole && c.Params.Get("ExternalId") == teamExtID && c.Params.Get("RoleSessionName") == "ami-distribute"
	}
	if !assumed {
		t.Error("no AssumeRole of the team role with the external ID and session name ami-distribute")
	}

	// The manifest and the table say what was published where.
	var m struct {
		Regions         []distribute.Result               `json:"regions"`
		Parameters      []distribute.ParameterResult      `json:"parameters"`
		LaunchTemplates []distribute.LaunchTemplateResult `json:"launch_templates"`
	}
	b, err := os.ReadFile(manifest)
	if err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("manifest: %v\n%s", err, b)
	}
	if !slices.ContainsFunc(m.Regions, func(r distribute.Result) bool { return r.Account == teamAccount && r.ImageID == teamAMI }) {
		t.Errorf("manifest regions lack the team account's copy: %+v", m.Regions)
	}
	var params []string
	for _, p := range m.Parameters {
		params = append(params, fmt.Sprintf("%s|%s|%s|%s|%s", p.Account, p.Region, p.Name, p.Previous, p.Status))
	}
	slices.Sort(params)
	want := []string{
		fmt.Sprintf("%s|%s|%s||written", teamAccount, euRegion, w.param()),
		fmt.Sprintf("|%s|/golden/by-region/%s/%s||written", euRegion, euRegion, w.name),
		fmt.Sprintf("|%s|%s||written", euRegion, w.param()),
		fmt.Sprintf("|%s|/golden/by-region/%s/%s||written", srcRegion, srcRegion, w.name),
		fmt.Sprintf("|%s|%s|%s|written", srcRegion, w.param(), w.oldAMI),
	}
	slices.Sort(want)
	if !slices.Equal(params, want) {
		t.Errorf("manifest parameters:\n%s\nwant\n%s", strings.Join(params, "\n"), strings.Join(want, "\n"))
	}
	if len(m.LaunchTemplates) != 3 {
		t.Errorf("manifest launch templates: %+v, want three", m.LaunchTemplates)
	}
	checkPublishPolicies(t, calls, false)
	stdout := strings.ReplaceAll(res.Stdout, "%!(PACKER_COMMA)", ",")
	for _, s := range []string{"Published:", "launch template " + w.name, "account " + teamAccount + ", " + euRegion + ": " + teamAMI} {
		if !strings.Contains(stdout, s) {
			t.Errorf("packer's output lacks %q", s)
		}
	}
}

// TestE2EPublishRollsBack fails, then interrupts, the run at its last
// writes (the team account's launch template) and checks that both accounts
// are as before: parameters, templates, no copy, the source not shared.
func TestE2EPublishRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name      string
		interrupt bool
		action    string // the team account's call that fails or hangs
	}{
		// Setting the default fails after the version was made: the
		// rollback deletes it.
		{"failure", false, "ModifyLaunchTemplate"},
		{"ctrl-c", true, "CreateLaunchTemplateVersion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newPublishWorld(t, "e2e-pub-"+tc.name)
			var hit atomic.Bool
			arrived := make(chan struct{})
			w.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
				if !awstest.Matches(c, "ec2", tc.action) || c.Params.Get("LaunchTemplateId") != w.teamLT || !hit.CompareAndSwap(false, true) {
					return nil
				}
				if tc.interrupt {
					close(arrived)
					return awstest.LatencyFault(2 * time.Minute)
				}
				return &awstest.Fault{Status: 403, Code: "UnauthorizedOperation"}
			})
			opts := packertest.RunOptions{Args: []string{"build"}, Template: w.template(filepath.Join(w.dir, "manifest.json")), Timeout: 3 * time.Minute}
			if tc.interrupt {
				opts.Interrupt = arrived
			}
			res := w.packer.RunT(t, opts)
			calls := w.proxy.Calls() // the run's, before the checks below add theirs
			if res.ExitCode == 0 {
				t.Fatal("packer build exited 0")
			}
			if tc.interrupt && (!res.Interrupted || res.TimedOut) {
				t.Fatalf("interrupted %v, timed out %v", res.Interrupted, res.TimedOut)
			}
			if !hit.Load() {
				t.Fatal("the run never reached the team account's launch template")
			}
			for _, r := range []string{srcRegion, euRegion} {
				if v, ok := w.parameter(t, w.ssm(r), w.param()); r == srcRegion && v != w.oldAMI || r == euRegion && ok {
					t.Errorf("%s: %s = %q (exists %v), want it as before", r, w.param(), v, ok)
				}
				if _, ok := w.parameter(t, w.ssm(r), "/golden/by-region/"+r+"/"+w.name); ok {
					t.Errorf("%s: the by-region parameter the run created still exists", r)
				}
				if def, img := defaultImage(t, w.clients[r], w.lt[r]); def != 1 || img != w.oldAMI {
					t.Errorf("%s: default version %d with %s, want 1 with %s", r, def, img, w.oldAMI)
				}
				vs, err := w.proxyEC2(r).DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(w.lt[r])})
				if err != nil || len(vs.LaunchTemplateVersions) != 1 {
					t.Errorf("%s: %d versions of the template (%v), want only the first", r, len(vs.LaunchTemplateVersions), err)
				}
			}
			if _, ok := w.parameter(t, w.teamSSM(euRegion), w.param()); ok {
				t.Error("the team account's parameter, created by the run, still exists")
			}
			if def, _ := defaultImage(t, w.teamEC2(euRegion), w.teamLT); def != 1 {
				t.Errorf("the team account's template default is %d, want 1", def)
			}
			teamProxy := awstest.Config(w.proxy.URL, euRegion)
			teamProxy.Credentials = w.teamConfig(euRegion).Credentials
			vs, err := ec2.NewFromConfig(teamProxy).DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(w.teamLT)})
			if err != nil || len(vs.LaunchTemplateVersions) != 1 {
				t.Errorf("the team account's template has %d versions (%v), want only the first", len(vs.LaunchTemplateVersions), err)
			}
			teamImgs, err := w.teamEC2(euRegion).DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{w.name}}}})
			if err != nil || len(teamImgs.Images) != 0 {
				t.Errorf("the team account owns %d AMIs (%v), want none", len(teamImgs.Images), err)
			}
			l := w.leaks(t)
			if want := regional(srcRegion, w.src, w.oldAMI); !slices.Equal(sortedCopy(l.Images), sortedCopy(want)) {
				t.Errorf("images left = %q, want the source and the old AMI only", l.Images)
			}
			if got := w.launchPermissions(t, srcRegion, w.src); len(got) != 0 {
				t.Errorf("the source is shared with %q", got)
			}
			if !tc.interrupt {
				checkPublishPolicies(t, calls, true)
			}
		})
	}
}

// proxyEC2 returns a client through the proxy, which shows the launch
// template versions it deleted for moto.
func (w *publishWorld) proxyEC2(region string) *ec2.Client {
	c, _ := awstest.Clients(w.proxy.URL, region)
	return c
}

// optionalPublishActions are actions of ami-distribute-publish-policy.json
// that a successful run does not need.
var optionalPublishActions = map[string]string{
	"ssm:DeleteParameter":              "rollback: deleting a parameter the run created",
	"ec2:DeleteLaunchTemplateVersions": "rollback: deleting the launch template version the run made",
}

// optionalTargetActions are actions of
// ami-distribute-target-account-policy.json that the runs here do not need.
var optionalTargetActions = map[string]string{
	"ec2:DescribeInstances":                    "keep_releases/keep_days in the account: AMIs used by instances are kept",
	"ec2:DescribeLaunchTemplateVersions":       "keep_releases/keep_days in the account: AMIs used by launch templates are kept",
	"ec2:EnableImageDeprecation":               "deprecate_at/deprecate_after",
	"ec2:EnableImageDeregistrationProtection":  "deregistration_protection",
	"ec2:DisableImageDeregistrationProtection": "rollback of deregistration_protection",
	"ssm:AddTagsToResource":                    "tags of a parameter the run creates in the account",
	"kms:CreateGrant":                          "copies encrypted with kms_key_id or region_kms_key_ids of the account",
	"kms:Decrypt":                              "encrypted copies",
	"kms:DescribeKey":                          "encrypted copies",
	"kms:GenerateDataKey*":                     "encrypted copies",
	"kms:ReEncrypt*":                           "encrypted copies",
}

// checkPublishPolicies checks the calls of a run against the policies of
// example/iam: this account's with ami-distribute-policy.json and
// ami-distribute-publish-policy.json, the team account's (the role's
// credentials) with ami-distribute-target-account-policy.json. optional
// adds actions that the run did not need in both.
func checkPublishPolicies(t *testing.T, calls []awstest.Call, rollback bool) {
	t.Helper()
	dir := filepath.Join("..", "..", "example", "iam")
	load := func(name string, ph map[string]string) *awstest.Policy {
		p, err := awstest.LoadPolicy(filepath.Join(dir, name), ph)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := load("ami-distribute-policy.json", map[string]string{"BUNDLE_BUCKET": "bundles", "ACCOUNT_ID": awstest.TestAccountID})
	publish := load("ami-distribute-publish-policy.json", map[string]string{"ACCOUNT_ID": awstest.TestAccountID, "PARAMETER_PATH": "golden", "TARGET_ROLE_NAME": "ami-publisher"})
	target := load("ami-distribute-target-account-policy.json", map[string]string{"TARGET_ACCOUNT_ID": teamAccount, "PARAMETER_PATH": "golden"})
	trust, err := os.ReadFile(filepath.Join(dir, "ami-distribute-target-account-trust-policy.json"))
	if err != nil || !json.Valid(trust) || !strings.Contains(string(trust), `"sts:ExternalId"`) {
		t.Errorf("the trust policy is not JSON with an sts:ExternalId condition: %v", err)
	}
	var own, theirs []awstest.Call
	for _, c := range calls {
		if c.AccessKeyID == awstest.TestAccessKeyID {
			own = append(own, c)
			continue
		}
		c.Account = teamAccount
		theirs = append(theirs, c)
	}
	both := &awstest.Policy{Statements: append(slices.Clone(base.Statements), publish.Statements...)}
	denied, used := both.Denied(own)
	for _, p := range denied {
		t.Errorf("ami-distribute-policy.json + ami-distribute-publish-policy.json: %s", p)
	}
	for _, st := range publish.Statements {
		for _, a := range st.Actions {
			if !used[a] && (!rollback && optionalPublishActions[a] == "" || rollback) {
				t.Errorf("ami-distribute-publish-policy.json allows %s, which no call of the run needed", a)
			}
		}
	}
	if len(theirs) == 0 {
		t.Fatal("no call with the team account's credentials")
	}
	denied, used = target.Denied(theirs)
	for _, p := range denied {
		t.Errorf("ami-distribute-target-account-policy.json: %s", p)
	}
	for _, st := range target.Statements {
		for _, a := range st.Actions {
			rollbackOnly := a == "ec2:DeregisterImage" || a == "ec2:DeleteSnapshot" || a == "ssm:DeleteParameter" || a == "ec2:DeleteLaunchTemplateVersions"
			if !used[a] && optionalTargetActions[a] == "" && (rollback || !rollbackOnly) {
				t.Errorf("ami-distribute-target-account-policy.json allows %s, which no call of the run needed", a)
			}
		}
	}
}
