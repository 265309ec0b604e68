//go:build unix

package distribute

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestCopyCancelledRemovesCopiesInEveryRegion(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1", "ap-south-1")
	made := trackCopies(c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	aDone := deprecated(c, "eu-west-1")
	var cancelled atomic.Bool
	c.DescribeImagesFn = func(dctx context.Context, region string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
		if region == "ap-south-1" && len(in.ImageIds) > 0 && !cancelled.Load() {
			<-aDone
			cancelled.Store(true)
			cancel() // as if the user pressed Ctrl-C while ap-south-1 copies
			return nil, dctx.Err()
		}
		return c.defDescribeImages(region, in)
	}
	in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1"), Deprecation: Deprecation{After: time.Hour}, Concurrency: 2}
	out, err := Copy(ctx, c.clients(), in, testOptions)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	m := made()
	for _, r := range out.Results {
		if r.Status != StatusRemoved || r.ImageID != m[r.Region] {
			t.Errorf("%s: %s %s, want removed %s", r.Region, r.Status, r.ImageID, m[r.Region])
		}
		if c.image(r.Region, r.ImageID) != nil {
			t.Errorf("%s: copy %s still registered", r.Region, r.ImageID)
		}
	}
	assertRemovedExactly(t, c, m)
}

// assertRemovedExactly checks that exactly the copies in made (region →
// ID) were deregistered, with their snapshots, and nothing else.
func assertRemovedExactly(t *testing.T, c *fakeCloud, made map[string]string) {
	t.Helper()
	var got, want, gotSnaps, wantSnaps []string
	for _, k := range c.Calls("DeregisterImage") {
		got = append(got, k.Region+"/"+k.ID)
	}
	for _, k := range c.Calls("DeleteSnapshot") {
		gotSnaps = append(gotSnaps, k.ID)
	}
	for r, id := range made {
		want = append(want, r+"/"+id)
		wantSnaps = append(wantSnaps, "snap-"+strings.TrimPrefix(id, "ami-"))
	}
	slices.Sort(got)
	slices.Sort(want)
	slices.Sort(gotSnaps)
	slices.Sort(wantSnaps)
	if !slices.Equal(got, want) {
		t.Errorf("deregistered %v, want %v", got, want)
	}
	if !slices.Equal(gotSnaps, wantSnaps) {
		t.Errorf("deleted snapshots %v, want %v", gotSnaps, wantSnaps)
	}
	if c.image(srcRegion, srcID) == nil {
		t.Error("source image was removed")
	}
	for r := range c.images {
		if c.image(r, otherID) == nil {
			t.Errorf("unrelated image in %s was removed", r)
		}
	}
}

// waitForCopies blocks until the fake has made n copies, so that a failure
// injected afterwards finds copies in several regions.
func waitForCopies(t *testing.T, c *fakeCloud, n int) {
	t.Helper()
	stuck := time.NewTimer(10 * time.Second) // reached only by a failing run
	defer stuck.Stop()
	for {
		made, next := c.copiesMade()
		if made >= n {
			return
		}
		select {
		case <-next:
		case <-stuck.C:
			t.Errorf("only %d of %d copies were made", made, n)
			return
		}
	}
}

// refuseSharingOnceCopied makes ModifyImageAttribute fail in region, once
// the fake has made n copies, so that the failure finds copies to remove
// in every region.
func refuseSharingOnceCopied(region string, n int) func(t *testing.T, c *fakeCloud) {
	return func(t *testing.T, c *fakeCloud) {
		c.ModifyImageAttributeFn = func(ctx context.Context, r string, in *ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error) {
			if r == region {
				waitForCopies(t, c, n)
				return nil, apiErr("UnauthorizedOperation")
			}
			return c.defModifyImageAttribute(r, in)
		}
	}
}

func TestCopyFailureCleansUpEveryRegion(t *testing.T) {
	regions := []string{"eu-west-1", "ap-south-1", "us-west-2"}
	tests := []struct {
		name     string
		setup    func(t *testing.T, c *fakeCloud)
		keep     bool
		protect  bool
		wantErr  func(error) bool
		wantKept int // copies still registered afterwards
	}{
		{
			name: "copy fails to become available",
			setup: func(t *testing.T, c *fakeCloud) {
				c.DescribeImagesFn = func(ctx context.Context, region string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
					out, err := c.defDescribeImages(region, in)
					if err == nil && region == "us-west-2" && len(in.ImageIds) > 0 && aws.ToString(out.Images[0].ImageId) != otherID {
						waitForCopies(t, c, 3)
						out.Images[0].State = types.ImageStateFailed
						out.Images[0].StateReason = &types.StateReason{Message: aws.String("copy failed")}
					}
					return out, err
				}
			},
			wantErr: func(err error) bool {
				var se *ImageStateError
				return errors.As(err, &se) && se.Region == "us-west-2" && se.State == "failed"
			},
		},
		{
			name:  "sharing refused in one region",
			setup: refuseSharingOnceCopied("ap-south-1", 3),
			wantErr: func(err error) bool {
				return awserr.Code(err) == "UnauthorizedOperation" && strings.Contains(err.Error(), "ap-south-1")
			},
		},
		{
			name: "CopyImage made a copy but its answer was lost",
			setup: func(t *testing.T, c *fakeCloud) {
				c.CopyImageFn = func(ctx context.Context, region string, in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error) {
					out, err := c.defCopyImage(region, in)
					if region == "ap-south-1" {
						waitForCopies(t, c, 3)
						return out, errors.New("connection reset by peer")
					}
					return out, err
				}
			},
			wantErr: func(err error) bool { return strings.Contains(err.Error(), "connection reset") },
		},
		{
			name: "deregistration protection fails in one region",
			setup: func(t *testing.T, c *fakeCloud) {
				c.ProtectFn = func(ctx context.Context, region string, in *ec2.EnableImageDeregistrationProtectionInput) (*ec2.EnableImageDeregistrationProtectionOutput, error) {
					if region == "us-west-2" {
						return nil, apiErr("UnauthorizedOperation")
					}
					c.image(region, aws.ToString(in.ImageId)).protected = true
					return &ec2.EnableImageDeregistrationProtectionOutput{}, nil
				}
			},
			protect: true,
			wantErr: func(err error) bool { return strings.Contains(err.Error(), "deregistration protection") },
		},
		{
			name:     "keep on failure",
			setup:    refuseSharingOnceCopied("ap-south-1", 3),
			keep:     true,
			wantErr:  func(err error) bool { return awserr.Code(err) == "UnauthorizedOperation" },
			wantKept: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCopyCloud(t, regions...)
			tc.setup(t, c)
			made := trackCopies(c)
			in := &CopyInput{
				SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets(regions...), Concurrency: 3,
				Permissions: Permissions{Accounts: []string{account2}}, KeepOnFailure: tc.keep,
				Protection: Protection{Enabled: tc.protect},
			}
			out, err := Copy(context.Background(), c.clients(), in, testOptions)
			if err == nil || !tc.wantErr(err) {
				t.Fatalf("err = %v", err)
			}
			if out == nil || len(out.Results) != len(regions) {
				t.Fatalf("out = %+v, want a result per region", out)
			}
			m := made()
			if len(m) != len(regions) {
				t.Fatalf("copies made: %v", m)
			}
			kept := 0
			for r, id := range m {
				if c.image(r, id) != nil {
					kept++
				}
			}
			if kept != tc.wantKept {
				t.Errorf("%d copies still registered, want %d", kept, tc.wantKept)
			}
			if tc.keep {
				mustNoCalls(t, c, "DeregisterImage", "DeleteSnapshot")
				return
			}
			assertRemovedExactly(t, c, m)
			for _, r := range out.Results {
				if r.Status != StatusRemoved {
					t.Errorf("%s: status %s, want removed", r.Region, r.Status)
				}
			}
			if tc.protect && c.index("eu-west-1", "DisableImageDeregistrationProtection", m["eu-west-1"]) < 0 {
				t.Errorf("protection of the eu-west-1 copy was not lifted before cleanup: %v", opsOf(c.Calls()))
			}
		})
	}
}

// A name taken between preflight and the copy (another run of the same
// template) makes CopyImage fail with InvalidAMIName.Duplicate. That is a
// refusal: the other writer's AMI must survive the cleanup untouched.
func TestCopyRefusedByNameNeverTouchesTheOtherAMI(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1", "ap-south-1")
	const theirs = "ami-theirs01"
	c.addImage("ap-south-1", theirs, "app-1", fixedNow.Add(-time.Minute))
	made := trackCopies(c)
	in := &CopyInput{
		SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1"),
		Preflighted: true, // the name was free when preflight ran
	}
	out, err := Copy(context.Background(), c.clients(), in, testOptions)
	if awserr.Code(err) != "InvalidAMIName.Duplicate" {
		t.Fatalf("err = %v, want InvalidAMIName.Duplicate", err)
	}
	if c.image("ap-south-1", theirs) == nil {
		t.Fatalf("the other writer's AMI %s was deregistered; calls: %v", theirs, opsOf(c.Calls()))
	}
	for _, k := range c.Calls("DeregisterImage", "DeleteSnapshot", "DescribeImages") {
		if k.ID == theirs || k.ID == "snap-theirs01" {
			t.Errorf("cleanup touched the other writer's AMI: %s", k)
		}
	}
	byRegion := map[string]Result{}
	for _, r := range out.Results {
		byRegion[r.Region] = r
	}
	if r := byRegion["ap-south-1"]; r.Status != StatusFailed || r.ImageID != "" {
		t.Errorf("ap-south-1: %s %q, want failed with no image", r.Status, r.ImageID)
	}
	if r := byRegion["eu-west-1"]; r.Status != StatusRemoved && r.Status != StatusNotStarted && r.Status != StatusCancelled {
		t.Errorf("eu-west-1: status %s", r.Status)
	}
	for r, id := range made() {
		if r == "ap-south-1" {
			t.Errorf("a copy was made in ap-south-1: %s", id)
		}
		if c.image(r, id) != nil {
			t.Errorf("copy %s in %s still registered", id, r)
		}
	}
}

// lateCopy makes the first CopyImage call in region fail as if the caller
// gave up while it was in flight, and carries it out in EC2 only after the
// next call in that region has been answered: the abandoned request
// arrives late. It returns a function reporting every image ID CopyImage
// made in region.
func lateCopy(t *testing.T, c *fakeCloud, region string, cancel context.CancelFunc) func() []string {
	t.Helper()
	var mu sync.Mutex
	var pending *ec2.CopyImageInput
	var ids []string
	landed := false
	land := func() {
		mu.Lock()
		p := pending
		pending = nil
		mu.Unlock()
		if p == nil {
			return
		}
		out, err := c.defCopyImage(region, p)
		mu.Lock()
		defer mu.Unlock()
		landed = true
		if err == nil {
			ids = append(ids, aws.ToString(out.ImageId))
		}
	}
	first := true
	c.CopyImageFn = func(ctx context.Context, r string, in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error) {
		if r != region {
			return c.defCopyImage(r, in)
		}
		mu.Lock()
		if first {
			first = false
			pending = in
			mu.Unlock()
			cancel() // Ctrl-C while the request is on its way
			return nil, context.Canceled
		}
		mu.Unlock()
		defer land()
		out, err := c.defCopyImage(r, in)
		if err == nil {
			mu.Lock()
			ids = append(ids, aws.ToString(out.ImageId))
			mu.Unlock()
		}
		return out, err
	}
	prevDescribe := c.DescribeImagesFn
	c.DescribeImagesFn = func(ctx context.Context, r string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
		if r == region {
			defer land()
		}
		if prevDescribe != nil {
			return prevDescribe(ctx, r, in)
		}
		return c.defDescribeImages(r, in)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if !landed {
			t.Error("the abandoned CopyImage never landed, so the test did not show it arriving after cleanup looked")
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), ids...)
	}
}

// A copy whose CopyImage was in flight when the user pressed Ctrl-C, and
// which EC2 carries out only after cleanup has looked, must still be
// removed: cleanup replays the call with its ClientToken and so learns the
// copy's ID for certain.
func TestCopyAbandonedCallIsReplayedAndRemoved(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ids := lateCopy(t, c, "eu-west-1", cancel)
	in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1")}
	out, err := Copy(ctx, c.clients(), in, testOptions)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	made := ids()
	if len(made) == 0 {
		t.Fatalf("no copy was made; calls: %v", opsOf(c.Calls()))
	}
	for _, id := range made {
		if c.image("eu-west-1", id) != nil {
			t.Errorf("copy %s is still registered; calls: %v", id, opsOf(c.Calls()))
		}
	}
	if len(c.images["eu-west-1"]) != 1 || c.image("eu-west-1", otherID) == nil {
		t.Errorf("eu-west-1 holds %d images, want only the unrelated one", len(c.images["eu-west-1"]))
	}
	r := out.Results[0]
	if r.Status != StatusRemoved || r.ImageID != made[0] {
		t.Errorf("result %s %q, want removed %s", r.Status, r.ImageID, made[0])
	}
	calls := c.Calls("CopyImage")
	if len(calls) != 2 {
		t.Fatalf("CopyImage calls %v, want the call and one replay", opsOf(calls))
	}
	a, b := calls[0].In.(*ec2.CopyImageInput), calls[1].In.(*ec2.CopyImageInput)
	if aws.ToString(a.ClientToken) == "" || aws.ToString(a.ClientToken) != aws.ToString(b.ClientToken) {
		t.Errorf("replay token %q, first %q: want the same, non-empty", aws.ToString(b.ClientToken), aws.ToString(a.ClientToken))
	}
	if !hasTokenTag(a, aws.ToString(a.ClientToken)) {
		t.Errorf("CopyImage does not tag the copy at creation: %+v", a.TagSpecifications)
	}
}

func hasTokenTag(in *ec2.CopyImageInput, token string) bool {
	for _, ts := range in.TagSpecifications {
		if ts.ResourceType != types.ResourceTypeImage {
			continue
		}
		for _, tg := range ts.Tags {
			if aws.ToString(tg.Key) == CopyTokenTag && aws.ToString(tg.Value) == token {
				return true
			}
		}
	}
	return false
}

// When the replay gets no answer either, cleanup looks for the copy by its
// token tag, never by name; when it cannot look, it says what to check
// instead of claiming the copy was removed.
func TestCopyUnknownOutcome(t *testing.T) {
	tests := []struct {
		name         string
		copyMade     bool  // the abandoned call made a copy
		describeErr  error // tag search fails
		wantStatus   Status
		wantUnknown  bool
		wantRemoved  bool
		sameNameToo  bool // another AMI with the copy's name exists, untagged
		replayRefuse bool // the replay is refused (HTTP 4xx)
	}{
		{name: "replay lost, copy found by tag", copyMade: true, wantStatus: StatusRemoved, wantRemoved: true, sameNameToo: false},
		{name: "replay lost, no copy with the tag", wantStatus: StatusUnknown, wantUnknown: true},
		{name: "replay lost, tag search fails", copyMade: true, describeErr: serverErr("InternalError"), wantStatus: StatusUnknown, wantUnknown: true},
		{name: "replay refused, nothing tagged", replayRefuse: true, sameNameToo: true, wantStatus: StatusCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCopyCloud(t, "eu-west-1")
			const region = "eu-west-1"
			if tc.sameNameToo {
				c.addImage(region, "ami-samename1", "app-1", fixedNow.Add(-time.Minute))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var made string
			calls := 0
			c.CopyImageFn = func(cctx context.Context, r string, in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error) {
				calls++
				if calls == 1 {
					if tc.copyMade {
						out, err := c.defCopyImage(r, in)
						if err != nil {
							t.Errorf("fake copy: %v", err)
						}
						made = aws.ToString(out.ImageId)
					}
					cancel()
					return nil, context.Canceled
				}
				if tc.replayRefuse {
					return nil, apiErr("InvalidAMIName.Duplicate")
				}
				return nil, errors.New("read: connection reset by peer")
			}
			c.DescribeImagesFn = func(dctx context.Context, r string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
				if tc.describeErr != nil && len(in.ImageIds) == 0 {
					return nil, tc.describeErr
				}
				return c.defDescribeImages(r, in)
			}
			in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets(region), Preflighted: true}
			out, err := Copy(ctx, c.clients(), in, testOptions)
			if err == nil {
				t.Fatal("Copy succeeded")
			}
			r := out.Results[0]
			if r.Status != tc.wantStatus {
				t.Errorf("status %s, want %s (err %v)", r.Status, tc.wantStatus, err)
			}
			var ue *UnknownCopyError
			if got := errors.As(err, &ue); got != tc.wantUnknown {
				t.Errorf("UnknownCopyError in %v: %v, want %v", err, got, tc.wantUnknown)
			} else if got && (ue.Region != region || ue.Name != "app-1" || !strings.Contains(err.Error(), `check eu-west-1 for an AMI named "app-1"`)) {
				t.Errorf("error does not say what to check: %v", err)
			}
			if tc.copyMade {
				gone := c.image(region, made) == nil
				if gone != tc.wantRemoved {
					t.Errorf("copy %s removed: %v, want %v", made, gone, tc.wantRemoved)
				}
			}
			if c.image(region, otherID) == nil {
				t.Error("the unrelated AMI was removed")
			}
			if tc.sameNameToo && c.image(region, "ami-samename1") == nil {
				t.Error("an AMI with the copy's name but without its tag was removed")
			}
			for _, k := range c.Calls("DescribeImages") {
				for _, f := range k.In.(*ec2.DescribeImagesInput).Filters {
					if aws.ToString(f.Name) == "name" && k.Region == region && tc.sameNameToo {
						t.Errorf("cleanup looked by name: %s", k)
					}
				}
			}
		})
	}
}
