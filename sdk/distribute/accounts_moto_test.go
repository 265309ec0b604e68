//go:build unix

package distribute_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

const (
	targetAccount = "222222222222"
	targetRole    = "arn:aws:iam::222222222222:role/ami-publisher"
	thirdAccount  = "333344445555"
	thirdRole     = "arn:aws:iam::333344445555:role/ami-publisher"
)

// roleConfig returns a configuration whose credentials are those of role,
// assumed at endpoint (moto maps them to the role's account).
func roleConfig(endpoint, region, role string) aws.Config {
	cfg := awstest.Config(endpoint, region)
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "ami-distribute-test"
	}))
	return cfg
}

// accounts returns an AccountFunc that assumes each account's role through
// the proxy, as a caller with awscfg.Session.Assume does.
func (e *motoEnv) accounts(t *testing.T) distribute.AccountFunc {
	return func(ctx context.Context, a distribute.TargetAccount) (*distribute.AccountClients, error) {
		cfg := roleConfig(e.proxy.URL, "us-east-1", a.RoleARN)
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return nil, err
		}
		var mu sync.Mutex
		cache := map[string]*ec2.Client{}
		return &distribute.AccountClients{
			AccountID: aws.ToString(id.Account),
			EC2: func(region string) distribute.API {
				mu.Lock()
				defer mu.Unlock()
				if c := cache[region]; c != nil {
					return c
				}
				c := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = region })
				cache[region] = c
				return c
			},
			SSM: func(region string) distribute.SSMAPI {
				return ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.Region = region })
			},
		}, nil
	}
}

// accountWorld is a source AMI in us-east-1 and, in the target account, a
// launch template in both regions of the output and a parameter holding an
// older AMI in eu-west-1; in the caller's account a parameter to write.
type accountWorld struct {
	src       string
	templates map[string]string // region → the target account's template
	ec2B      func(region string) *ec2.Client
	ssmB      func(region string) *ssm.Client
}

func newAccountWorld(t *testing.T, e *motoEnv, name string) *accountWorld {
	t.Helper()
	ctx := context.Background()
	w := &accountWorld{src: e.registerSource(t, name), templates: map[string]string{}}
	w.ec2B = func(region string) *ec2.Client {
		return ec2.NewFromConfig(roleConfig(e.moto.Endpoint, region, targetRole))
	}
	w.ssmB = func(region string) *ssm.Client {
		return ssm.NewFromConfig(roleConfig(e.moto.Endpoint, region, targetRole))
	}
	for _, r := range []string{"us-east-1", "eu-west-1"} {
		out, err := w.ec2B(r).CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
			LaunchTemplateName: aws.String(name),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0000000000000000e"), InstanceType: types.InstanceTypeT3Micro},
		})
		if err != nil {
			t.Fatalf("create the target account's launch template in %s: %v", r, err)
		}
		w.templates[r] = aws.ToString(out.LaunchTemplate.LaunchTemplateId)
	}
	if _, err := w.ssmB("eu-west-1").PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/" + name + "/latest"), Value: aws.String("ami-0000000000000000e"), Type: ssmtypes.ParameterTypeString, DataType: aws.String("aws:ec2:image"),
	}); err != nil {
		t.Fatalf("put the target account's parameter: %v", err)
	}
	return w
}

func (w *accountWorld) input(name string) *distribute.DistributeInput {
	return &distribute.DistributeInput{
		Copy: distribute.CopyInput{
			SourceImageID: w.src, SourceRegion: motoSrc,
			Targets: []distribute.Target{{Region: "eu-west-1"}},
			Tags:    map[string]string{"App": name},
		},
		Parameters: []distribute.Parameter{{Name: "/" + name + "/source"}},
		Accounts: []distribute.TargetAccount{{
			AccountID: targetAccount, RoleARN: targetRole, ExternalID: "team-web",
			Parameters:      []distribute.Parameter{{Name: "/" + name + "/latest"}},
			LaunchTemplates: []distribute.LaunchTemplate{{Name: name, SetDefault: true}},
		}},
	}
}

// imagesOwned lists the AMIs of the caller's credentials in region with
// the given name.
func imagesOwned(t *testing.T, c *ec2.Client, name string) []types.Image {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}},
	})
	if err != nil {
		t.Fatalf("describe images: %v", err)
	}
	return out.Images
}

func launchUsers(t *testing.T, e *motoEnv, id string) []string {
	t.Helper()
	out, err := e.direct(motoSrc).DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{ImageId: aws.String(id), Attribute: types.ImageAttributeNameLaunchPermission})
	if err != nil {
		t.Fatalf("launch permissions of %s: %v", id, err)
	}
	var users []string
	for _, p := range out.LaunchPermissions {
		users = append(users, aws.ToString(p.UserId))
	}
	return users
}

// TestMotoDistributeToAnotherAccount copies into a second account with a
// role of that account, publishes there and here, and revokes the sharing
// it added for the copies.
func TestMotoDistributeToAnotherAccount(t *testing.T) {
	e := newMotoEnv(t)
	ctx := context.Background()
	const name = "acct-ok"
	w := newAccountWorld(t, e, name)
	in := w.input(name)
	// A third account gets a copy in eu-west-1 only, and nothing else.
	in.Accounts = append(in.Accounts, distribute.TargetAccount{AccountID: thirdAccount, RoleARN: thirdRole, Regions: []string{"eu-west-1"}})
	out, err := distribute.Distribute(ctx, e.clients(), in, fastWait, func(o *distribute.Options) {
		o.SSM = e.ssmClients()
		o.Accounts = e.accounts(t)
	})
	if err != nil {
		t.Fatalf("Distribute: %v", err)
	}
	third := out.AccountImageIDs(thirdAccount)
	if len(third) != 1 || third["eu-west-1"] == "" {
		t.Errorf("the third account's AMIs %v, want one in eu-west-1", third)
	}
	imgs := imagesOwned(t, ec2.NewFromConfig(roleConfig(e.moto.Endpoint, "eu-west-1", thirdRole)), name)
	if len(imgs) != 1 || aws.ToString(imgs[0].ImageId) != third["eu-west-1"] {
		t.Errorf("the third account owns %+v in eu-west-1, want %s", imgs, third["eu-west-1"])
	}
	if imgs := imagesOwned(t, ec2.NewFromConfig(roleConfig(e.moto.Endpoint, "us-east-1", thirdRole)), name); len(imgs) != 0 {
		t.Errorf("the third account owns %+v in us-east-1, a region it was not given", imgs)
	}
	own := out.ImageIDs()
	theirs := out.AccountImageIDs(targetAccount)
	if len(own) != 2 || len(theirs) != 2 {
		t.Fatalf("own AMIs %v, the account's %v; want two each", own, theirs)
	}
	for _, r := range []string{"us-east-1", "eu-west-1"} {
		imgs := imagesOwned(t, w.ec2B(r), name)
		if len(imgs) != 1 || aws.ToString(imgs[0].ImageId) != theirs[r] || aws.ToString(imgs[0].OwnerId) != targetAccount {
			t.Errorf("%s: the account owns %+v, want %s", r, imgs, theirs[r])
		}
		// The account's parameter and template point at its own copy.
		p, err := w.ssmB(r).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/" + name + "/latest")})
		if err != nil || aws.ToString(p.Parameter.Value) != theirs[r] {
			t.Errorf("%s: the account's parameter %+v (%v), want %s", r, p, err, theirs[r])
		}
		lt, err := w.ec2B(r).DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
			LaunchTemplateId: aws.String(w.templates[r]), Versions: []string{"$Default"},
		})
		if err != nil || len(lt.LaunchTemplateVersions) != 1 || aws.ToString(lt.LaunchTemplateVersions[0].LaunchTemplateData.ImageId) != theirs[r] {
			t.Errorf("%s: the account's default launch template version %+v (%v), want one with %s", r, lt, err, theirs[r])
		}
		// This account's parameter points at this account's AMI.
		mine, err := e.directSSM(r).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/" + name + "/source")})
		if err != nil || aws.ToString(mine.Parameter.Value) != own[r] {
			t.Errorf("%s: this account's parameter %+v (%v), want %s", r, mine, err, own[r])
		}
	}
	if users := launchUsers(t, e, w.src); len(users) != 0 {
		t.Errorf("the source is still shared with %v after the copies", users)
	}
	// The copies were made by the role, with the source shared just for it.
	var shared, revoked bool
	for _, c := range e.proxy.CallsFor("ec2", "ModifyImageAttribute") {
		switch {
		case c.Params.Get("LaunchPermission.Add.1.UserId") == targetAccount:
			shared = true
		case c.Params.Get("LaunchPermission.Remove.1.UserId") == targetAccount:
			revoked = shared
		}
	}
	if !shared || !revoked {
		t.Errorf("sharing with the account: added %v, then revoked %v", shared, revoked)
	}
	for _, p := range out.Parameters {
		if p.Status != distribute.PublishWritten {
			t.Errorf("parameter result %+v", p)
		}
	}
	if n := len(out.Parameters); n != 4 {
		t.Errorf("%d parameter results, want 4 (two regions, two accounts)", n)
	}
}

// TestMotoDistributeToAnotherAccountRollsBack fails, or cancels, the run
// at its last step in the other account and checks that both accounts are
// exactly as before: no copy anywhere, the source not shared, parameters
// and launch templates as they were.
func TestMotoDistributeToAnotherAccountRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool
	}{{"fault", false}, {"cancel", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMotoEnv(t)
			name := "acct-rb-" + tc.name
			w := newAccountWorld(t, e, name)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// The last write in the other account: its launch template in
			// us-east-1, after its parameters.
			e.proxy.SetFault(func(r *http.Request, c awstest.Call) *awstest.Fault {
				if c.Action != "CreateLaunchTemplateVersion" || c.Region != "us-east-1" || c.Params.Get("LaunchTemplateId") != w.templates["us-east-1"] {
					return nil
				}
				if tc.cancel {
					cancel()
					return nil
				}
				return &awstest.Fault{Status: 403, Code: "UnauthorizedOperation"}
			})
			out, err := distribute.Distribute(ctx, e.clients(), w.input(name), fastWait, func(o *distribute.Options) {
				o.SSM = e.ssmClients()
				o.Accounts = e.accounts(t)
			})
			if err == nil {
				t.Fatal("Distribute succeeded")
			}
			if tc.cancel && !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
			for _, r := range []string{"us-east-1", "eu-west-1"} {
				if imgs := imagesOwned(t, w.ec2B(r), name); len(imgs) != 0 {
					t.Errorf("%s: the account still owns %v", r, imgs)
				}
				if imgs := imagesOwned(t, e.direct(r), name); len(imgs) != map[string]int{"us-east-1": 1, "eu-west-1": 0}[r] {
					t.Errorf("%s: this account owns %d AMIs named %s, want the source only", r, len(imgs), name)
				}
				if _, err := e.directSSM(r).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/" + name + "/source")}); err == nil {
					t.Errorf("%s: this account's parameter exists after the rollback", r)
				}
				lt, err := w.ec2B(r).DescribeLaunchTemplates(context.Background(), &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{w.templates[r]}})
				if err != nil || aws.ToInt64(lt.LaunchTemplates[0].DefaultVersionNumber) != 1 {
					t.Errorf("%s: the account's template %+v (%v), want default 1", r, lt, err)
				}
			}
			p, err := w.ssmB("eu-west-1").GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/" + name + "/latest")})
			if err != nil || aws.ToString(p.Parameter.Value) != "ami-0000000000000000e" {
				t.Errorf("the account's parameter %+v (%v), want its old value", p, err)
			}
			if _, err := w.ssmB("us-east-1").GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/" + name + "/latest")}); err == nil {
				t.Error("the account's parameter in us-east-1, created by the run, still exists")
			}
			if users := launchUsers(t, e, w.src); len(users) != 0 {
				t.Errorf("the source is still shared with %v", users)
			}
			for _, r := range out.Results {
				if r.ImageID != "" && !r.Source && r.Status != distribute.StatusRemoved {
					t.Errorf("result %s %s %s: %s, want removed", r.Account, r.Region, r.ImageID, r.Status)
				}
			}
			var statuses []string
			for _, p := range out.Parameters {
				statuses = append(statuses, p.Account+":"+p.Region+":"+string(p.Status))
			}
			slices.Sort(statuses)
			want := []string{"222222222222:eu-west-1:restored", "222222222222:us-east-1:deleted", ":eu-west-1:deleted", ":us-east-1:deleted"}
			if strings.Join(statuses, " ") != strings.Join(want, " ") {
				t.Errorf("parameter results %q, want %q", statuses, want)
			}
		})
	}
}

// TestMotoRetainKeepsPublishedAMIs keeps, against keep_releases, the AMI a
// published parameter holds and the AMI of any version of a published
// launch template, and removes the others.
func TestMotoRetainKeepsPublishedAMIs(t *testing.T) {
	e := newMotoEnv(t)
	ctx := context.Background()
	var ids []string
	for _, n := range []string{"ret-pub-1", "ret-pub-2", "ret-pub-3", "ret-pub-4"} {
		ids = append(ids, e.registerSource(t, n))
	}
	c := e.direct(motoSrc)
	ids = newestFirst(t, c, ids)
	lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("ret-pub"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(ids[2])},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Version 2 moves on to the newest; version 1 (neither default nor
	// latest) still names ids[2].
	if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(ids[0])},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, DefaultVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.directSSM(motoSrc).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/ret-pub/previous"), Value: aws.String(ids[1]), Type: ssmtypes.ParameterTypeString,
	}); err != nil {
		t.Fatal(err)
	}
	in := &distribute.RetainInput{
		Regions: []string{motoSrc}, Selector: distribute.Selector{Name: "ret-pub-*"}, KeepNewest: 1,
		Parameters:      []distribute.Parameter{{Name: "/ret-pub/previous"}, {Name: "/ret-pub/missing"}},
		LaunchTemplates: []distribute.LaunchTemplate{{Name: "ret-pub"}},
	}
	out, err := distribute.Retain(ctx, e.clients(), in, fastWait, func(o *distribute.Options) { o.SSM = e.ssmClients() })
	if err != nil {
		t.Fatalf("Retain: %v", err)
	}
	got := map[string]string{}
	for _, d := range out.Decisions {
		got[d.ImageID] = string(d.Action) + ": " + d.Reason
	}
	want := map[string]string{
		ids[0]: "keep: among the newest 1",
		ids[1]: "keep: in use by parameter /ret-pub/previous",
		ids[2]: "keep: in use by launch template ret-pub version 1",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
	if !strings.HasPrefix(got[ids[3]], "remove") {
		t.Errorf("%s: %q, want it removed", ids[3], got[ids[3]])
	}
}

// newestFirst orders the AMIs ids as retention ranks them: the most
// recently created first and, among AMIs created in the same second (moto
// registers most of them so), the lowest ID first.
func newestFirst(t *testing.T, api ec2.DescribeImagesAPIClient, ids []string) []string {
	t.Helper()
	out, err := api.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]time.Time{}
	for _, img := range out.Images {
		at, err := time.Parse(time.RFC3339, aws.ToString(img.CreationDate))
		if err != nil {
			t.Fatalf("%s: creation date: %v", aws.ToString(img.ImageId), err)
		}
		created[aws.ToString(img.ImageId)] = at
	}
	if len(created) != len(ids) {
		t.Fatalf("described %d of the AMIs %v", len(created), ids)
	}
	ranked := slices.Clone(ids)
	slices.SortFunc(ranked, func(a, b string) int {
		if c := created[b].Compare(created[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return ranked
}
