//go:build unix

package distribute

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const (
	srcRegion = "us-east-1"
	srcID     = "ami-src0001"
	otherID   = "ami-other01"
	account2  = "222222222222"
	orgARN    = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
	ouARN     = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefgh34"
)

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newCopyCloud returns a fake with a source AMI in us-east-1 and an
// unrelated AMI in every region, which no test may touch.
func newCopyCloud(t *testing.T, regions ...string) *fakeCloud {
	t.Helper()
	all := append([]string{srcRegion}, regions...)
	c := newFakeCloud(append(all, "eu-north-1")...)
	c.addImage(srcRegion, srcID, "app-1", fixedNow.Add(-time.Hour))
	for _, r := range all {
		c.addImage(r, otherID, "unrelated", fixedNow.Add(-48*time.Hour))
	}
	return c
}

func targets(regions ...string) []Target {
	var ts []Target
	for _, r := range regions {
		ts = append(ts, Target{Region: r})
	}
	return ts
}

func testOptions(o *Options) {
	fastOptions(o)
	o.Now = func() time.Time { return fixedNow }
}

// trackCopies wraps the cloud's CopyImage and returns a function that
// reports the IDs CopyImage returned, per region.
func trackCopies(c *fakeCloud) func() map[string]string {
	var mu sync.Mutex
	made := map[string]string{}
	prev := c.CopyImageFn
	c.CopyImageFn = func(ctx context.Context, region string, in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error) {
		var out *ec2.CopyImageOutput
		var err error
		if prev != nil {
			out, err = prev(ctx, region, in)
		} else {
			out, err = c.defCopyImage(region, in)
		}
		if out != nil {
			mu.Lock()
			made[region] = aws.ToString(out.ImageId)
			mu.Unlock()
		}
		return out, err
	}
	return func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return made
	}
}

func TestCopySharesTagsAndDeprecatesEveryRegion(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1", "ap-south-1")
	in := &CopyInput{
		SourceImageID: srcID, SourceRegion: srcRegion, IncludeSource: true,
		Targets: []Target{
			{Region: "eu-west-1"},
			{Region: "ap-south-1", Name: "app-1-ap", KMSKeyID: "alias/team", Tags: map[string]string{"Region": "ap"}},
		},
		Permissions: Permissions{Accounts: []string{account2}, OrgARNs: []string{orgARN}, OUARNs: []string{ouARN}, SnapshotAccounts: []string{account2}},
		Tags:        map[string]string{"App": "x"},
		Deprecation: Deprecation{After: 24 * time.Hour},
	}
	out, err := Copy(context.Background(), c.clients(), in, testOptions)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	rs := out.Results
	if len(rs) != 3 || !rs[0].Source || rs[0].ImageID != srcID {
		t.Fatalf("results = %+v, want the source first and two copies", rs)
	}
	wantDeprecate := fixedNow.Add(24 * time.Hour)
	for _, r := range rs {
		if r.Status != StatusAvailable || r.Err != nil {
			t.Errorf("%s: status %s, err %v", r.Region, r.Status, r.Err)
		}
		fi := c.image(r.Region, r.ImageID)
		if fi == nil {
			t.Fatalf("%s: image %s missing", r.Region, r.ImageID)
		}
		var got []string
		for _, lp := range fi.launchPerms {
			got = append(got, aws.ToString(lp.UserId)+aws.ToString(lp.OrganizationArn)+aws.ToString(lp.OrganizationalUnitArn))
		}
		if want := []string{account2, orgARN, ouARN}; !slices.Equal(got, want) {
			t.Errorf("%s: launch permissions %v, want %v", r.Region, got, want)
		}
		for _, s := range r.SnapshotIDs {
			if users := c.snapPerms[s]["users"]; !slices.Equal(users, []string{account2}) {
				t.Errorf("%s: snapshot %s users %v", r.Region, s, users)
			}
			if c.tags[s]["App"] != "x" {
				t.Errorf("%s: snapshot %s tags %v", r.Region, s, c.tags[s])
			}
		}
		if len(r.SnapshotIDs) != 1 {
			t.Errorf("%s: snapshots %v, want one", r.Region, r.SnapshotIDs)
		}
		if c.tags[r.ImageID]["App"] != "x" {
			t.Errorf("%s: tags %v", r.Region, c.tags[r.ImageID])
		}
		if !fi.deprecateAt.Equal(wantDeprecate) || r.DeprecateAt == nil || !r.DeprecateAt.Equal(wantDeprecate) {
			t.Errorf("%s: deprecate at %v (result %v), want %v", r.Region, fi.deprecateAt, r.DeprecateAt, wantDeprecate)
		}
	}
	if got := c.tags[rs[2].ImageID]["Region"]; got != "ap" {
		t.Errorf("ap-south-1 override tag = %q", got)
	}
	if rs[1].Name != "app-1" || rs[2].Name != "app-1-ap" {
		t.Errorf("names %q, %q", rs[1].Name, rs[2].Name)
	}

	// Requests: overrides, encryption and tokens.
	for _, k := range c.Calls("CopyImage") {
		in := k.In.(*ec2.CopyImageInput)
		wantName := map[string]string{"eu-west-1": "app-1", "ap-south-1": "app-1-ap"}[k.Region]
		if aws.ToString(in.Name) != wantName || aws.ToString(in.SourceImageId) != srcID || aws.ToString(in.SourceRegion) != srcRegion {
			t.Errorf("%s: CopyImage %+v", k.Region, in)
		}
		if tok := aws.ToString(in.ClientToken); tok == "" || tok != rs[map[string]int{"eu-west-1": 1, "ap-south-1": 2}[k.Region]].ClientToken {
			t.Errorf("%s: ClientToken %q", k.Region, tok)
		}
		enc := k.Region == "ap-south-1"
		if aws.ToBool(in.Encrypted) != enc || (aws.ToString(in.KmsKeyId) == "alias/team") != enc {
			t.Errorf("%s: Encrypted=%v KmsKeyId=%q", k.Region, aws.ToBool(in.Encrypted), aws.ToString(in.KmsKeyId))
		}
	}
	if rs[2].KMSKeyID != "alias/team" || !rs[2].Encrypted || rs[1].Encrypted {
		t.Errorf("encryption in results: %+v / %+v", rs[1], rs[2])
	}
	// Snapshot permissions use the flat form only.
	for _, k := range c.Calls("ModifySnapshotAttribute") {
		in := k.In.(*ec2.ModifySnapshotAttributeInput)
		if in.OperationType != types.OperationTypeAdd || in.CreateVolumePermission != nil || in.Attribute != types.SnapshotAttributeNameCreateVolumePermission {
			t.Errorf("ModifySnapshotAttribute not in the flat form: %+v", in)
		}
	}
	// Per region: copy (tagged as CopyImage makes it, so no CreateTags),
	// wait, share, deprecate; the source is done before any copy starts.
	for _, r := range rs[1:] {
		seq := []int{
			c.index(r.Region, "CopyImage", ""),
			c.index(r.Region, "DescribeImages", r.ImageID),
			c.index(r.Region, "ModifyImageAttribute", r.ImageID),
			c.index(r.Region, "ModifySnapshotAttribute", r.SnapshotIDs[0]),
			c.index(r.Region, "EnableImageDeprecation", r.ImageID),
		}
		if !slices.IsSorted(seq) || seq[0] < 0 {
			t.Errorf("%s: call order %v in %v", r.Region, seq, opsOf(c.Calls()))
		}
		if c.index(srcRegion, "EnableImageDeprecation", srcID) > seq[0] {
			t.Errorf("source handled after the copy to %s started", r.Region)
		}
		if n := c.index(r.Region, "CreateTags", ""); n >= 0 {
			t.Errorf("%s: CreateTags at %d, want none (CopyImage tags the copy)", r.Region, n)
		}
	}
	mustNoCalls(t, c, "DeregisterImage", "DeleteSnapshot")

	// JSON round trip.
	b, err := json.Marshal(out.Results)
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 3 || back[2].ImageID != rs[2].ImageID || back[2].SharedWith.OrgARNs[0] != orgARN || !back[2].DeprecateAt.Equal(wantDeprecate) {
		t.Errorf("JSON round trip: %s", b)
	}
	if !strings.Contains(string(b), `"image_id"`) || !strings.Contains(string(b), `"shared_with"`) {
		t.Errorf("JSON: %s", b)
	}
	var order []string
	for _, r := range out.Results {
		order = append(order, r.Region)
	}
	if want := []string{srcRegion, "eu-west-1", "ap-south-1"}; !slices.Equal(order, want) {
		t.Errorf("results in the order %v, want the source, then the targets as given: %v", order, want)
	}
}

// deprecated returns a channel the fake closes when it deprecates a copy
// in region, so that a test can hold another region until that region's
// copy is shared, tagged and deprecated.
func deprecated(c *fakeCloud, region string) <-chan struct{} {
	done := make(chan struct{})
	var once sync.Once
	c.DeprecateFn = func(ctx context.Context, r string, in *ec2.EnableImageDeprecationInput) (*ec2.EnableImageDeprecationOutput, error) {
		if r == region {
			once.Do(func() { close(done) })
		}
		return &ec2.EnableImageDeprecationOutput{}, nil
	}
	return done
}

func TestCopySharesEachRegionAsSoonAsItsCopyIsAvailable(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1", "ap-south-1")
	aDone := deprecated(c, "eu-west-1")
	var bWaitReturned atomic.Int64 // call-log length when B's copy became available
	c.DescribeImagesFn = func(ctx context.Context, region string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
		if region == "ap-south-1" && len(in.ImageIds) > 0 {
			select {
			case <-aDone:
			case <-time.After(3 * time.Second):
				t.Error("the copy in ap-south-1 completed before eu-west-1's copy was shared and deprecated")
			}
			bWaitReturned.Store(int64(len(c.Calls())))
		}
		return c.defDescribeImages(region, in)
	}
	in := &CopyInput{
		SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1"),
		Permissions: Permissions{Accounts: []string{account2}}, Tags: map[string]string{"k": "v"}, Concurrency: 2,
		Deprecation: Deprecation{After: time.Hour},
	}
	if _, err := Copy(context.Background(), c.clients(), in, testOptions); err != nil {
		t.Fatal(err)
	}
	share := c.index("eu-west-1", "ModifyImageAttribute", "")
	dep := c.index("eu-west-1", "EnableImageDeprecation", "")
	if share < 0 || dep < 0 || int64(dep) >= bWaitReturned.Load() || share > dep {
		t.Errorf("eu-west-1 share at %d, deprecation at %d; ap-south-1 available at %d: %v", share, dep, bWaitReturned.Load(), opsOf(c.Calls()))
	}
}

// TestCopyBoundsConcurrency holds every region in CopyImage until the test
// lets it go, one at a time, inside a synctest bubble: synctest.Wait
// returns once every goroutine of the run is blocked, so the regions in
// flight at that point are all the limiter admits, and their number must
// be exactly the limit (or the regions left, at the end).
func TestCopyBoundsConcurrency(t *testing.T) {
	regions := []string{"eu-west-1", "eu-west-2", "eu-west-3", "ap-south-1", "us-west-1", "us-west-2"}
	tests := []struct {
		name  string
		limit int
	}{
		{"one", 1}, {"two", 2}, {"three", 3}, {"default", 0}, {"more than regions", 10},
	}
	for _, tc := range tests {
		want := min(concurrency(tc.limit, len(regions)), len(regions))
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCopyCloud(t, regions...)
				// A region is in flight from its CopyImage to its
				// EnableImageDeprecation (its last call).
				var mu sync.Mutex
				inflight := map[string]bool{}
				release := make(chan struct{})
				finished := make(chan string)
				c.CopyImageFn = func(ctx context.Context, region string, in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error) {
					mu.Lock()
					inflight[region] = true
					mu.Unlock()
					select {
					case <-release:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					return c.defCopyImage(region, in)
				}
				c.DeprecateFn = func(ctx context.Context, region string, in *ec2.EnableImageDeprecationInput) (*ec2.EnableImageDeprecationOutput, error) {
					mu.Lock()
					delete(inflight, region)
					mu.Unlock()
					select {
					case finished <- region:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					return &ec2.EnableImageDeprecationOutput{}, nil
				}
				in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets(regions...), Deprecation: Deprecation{After: time.Hour}, Concurrency: tc.limit}
				ctx, cancel := context.WithCancel(context.Background())
				var copyErr error
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, copyErr = Copy(ctx, c.clients(), in, testOptions)
				}()
				defer func() { cancel(); <-done }()

				for left := len(regions); left > 0; left-- {
					synctest.Wait()
					mu.Lock()
					n := len(inflight)
					mu.Unlock()
					if n != min(want, left) {
						t.Fatalf("%d regions in flight with %d of %d finished, want %d", n, len(regions)-left, len(regions), min(want, left))
					}
					select {
					case release <- struct{}{}:
					case <-done:
						t.Fatalf("Copy returned with %d regions in flight: %v", n, copyErr)
					}
					select {
					case <-finished:
					case <-done:
						t.Fatalf("Copy returned before a released region finished: %v", copyErr)
					}
				}
				<-done
				if copyErr != nil {
					t.Fatal(copyErr)
				}
				if got := len(c.Calls("CopyImage")); got != len(regions) {
					t.Errorf("%d copies, want %d", got, len(regions))
				}
			})
		})
	}
}

func TestCopyProtectsLastAndDeprecationCanBeOptional(t *testing.T) {
	regions := []string{"eu-west-1", "ap-south-1"}
	tests := []struct {
		name       string
		optional   bool
		wantErr    bool
		wantStatus []Status
	}{
		// One region at a time: the first fails, the second never starts.
		{"required deprecation fails the region", false, true, []Status{StatusRemoved, StatusCancelled}},
		{"optional deprecation becomes a warning", true, false, []Status{StatusAvailable, StatusAvailable}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCopyCloud(t, regions...)
			c.DeprecateFn = func(ctx context.Context, region string, in *ec2.EnableImageDeprecationInput) (*ec2.EnableImageDeprecationOutput, error) {
				return nil, errors.New("http 500: not implemented")
			}
			in := &CopyInput{
				SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets(regions...),
				Deprecation: Deprecation{At: fixedNow.Add(time.Hour), Optional: tc.optional},
				Protection:  Protection{Enabled: true, Optional: true},
				Tags:        map[string]string{"k": "v"},
				Concurrency: 1,
			}
			out, err := Copy(context.Background(), c.clients(), in, testOptions)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			for i, r := range out.Results {
				if r.Status != tc.wantStatus[i] {
					t.Errorf("%s: %s", r.Region, r.Status)
				}
				if tc.optional && (len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "deprecate") || r.DeprecateAt != nil || !r.Protected) {
					t.Errorf("%s: warnings %q, deprecate %v, protected %v", r.Region, r.Warnings, r.DeprecateAt, r.Protected)
				}
			}
			if n := len(c.Calls("EnableImageDeprecation")); (n == len(regions)) != tc.optional {
				t.Errorf("deprecation requests: %v", opsOf(c.Calls("EnableImageDeprecation")))
			}
			prot := c.Calls("EnableImageDeregistrationProtection")
			if !tc.optional {
				if len(prot) != 0 {
					t.Errorf("protection turned on although a region failed: %v", opsOf(prot))
				}
				return
			}
			// Protection comes after every region's copy was finished.
			last := 0
			for _, r := range regions {
				last = max(last, c.index(r, "CreateTags", ""))
			}
			if len(prot) != len(regions) || c.index(prot[0].Region, prot[0].Op, "") < last {
				t.Errorf("protection calls %v before the last tag at %d: %v", opsOf(prot), last, opsOf(c.Calls()))
			}
		})
	}
}

// TestCopyClientTokenPerRun checks that two Copy calls with the same input
// send different tokens (a rerun after a rolled-back run must not get the
// removed copy back from EC2), unless they share a RunID.
func TestCopyClientTokenPerRun(t *testing.T) {
	tokens := func(runID string) []string {
		t.Helper()
		c := newCopyCloud(t, "eu-west-1", "ap-south-1")
		in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1"), Concurrency: 1, RunID: runID}
		out, err := Copy(context.Background(), c.clients(), in, testOptions)
		if err != nil {
			t.Fatal(err)
		}
		if in.RunID != runID {
			t.Errorf("Copy changed the caller's RunID to %q", in.RunID)
		}
		var got []string
		for i, k := range c.Calls("CopyImage") {
			tok := aws.ToString(k.In.(*ec2.CopyImageInput).ClientToken)
			if tok == "" || tok != out.Results[i].ClientToken {
				t.Errorf("%s: token %q, result %q", k.Region, tok, out.Results[i].ClientToken)
			}
			got = append(got, k.Region+"="+tok)
		}
		return got
	}
	for _, tc := range []struct {
		name       string
		runA, runB string
		same       bool
	}{
		{name: "no run ID: a new one per call", same: false},
		{name: "same run ID: same tokens", runA: "r1", runB: "r1", same: true},
		{name: "different run IDs", runA: "r1", runB: "r2", same: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tokens(tc.runA), tokens(tc.runB)
			if len(a) != 2 || len(b) != 2 || a[0] == a[1] {
				t.Fatalf("tokens %v, %v", a, b)
			}
			if slices.Equal(a, b) != tc.same {
				t.Errorf("tokens of two runs %v and %v: equal = %v, want %v", a, b, !tc.same, tc.same)
			}
		})
	}
	if tc := ClientToken("r1", srcRegion, srcID, "eu-west-1", "app-1"); tc == "" {
		t.Fatal("empty token")
	}
}

func TestCopyRecordsCopiesInLedger(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1", "ap-south-1")
	made := trackCopies(c)
	var l ledgerT
	in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1")}
	if _, err := Copy(context.Background(), c.clients(), in, testOptions, func(o *Options) { o.Ledger = &l.Ledger }); err != nil {
		t.Fatal(err)
	}
	res := l.Resources()
	if len(res) != 2 {
		t.Fatalf("ledger %v", res)
	}
	// Undoing the ledger (a later step failed) removes both copies.
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertRemovedExactly(t, c, made())
}

// sixteenRegions are 16 target regions, none of them the source region.
var sixteenRegions = []string{
	"us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-west-1", "eu-west-2", "eu-west-3",
	"eu-central-1", "eu-north-1", "eu-south-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2",
}

// TestCopyStartsEveryRegionAtOnce: with the default concurrency every
// target region's CopyImage is sent before any of them is answered, so no
// copy waits in line behind another region's. CopyImage is a barrier that
// answers nobody before all 16 arrived; synctest.Wait returns when every
// goroutine of the run is blocked, so the arrivals counted then are all the
// copies Copy starts without waiting for one to finish.
func TestCopyStartsEveryRegionAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCopyCloud(t, sixteenRegions...)
		var arrived atomic.Int32
		all := make(chan struct{})
		c.CopyImageFn = func(ctx context.Context, region string, in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error) {
			if arrived.Add(1) == int32(len(sixteenRegions)) {
				close(all)
			}
			select {
			case <-all:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return c.defCopyImage(region, in)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out *CopyOutput
		var copyErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			out, copyErr = Copy(ctx, c.clients(), &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets(sixteenRegions...)}, testOptions)
		}()
		synctest.Wait()
		if n := arrived.Load(); n != int32(len(sixteenRegions)) {
			t.Errorf("%d of %d CopyImage calls sent before any was answered", n, len(sixteenRegions))
			cancel()
		}
		<-done
		if t.Failed() {
			return
		}
		if copyErr != nil {
			t.Fatal(copyErr)
		}
		if got := len(out.Results.ImageIDs()); got != len(sixteenRegions) {
			t.Errorf("%d copies available, want %d", got, len(sixteenRegions))
		}
	})
}

// TestCopyTagsAtCreation checks what CopyImage is asked to tag: the target's
// tags and the copy token on the AMI, the tags and snapshot tags on its
// snapshots, and nothing tagged afterwards, except when CopyImageTags also
// copies the source's tags (whose values must not win), or for a source
// without snapshots (no snapshot tag specification).
func TestCopyTagsAtCreation(t *testing.T) {
	specs := func(in *ec2.CopyImageInput) map[types.ResourceType]map[string]string {
		m := map[types.ResourceType]map[string]string{}
		for _, ts := range in.TagSpecifications {
			m[ts.ResourceType] = map[string]string{}
			for _, tg := range ts.Tags {
				m[ts.ResourceType][aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
		}
		return m
	}
	tests := []struct {
		name           string
		copyImageTags  bool
		instanceStore  bool
		wantSnapSpec   map[string]string
		wantCreateTags bool
	}{
		{name: "tags at creation", wantSnapSpec: map[string]string{"App": "x", "Team": "web", "Backup": "yes"}},
		{name: "with copy_image_tags", copyImageTags: true, wantSnapSpec: map[string]string{"App": "x", "Team": "web", "Backup": "yes"}, wantCreateTags: true},
		{name: "instance-store source", instanceStore: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCopyCloud(t, "eu-west-1")
			if tc.instanceStore {
				c.addImage(srcRegion, srcID, "app-1", fixedNow.Add(-time.Hour), func(img *types.Image) {
					img.RootDeviceType, img.BlockDeviceMappings = types.DeviceTypeInstanceStore, nil
				})
			}
			in := &CopyInput{
				SourceImageID: srcID, SourceRegion: srcRegion, RunID: "run-1",
				Targets: []Target{{Region: "eu-west-1", Tags: map[string]string{"Team": "web"}}},
				Tags:    map[string]string{"App": "x"}, SnapshotTags: map[string]string{"Backup": "yes"},
				CopyImageTags: tc.copyImageTags,
			}
			out, err := Copy(context.Background(), c.clients(), in, testOptions)
			if err != nil {
				t.Fatal(err)
			}
			calls := c.Calls("CopyImage")
			if len(calls) != 1 {
				t.Fatalf("%d CopyImage calls, want 1", len(calls))
			}
			got := specs(calls[0].In.(*ec2.CopyImageInput))
			wantImg := map[string]string{"App": "x", "Team": "web", CopyTokenTag: out.Results[0].ClientToken}
			if !maps.Equal(got[types.ResourceTypeImage], wantImg) {
				t.Errorf("image tag specification %v, want %v", got[types.ResourceTypeImage], wantImg)
			}
			if snap, ok := got[types.ResourceTypeSnapshot]; ok != (tc.wantSnapSpec != nil) || !maps.Equal(snap, tc.wantSnapSpec) {
				t.Errorf("snapshot tag specification %v (present %v), want %v", snap, ok, tc.wantSnapSpec)
			}
			if n := len(c.Calls("CreateTags")); (n > 0) != tc.wantCreateTags {
				t.Errorf("%d CreateTags calls, want them %v", n, tc.wantCreateTags)
			}
		})
	}
}
