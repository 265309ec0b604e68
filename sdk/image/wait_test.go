//go:build unix

package image

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	smithywaiter "github.com/aws/smithy-go/waiter"
)

// TestWaitDefaultSchedule checks the delays the SDK waiter computes from
// the options Wait gives it: with zero WaitOptions every check after the
// first (which is made at once) follows 10 seconds after the one before,
// without growth or jitter, so a transition is noticed within 10 seconds
// and a waited image costs at most 6 DescribeImages calls a minute.
func TestWaitDefaultSchedule(t *testing.T) {
	tests := []struct {
		name string
		w    WaitOptions
		want time.Duration
	}{
		{name: "defaults", w: WaitOptions{}, want: 10 * time.Second},
		{name: "fixed override", w: WaitOptions{MinDelay: 3 * time.Second, MaxDelay: 3 * time.Second}, want: 3 * time.Second},
		{name: "min only", w: WaitOptions{MinDelay: 4 * time.Second}, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o ec2.ImageAvailableWaiterOptions
			tc.w.withDefaults().waiterOptions(nil)(&o)
			if tc.want == 0 {
				// A MinDelay alone keeps the default MaxDelay as the cap.
				if o.MinDelay != tc.w.MinDelay || o.MaxDelay != DefaultPollDelay {
					t.Errorf("delays = %v..%v, want %v..%v", o.MinDelay, o.MaxDelay, tc.w.MinDelay, DefaultPollDelay)
				}
				return
			}
			var calls int
			var elapsed time.Duration
			for attempt := int64(1); elapsed < time.Hour; attempt++ {
				d, err := smithywaiter.ComputeDelay(attempt, o.MinDelay, o.MaxDelay, 2*time.Hour-elapsed)
				if err != nil {
					t.Fatal(err)
				}
				if d != tc.want {
					t.Fatalf("delay after check %d = %v, want %v", attempt, d, tc.want)
				}
				elapsed += d
				if elapsed <= time.Minute {
					calls++
				}
			}
			if perMinute := int(time.Minute / tc.want); calls != perMinute {
				t.Errorf("checks in the first minute = %d, want %d", calls, perMinute)
			}
			if tc.name == "defaults" && calls > 6 {
				t.Errorf("%d checks a minute, want at most 6", calls)
			}
		})
	}
}

// snapshotFake adds DescribeSnapshots to fakeEC2.
type snapshotFake struct {
	*fakeEC2
	describeSnapshots func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error)
}

func (f *snapshotFake) DescribeSnapshots(_ context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	f.log("DescribeSnapshots", in.SnapshotIds...)
	return f.describeSnapshots(in)
}

func snap(id, progress string) types.Snapshot {
	return types.Snapshot{SnapshotId: aws.String(id), Progress: aws.String(progress), State: types.SnapshotStatePending}
}

func TestWaitProgress(t *testing.T) {
	pending := func(snaps ...string) func() (*ec2.DescribeImagesOutput, error) {
		return images(img("ami-1", "pending", "", snaps...))
	}
	tests := []struct {
		name      string
		answers   []func() (*ec2.DescribeImagesOutput, error)
		snapshots []*ec2.DescribeSnapshotsOutput // answers in order
		noSnapAPI bool
		want      []int // SnapshotPercent reported per check while pending
		wantCalls []string
	}{
		{
			name:    "no snapshots listed yet",
			answers: a(pending(), pending(), images(img("ami-1", "available", "", "snap-1"))),
			want:    []int{-1, -1},
			wantCalls: []string{
				"DescribeImages ami-1", "DescribeImages ami-1", "DescribeImages ami-1",
			},
		},
		{
			name:    "percent of the least complete snapshot",
			answers: a(pending(), pending("snap-1", "snap-2"), pending("snap-1", "snap-2"), images(img("ami-1", "available", "", "snap-1", "snap-2"))),
			snapshots: []*ec2.DescribeSnapshotsOutput{
				{Snapshots: []types.Snapshot{snap("snap-1", "45%"), snap("snap-2", "80%")}},
				{Snapshots: []types.Snapshot{snap("snap-1", "100%"), snap("snap-2", "90%")}},
			},
			want: []int{-1, 45, 90},
			wantCalls: []string{
				"DescribeImages ami-1",
				"DescribeImages ami-1", "DescribeSnapshots snap-1,snap-2",
				"DescribeImages ami-1", "DescribeSnapshots snap-1,snap-2",
				"DescribeImages ami-1",
			},
		},
		{
			name:      "client without DescribeSnapshots",
			answers:   a(pending("snap-1"), images(img("ami-1", "available", "", "snap-1"))),
			noSnapAPI: true,
			want:      []int{-1},
			wantCalls: []string{"DescribeImages ami-1", "DescribeImages ami-1"},
		},
		{
			name:      "unreadable progress",
			answers:   a(pending("snap-1"), images(img("ami-1", "available", "", "snap-1"))),
			snapshots: []*ec2.DescribeSnapshotsOutput{{Snapshots: []types.Snapshot{snap("snap-1", "")}}},
			want:      []int{-1},
			wantCalls: []string{"DescribeImages ami-1", "DescribeSnapshots snap-1", "DescribeImages ami-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{describeImages: sequence(tc.answers...)}
			var api DescribeImagesAPI = f
			if !tc.noSnapAPI {
				n := 0
				api = &snapshotFake{fakeEC2: f, describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
					if n >= len(tc.snapshots) {
						return nil, fmt.Errorf("unexpected DescribeSnapshots %d", n+1)
					}
					n++
					return tc.snapshots[n-1], nil
				}}
			}
			var got []Progress
			w := quickWait
			w.Progress = func(p Progress) { got = append(got, p) }
			if _, err := Wait(context.Background(), api, "ami-1", "eu-west-1", w); err != nil {
				t.Fatal(err)
			}
			var pct []int
			for _, p := range got {
				pct = append(pct, p.SnapshotPercent)
				if p.ImageID != "ami-1" || p.Region != "eu-west-1" || p.State != "pending" || p.Elapsed < 0 {
					t.Errorf("progress = %+v", p)
				}
			}
			if !slices.Equal(pct, tc.want) {
				t.Errorf("percentages = %v, want %v", pct, tc.want)
			}
			if !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls:\n got %q\nwant %q", f.Calls(), tc.wantCalls)
			}
		})
	}
}

// TestWaitWithoutProgressNoSnapshots: without a Progress callback Wait
// never describes snapshots.
func TestWaitWithoutProgressNoSnapshots(t *testing.T) {
	f := &fakeEC2{describeImages: sequence(images(img("ami-1", "pending", "", "snap-1")), images(img("ami-1", "available", "", "snap-1")))}
	api := &snapshotFake{fakeEC2: f, describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
		return nil, fmt.Errorf("unexpected")
	}}
	if _, err := Wait(context.Background(), api, "ami-1", "eu-west-1", quickWait); err != nil {
		t.Fatal(err)
	}
	if want := []string{"DescribeImages ami-1", "DescribeImages ami-1"}; !slices.Equal(f.Calls(), want) {
		t.Errorf("calls = %q, want %q", f.Calls(), want)
	}
}

// TestWaitProgressInterval runs Wait on the synctest clock with the default
// schedule: the image is pending at the checks at 0s, 10s, ... 130s and
// available at 140s. With ProgressInterval 1m only the checks at 60s and
// 120s are reported, and only they describe the snapshots.
func TestWaitProgressInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var answers []func() (*ec2.DescribeImagesOutput, error)
		for range 14 {
			answers = append(answers, images(img("ami-1", "pending", "", "snap-1")))
		}
		answers = append(answers, images(img("ami-1", "available", "", "snap-1")))
		f := &fakeEC2{describeImages: sequence(answers...)}
		api := &snapshotFake{fakeEC2: f, describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
			return &ec2.DescribeSnapshotsOutput{Snapshots: []types.Snapshot{snap("snap-1", "30%")}}, nil
		}}
		var got []time.Duration
		w := WaitOptions{ProgressInterval: time.Minute, Progress: func(p Progress) { got = append(got, p.Elapsed) }}
		if _, err := Wait(context.Background(), api, "ami-1", "eu-west-1", w); err != nil {
			t.Fatal(err)
		}
		if want := []time.Duration{time.Minute, 2 * time.Minute}; !slices.Equal(got, want) {
			t.Errorf("reports at %v, want %v", got, want)
		}
		var describes, snapshots int
		for _, c := range f.Calls() {
			switch {
			case strings.HasPrefix(c, "DescribeImages"):
				describes++
			case strings.HasPrefix(c, "DescribeSnapshots"):
				snapshots++
			}
		}
		if describes != 15 || snapshots != 2 {
			t.Errorf("%d DescribeImages and %d DescribeSnapshots calls, want 15 and 2", describes, snapshots)
		}
	})
}
