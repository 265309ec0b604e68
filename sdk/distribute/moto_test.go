//go:build unix

package distribute_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

const (
	motoSrc   = "us-east-1"
	motoOrg   = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
	motoOU    = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
	accountA  = "210987654321"
	accountB  = "333333333333"
	motoOwner = awstest.TestAccountID
)

// motoEnv is a moto server with a recording proxy in front of it.
type motoEnv struct {
	moto  *awstest.Moto
	proxy *awstest.Proxy
	mu    sync.Mutex
	cache map[string]*ec2.Client
	// retries is the number of attempts of the clients behind clients().
	retries int
}

var shared struct {
	once sync.Once
	moto *awstest.Moto
	err  error
}

// TestMain stops the moto server the tests of this package share (started
// on first use, so that unit-test-only runs do not start it).
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.moto != nil {
		if err := shared.moto.Stop(); err != nil {
			code = 1
		}
	}
	os.Exit(code)
}

// newMotoEnv returns the shared moto server (without moto's preloaded
// AMIs) behind a recording proxy of the test's own. Tests using it must not
// run in parallel and must use AMI names of their own.
func newMotoEnv(t *testing.T) *motoEnv {
	t.Helper()
	shared.once.Do(func() {
		shared.moto, shared.err = awstest.StartMoto(context.Background(), awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	})
	if shared.err != nil {
		t.Fatalf("start moto (%s): %v", awstest.MotoInstallHint, shared.err)
	}
	m := shared.moto
	return &motoEnv{moto: m, proxy: awstest.NewProxy(t, m.Endpoint, awstest.ProxyOptions{}), cache: map[string]*ec2.Client{}, retries: 1}
}

// clients returns clients that talk through the proxy.
func (e *motoEnv) clients() distribute.ClientFunc {
	return func(region string) distribute.API {
		e.mu.Lock()
		defer e.mu.Unlock()
		if c := e.cache[region]; c != nil {
			return c
		}
		c := ec2.NewFromConfig(awstest.Config(e.proxy.URL, region), func(o *ec2.Options) {
			o.RetryMaxAttempts = e.retries
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = e.retries
				so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 10 * time.Millisecond, nil })
			})
		})
		e.cache[region] = c
		return c
	}
}

// direct returns a client that bypasses the proxy, for assertions.
func (e *motoEnv) direct(region string) *ec2.Client {
	c, _ := awstest.Clients(e.moto.Endpoint, region)
	return c
}

// registerSource registers an AMI to copy (moto gives it one snapshot).
func (e *motoEnv) registerSource(t *testing.T, name string) string {
	t.Helper()
	out, err := e.direct(motoSrc).RegisterImage(context.Background(), &ec2.RegisterImageInput{
		Name: aws.String(name), Description: aws.String("source"), RootDeviceName: aws.String("/dev/xvda"),
		Architecture: types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
	})
	if err != nil {
		t.Fatalf("register source: %v", err)
	}
	return aws.ToString(out.ImageId)
}

func fastWait(o *distribute.Options) {
	o.Wait = distribute.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond, MaxWait: 10 * time.Second}
	o.RetryDelay = 10 * time.Millisecond
	o.ConsistencyTimeout = 2 * time.Second
}

func TestMotoCopySharesAndTagsInEveryRegion(t *testing.T) {
	e := newMotoEnv(t)
	ctx := context.Background()
	src := e.registerSource(t, "cp-1")
	in := &distribute.CopyInput{
		SourceImageID: src, SourceRegion: motoSrc, IncludeSource: true,
		Targets: []distribute.Target{
			{Region: "eu-west-1", KMSKeyID: "alias/team-eu"},
			{Region: "ap-southeast-2", Name: "cp-1-ap", Tags: map[string]string{"Region": "ap"}},
		},
		Permissions: distribute.Permissions{
			Accounts: []string{accountA, accountB}, OrgARNs: []string{motoOrg}, OUARNs: []string{motoOU},
			SnapshotAccounts: []string{accountA}, SnapshotGroups: nil,
		},
		Tags:         map[string]string{"App": "web", "Build": "42"},
		SnapshotTags: map[string]string{"App": "web-snap"},
		Deprecation:  distribute.Deprecation{After: 240 * time.Hour, Optional: true},
		Protection:   distribute.Protection{Enabled: true, Optional: true},
	}
	out, err := distribute.Copy(ctx, e.clients(), in, fastWait)
	if err != nil {
		t.Fatalf("Copy: %v\n%s", err, out.Results)
	}
	t.Logf("\n%s", out.Results)
	if len(out.Results) != 3 {
		t.Fatalf("results: %v", out.Results)
	}

	for _, r := range out.Results {
		c := e.direct(r.Region)
		if r.Status != distribute.StatusAvailable || r.ImageID == "" || len(r.SnapshotIDs) != 1 {
			t.Fatalf("%s: %+v", r.Region, r)
		}
		// Launch permissions, read back in the owner account.
		attr, err := c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(r.ImageID), Attribute: types.ImageAttributeNameLaunchPermission})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, lp := range attr.LaunchPermissions {
			got = append(got, aws.ToString(lp.UserId)+aws.ToString(lp.OrganizationArn)+aws.ToString(lp.OrganizationalUnitArn)+string(lp.Group))
		}
		slices.Sort(got)
		want := []string{accountA, accountB, motoOU, motoOrg}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: launch permissions %v, want %v", r.Region, got, want)
		}
		// Snapshot permissions.
		sattr, err := c.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(r.SnapshotIDs[0]), Attribute: types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil {
			t.Fatal(err)
		}
		if len(sattr.CreateVolumePermissions) != 1 || aws.ToString(sattr.CreateVolumePermissions[0].UserId) != accountA {
			t.Errorf("%s: snapshot permissions %+v", r.Region, sattr.CreateVolumePermissions)
		}
		// Tags on the AMI and on its snapshot.
		imgTags := tagsOf(t, c, r.ImageID)
		snapTags := tagsOf(t, c, r.SnapshotIDs[0])
		if imgTags["App"] != "web" || imgTags["Build"] != "42" || snapTags["App"] != "web-snap" {
			t.Errorf("%s: image tags %v, snapshot tags %v", r.Region, imgTags, snapTags)
		}
		if r.Region == "ap-southeast-2" && (imgTags["Region"] != "ap" || r.Name != "cp-1-ap") {
			t.Errorf("ap-southeast-2 override: tags %v, name %q", imgTags, r.Name)
		}
		// moto does not implement deprecation or protection: warnings.
		if len(r.Warnings) != 2 {
			t.Errorf("%s: warnings %q", r.Region, r.Warnings)
		}
	}

	// The requests moto ignores or refuses, from the proxy's record.
	copies := e.proxy.CallsFor("ec2", "CopyImage")
	if len(copies) != 2 {
		t.Fatalf("%d CopyImage calls", len(copies))
	}
	for _, c := range copies {
		name := map[string]string{"eu-west-1": "cp-1", "ap-southeast-2": "cp-1-ap"}[c.Region]
		var want string
		for _, r := range out.Results {
			if r.Region == c.Region && r.Name == name {
				want = r.ClientToken
			}
		}
		if got := c.Params.Get("ClientToken"); got == "" || got != want {
			t.Errorf("%s: ClientToken %q, result's %q", c.Region, got, want)
		}
		eu := c.Region == "eu-west-1"
		if (c.Params.Get("Encrypted") == "true") != eu || (c.Params.Get("KmsKeyId") == "alias/team-eu") != eu {
			t.Errorf("%s: encryption params %v", c.Region, c.Params)
		}
	}
	dep := e.proxy.CallsFor("ec2", "EnableImageDeprecation")
	prot := e.proxy.CallsFor("ec2", "EnableImageDeregistrationProtection")
	if len(dep) != 3 || len(prot) != 3 {
		t.Errorf("%d deprecation and %d protection requests, want 3 each", len(dep), len(prot))
	}
	for _, c := range dep {
		at, err := time.Parse(time.RFC3339, c.Params.Get("DeprecateAt"))
		if err != nil || time.Until(at) < 239*time.Hour || time.Until(at) > 241*time.Hour {
			t.Errorf("DeprecateAt %q", c.Params.Get("DeprecateAt"))
		}
	}
	for _, c := range e.proxy.CallsFor("ec2", "ModifySnapshotAttribute") {
		if c.Params.Get("OperationType") != "add" || c.Params.Get("UserId.1") != accountA {
			t.Errorf("snapshot permission request not in the flat form: %v", c.Params)
		}
	}

	// Table and JSON for the manifest.
	b, err := json.MarshalIndent(out.Results, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"region": "ap-southeast-2"`) || !strings.Contains(string(b), motoOrg) {
		t.Errorf("JSON: %s", b)
	}
}

func tagsOf(t *testing.T, c *ec2.Client, id string) map[string]string {
	t.Helper()
	out, err := c.DescribeTags(context.Background(), &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range out.Tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

func TestMotoRetriedCopyReusesClientToken(t *testing.T) {
	e := newMotoEnv(t)
	e.retries = 3
	src := e.registerSource(t, "retry-2")
	// The first CopyImage is throttled; the SDK's retry must send the same
	// token (moto itself ignores tokens, so the record is the proof).
	e.proxy.SetFault(awstest.FailFirst(1, "ec2", "CopyImage", awstest.ThrottleFault("ec2")))
	out, err := distribute.Copy(context.Background(), e.clients(), &distribute.CopyInput{
		SourceImageID: src, SourceRegion: motoSrc, Targets: []distribute.Target{{Region: "eu-west-1"}},
	}, fastWait)
	if err != nil {
		t.Fatal(err)
	}
	calls := e.proxy.CallsFor("ec2", "CopyImage")
	if len(calls) != 2 || calls[0].Status != http.StatusServiceUnavailable || calls[1].Status != http.StatusOK {
		t.Fatalf("CopyImage calls: %v", calls)
	}
	if a, b := calls[0].Params.Get("ClientToken"), calls[1].Params.Get("ClientToken"); a == "" || a != b || a != out.Results[0].ClientToken {
		t.Errorf("tokens %q, %q, result %q", a, b, out.Results[0].ClientToken)
	}
	imgs, err := e.direct("eu-west-1").DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"retry-2"}}},
	})
	if err != nil || len(imgs.Images) != 1 {
		t.Errorf("eu-west-1 holds %d AMIs named retry-2 (err %v), want 1", len(imgs.Images), err)
	}
}

// TestMotoRerunAfterRollbackMakesNewCopies fails a run in one region (its
// copies are removed), then runs again with the same input. EC2 answers a
// CopyImage whose token it has seen with the earlier copy (deregistered by
// then) or, when parameters differ, IdempotentParameterMismatch; moto
// ignores tokens, so the proxy plays that part. The rerun must send new
// tokens and succeed.
func TestMotoRerunAfterRollbackMakesNewCopies(t *testing.T) {
	e := newMotoEnv(t)
	ctx := context.Background()
	src := e.registerSource(t, "rerun-1")
	var mu sync.Mutex
	seen := map[string]bool{}
	failAP := true
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Action != "CopyImage" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		tok := c.Params.Get("ClientToken")
		if seen[tok] {
			return &awstest.Fault{Code: "IdempotentParameterMismatch", Status: http.StatusBadRequest,
				Message: "token already used by an earlier request"}
		}
		seen[tok] = true
		if failAP && c.Region == "ap-southeast-2" {
			return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
		}
		return nil
	})
	in := &distribute.CopyInput{
		SourceImageID: src, SourceRegion: motoSrc, Concurrency: 1, Name: "rerun-1-copy",
		Targets: []distribute.Target{{Region: "eu-west-1"}, {Region: "ap-southeast-2"}},
	}
	if _, err := distribute.Copy(ctx, e.clients(), in, fastWait); err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Fatalf("first run: err = %v, want the injected failure", err)
	}
	mu.Lock()
	failAP = false
	mu.Unlock()
	out, err := distribute.Copy(ctx, e.clients(), in, fastWait)
	if err != nil {
		t.Fatalf("rerun after a rolled-back run: %v", err)
	}
	for _, r := range out.Results {
		if r.Status != distribute.StatusAvailable {
			t.Errorf("%s: %+v", r.Region, r)
		}
		imgs, err := e.direct(r.Region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{r.ImageID}})
		if err != nil || len(imgs.Images) != 1 || imgs.Images[0].State != types.ImageStateAvailable {
			t.Errorf("%s: copy %s not available (err %v)", r.Region, r.ImageID, err)
		}
	}
	if n := len(e.proxy.CallsFor("ec2", "CopyImage")); n != 4 {
		t.Errorf("CopyImage calls = %d, want 4 (two per run)", n)
	}
}

func TestMotoFailureLeavesNoCopyBehind(t *testing.T) {
	regions := []string{motoSrc, "eu-west-1", "ap-southeast-2", "us-west-2"}
	tests := []struct {
		name  string
		fault awstest.FaultFunc
		want  string
	}{
		{
			name: "sharing refused in one region",
			fault: func(_ *http.Request, c awstest.Call) *awstest.Fault {
				if c.Action == "ModifyImageAttribute" && c.Region == "ap-southeast-2" {
					return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
				}
				return nil
			},
			want: "UnauthorizedOperation",
		},
		{
			name: "CopyImage answer lost after the copy was made",
			fault: func(_ *http.Request, c awstest.Call) *awstest.Fault {
				if c.Action == "CopyImage" && c.Region == "us-west-2" {
					return &awstest.Fault{Forward: true, Reset: true}
				}
				return nil
			},
			want: "us-west-2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newMotoEnv(t)
			ctx := context.Background()
			src := e.registerSource(t, "fail-"+strings.ReplaceAll(tc.name, " ", "-"))
			base, err := awstest.TakeSnapshot(ctx, e.moto.Endpoint, regions)
			if err != nil {
				t.Fatal(err)
			}
			e.proxy.SetFault(tc.fault)
			out, err := distribute.Copy(ctx, e.clients(), &distribute.CopyInput{
				SourceImageID: src, SourceRegion: motoSrc, Concurrency: 3,
				Targets:     []distribute.Target{{Region: "eu-west-1"}, {Region: "ap-southeast-2"}, {Region: "us-west-2"}},
				Permissions: distribute.Permissions{Accounts: []string{accountA}},
			}, fastWait)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			t.Logf("\n%s", out.Results)
			leaks, err := awstest.ListLeaks(ctx, e.moto.Endpoint, regions, base)
			if err != nil {
				t.Fatal(err)
			}
			if !leaks.Empty() {
				t.Errorf("left behind: %s", leaks)
			}
			if _, err := e.direct(motoSrc).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{src}}); err != nil {
				t.Errorf("source gone: %v", err)
			}
		})
	}
}

func TestMotoPreflight(t *testing.T) {
	e := newMotoEnv(t)
	ctx := context.Background()
	src := e.registerSource(t, "pf-4")
	if _, err := e.direct("eu-west-1").RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("pf-4"), RootDeviceName: aws.String("/dev/xvda")}); err != nil {
		t.Fatal(err)
	}
	_, err := distribute.Preflight(ctx, e.clients(), &distribute.CopyInput{
		SourceImageID: src, SourceRegion: motoSrc,
		Targets: []distribute.Target{{Region: "eu-west-1"}, {Region: "eu-nowhere-9"}, {Region: "us-west-2"}},
	}, fastWait)
	for _, want := range []string{`eu-west-1: name "pf-4" is already used by ami-`, "eu-nowhere-9: region does not exist"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	for _, c := range e.proxy.Calls() {
		if !strings.HasPrefix(c.Action, "Describe") {
			t.Errorf("preflight made a %s call", c.Action)
		}
		if c.Region == "eu-nowhere-9" {
			t.Errorf("preflight called the unknown region: %s", c.Action)
		}
	}
}

func TestMotoRetentionRemovesExactlyTheExpectedImages(t *testing.T) {
	e := newMotoEnv(t)
	ctx := context.Background()
	regions := []string{"eu-west-1", "us-west-2"}
	// ids[region][name]. moto's creation dates have whole seconds, so the
	// images are made in three rounds, each in a later second than the one
	// before: ret-0..2 (plus two outside the selector), then ret-3, then
	// ret-4.
	ids := map[string]map[string]string{}
	register := func(names ...string) {
		for _, r := range regions {
			c := e.direct(r)
			if ids[r] == nil {
				ids[r] = map[string]string{}
			}
			for _, n := range names {
				out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String(n), RootDeviceName: aws.String("/dev/xvda")})
				if err != nil {
					t.Fatal(err)
				}
				team := "web"
				if n == "ret-ops" {
					team = "ops"
				}
				if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(out.ImageId)}, Tags: []types.Tag{{Key: aws.String("Team"), Value: aws.String(team)}}}); err != nil {
					t.Fatal(err)
				}
				ids[r][n] = aws.ToString(out.ImageId)
			}
		}
	}
	register("ret-0", "ret-1", "ret-2", "ret-ops", "other-ret")
	awstest.NextSecond(t)
	register("ret-3")
	awstest.NextSecond(t)
	register("ret-4")

	// In eu-west-1, ret-1 runs an instance and ret-2 is a launch
	// template's image.
	eu := e.direct("eu-west-1")
	if _, err := eu.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ids["eu-west-1"]["ret-1"]), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeT3Micro}); err != nil {
		t.Fatal(err)
	}
	if _, err := eu.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("ret"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(ids["eu-west-1"]["ret-2"])},
	}); err != nil {
		t.Fatal(err)
	}
	snapsBefore := map[string]map[string]string{} // region → image → snapshot
	for _, r := range regions {
		snapsBefore[r] = imageSnapshots(t, e.direct(r))
	}
	in := &distribute.RetainInput{
		Regions:    regions,
		Selector:   distribute.Selector{Name: "ret-*", Tags: map[string]string{"Team": "web"}},
		KeepNewest: 1,
		Protect:    []string{ids["eu-west-1"]["ret-3"], ids["us-west-2"]["ret-3"]}, // "just made"
		DryRun:     true,
	}
	plan, err := distribute.Retain(ctx, e.clients(), in, fastWait)
	if err != nil {
		t.Fatal(err)
	}
	var tb strings.Builder
	_ = plan.Decisions.WriteTable(&tb)
	t.Logf("plan:\n%s", tb.String())
	for _, c := range e.proxy.Calls() {
		if !strings.HasPrefix(c.Action, "Describe") {
			t.Errorf("dry run made a %s call", c.Action)
		}
	}
	for _, d := range plan.Decisions {
		if d.Name == "ret-ops" || d.Name == "other-ret" {
			t.Errorf("%s outside the selector was considered", d.Name)
		}
	}

	in.DryRun = false
	out, err := distribute.Retain(ctx, e.clients(), in, fastWait)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"eu-west-1": {"ret-0"}, "us-west-2": {"ret-0", "ret-1", "ret-2"}}
	for _, r := range regions {
		after := imageSnapshots(t, e.direct(r))
		snaps := snapshotSet(t, e.direct(r))
		for name, id := range ids[r] {
			removed := slices.Contains(want[r], name)
			if _, ok := after[id]; ok == removed {
				t.Errorf("%s: %s (%s) registered=%v, want %v", r, name, id, ok, !removed)
			}
			if snap := snapsBefore[r][id]; snap == "" || snaps[snap] == removed {
				t.Errorf("%s: snapshot %q of %s present=%v, want %v", r, snap, name, snaps[snap], !removed)
			}
		}
	}
	if got := len(out.Decisions.ToRemove()); got != 4 {
		t.Errorf("%d decisions to remove, want 4", got)
	}
}

// imageSnapshots maps each AMI owned by the caller to its snapshot.
func imageSnapshots(t *testing.T, c *ec2.Client) map[string]string {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, img := range out.Images {
		snap := ""
		for _, b := range img.BlockDeviceMappings {
			if b.Ebs != nil {
				snap = aws.ToString(b.Ebs.SnapshotId)
			}
		}
		m[aws.ToString(img.ImageId)] = snap
	}
	return m
}

func snapshotSet(t *testing.T, c *ec2.Client) map[string]bool {
	t.Helper()
	out, err := c.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, s := range out.Snapshots {
		m[aws.ToString(s.SnapshotId)] = true
	}
	return m
}
