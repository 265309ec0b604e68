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
)

// timedImages answers DescribeImages with the image pending until
// availableAt (synctest time since the start) and available from then on,
// and records when each check was made.
type timedImages struct {
	start, availableAt time.Time
	checks             []time.Duration
}

func (ti *timedImages) answer() (*ec2.DescribeImagesOutput, error) {
	now := time.Now()
	ti.checks = append(ti.checks, now.Sub(ti.start))
	state := types.ImageStatePending
	if !now.Before(ti.availableAt) {
		state = types.ImageStateAvailable
	}
	return &ec2.DescribeImagesOutput{Images: []types.Image{img("ami-1", state, "", "snap-1")}}, nil
}

// seconds lists durations as whole and fractional seconds.
func seconds(ds ...float64) []time.Duration {
	var out []time.Duration
	for _, d := range ds {
		out = append(out, time.Duration(d*float64(time.Second)))
	}
	return out
}

// TestWaitSchedule runs Wait on the synctest clock against an image that
// becomes available at 45s, for a client that cannot describe snapshots
// (so nothing is predicted): with zero WaitOptions the first check is
// made at once and each later one 10 seconds after the one before, without
// growth or jitter, so a transition is noticed within 10 seconds for at
// most 6 DescribeImages calls a minute; other fixed delays are kept.
func TestWaitSchedule(t *testing.T) {
	tests := []struct {
		name string
		w    WaitOptions
		want []time.Duration
	}{
		{name: "defaults", w: WaitOptions{}, want: seconds(0, 10, 20, 30, 40, 50)},
		{name: "fixed override", w: WaitOptions{MinDelay: 15 * time.Second, MaxDelay: 15 * time.Second}, want: seconds(0, 15, 30, 45)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ti := &timedImages{start: time.Now(), availableAt: time.Now().Add(45 * time.Second)}
				f := &fakeEC2{describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) { return ti.answer() }}
				if _, err := Wait(context.Background(), f, &WaitInput{ImageID: "ami-1", Region: "eu-west-1", Wait: tc.w}); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ti.checks, tc.want) {
					t.Errorf("checks at %v, want %v", ti.checks, tc.want)
				}
			})
		})
	}
}

// TestWaitScheduleGrows: a MinDelay below MaxDelay grows the delays
// (with jitter) up to MaxDelay, never below MinDelay, and a MinDelay alone
// keeps the default MaxDelay as the cap.
func TestWaitScheduleGrows(t *testing.T) {
	for _, w := range []WaitOptions{{MinDelay: time.Second, MaxDelay: 8 * time.Second}, {MinDelay: 4 * time.Second}} {
		synctest.Test(t, func(t *testing.T) {
			ti := &timedImages{start: time.Now(), availableAt: time.Now().Add(5 * time.Minute)}
			f := &fakeEC2{describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) { return ti.answer() }}
			if _, err := Wait(context.Background(), f, &WaitInput{ImageID: "ami-1", Region: "eu-west-1", Wait: w}); err != nil {
				t.Fatal(err)
			}
			max := w.withDefaults().MaxDelay
			var grew bool
			for i := 1; i < len(ti.checks); i++ {
				d := ti.checks[i] - ti.checks[i-1]
				if d < w.MinDelay || d > max {
					t.Fatalf("%+v: delay %v before check %d, want %v..%v", w, d, i, w.MinDelay, max)
				}
				grew = grew || d > w.MinDelay
			}
			if !grew {
				t.Errorf("%+v: the delays never grew: checks at %v", w, ti.checks)
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
			if _, err := Wait(context.Background(), api, &WaitInput{ImageID: "ami-1", Region: "eu-west-1", Wait: w}); err != nil {
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

// TestWaitWithoutProgressReadsEverySixth: without a Progress callback
// Wait describes the snapshots only at every SnapshotReadEvery-th check
// after the first that finds the image pending.
func TestWaitWithoutProgressReadsEverySixth(t *testing.T) {
	var answers []func() (*ec2.DescribeImagesOutput, error)
	for range 2*SnapshotReadEvery + 1 {
		answers = append(answers, images(img("ami-1", "pending", "", "snap-1")))
	}
	f := &fakeEC2{describeImages: sequence(append(answers, images(img("ami-1", "available", "", "snap-1")))...)}
	api := &snapshotFake{fakeEC2: f, describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
		return &ec2.DescribeSnapshotsOutput{Snapshots: []types.Snapshot{snap("snap-1", "0%")}}, nil
	}}
	if _, err := Wait(context.Background(), api, &WaitInput{ImageID: "ami-1", Region: "eu-west-1", Wait: quickWait}); err != nil {
		t.Fatal(err)
	}
	var reads []int // the DescribeImages calls each DescribeSnapshots followed
	n := 0
	for _, c := range f.Calls() {
		if strings.HasPrefix(c, "DescribeImages") {
			n++
		} else {
			reads = append(reads, n)
		}
	}
	if want := []int{SnapshotReadEvery + 1, 2*SnapshotReadEvery + 1}; !slices.Equal(reads, want) {
		t.Errorf("snapshots read after checks %v, want %v (calls %q)", reads, want, f.Calls())
	}
}

// linearSnapshots answers DescribeSnapshots with snap-1's progress rising
// linearly from 0% at start to 100% at end, rounded down as EC2 does.
func linearSnapshots(f *fakeEC2, start, end time.Time) *snapshotFake {
	return &snapshotFake{fakeEC2: f, describeSnapshots: func(*ec2.DescribeSnapshotsInput) (*ec2.DescribeSnapshotsOutput, error) {
		pct := min(100, int(100*time.Since(start)/end.Sub(start)))
		return &ec2.DescribeSnapshotsOutput{Snapshots: []types.Snapshot{snap("snap-1", fmt.Sprintf("%d%%", pct))}}, nil
	}}
}

// TestWaitPredictsEnd runs Wait on the synctest clock with the default
// schedule. The snapshots' progress is linear from the start to 95s. The
// reading at the 60s check (63%) puts their end between 93.75s and
// 95.24s, so the check due at 90s is moved to 95.24s: the image is
// noticed 0.24s after it became available instead of 5s, with one check
// fewer. When the
// image becomes available later than its snapshots say, the moved check
// finds it pending and the schedule goes on from there: still within 10s,
// and with no more checks than the unmoved schedule would have made.
func TestWaitPredictsEnd(t *testing.T) {
	tests := []struct {
		name      string
		available time.Duration
		want      []time.Duration
	}{
		{name: "as predicted", available: 95 * time.Second, want: seconds(0, 10, 20, 30, 40, 50, 60, 70, 80, 95.238095)},
		{name: "later than predicted", available: 112 * time.Second, want: seconds(0, 10, 20, 30, 40, 50, 60, 70, 80, 95.238095, 105.238095, 115.238095)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				ti := &timedImages{start: start, availableAt: start.Add(tc.available)}
				f := &fakeEC2{describeImages: func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) { return ti.answer() }}
				api := linearSnapshots(f, start, start.Add(95*time.Second))
				if _, err := Wait(context.Background(), api, &WaitInput{ImageID: "ami-1", Region: "eu-west-1", Wait: WaitOptions{Since: start}}); err != nil {
					t.Fatal(err)
				}
				if len(ti.checks) != len(tc.want) {
					t.Fatalf("checks at %v, want %v", ti.checks, tc.want)
				}
				for i, c := range ti.checks {
					if d := c - tc.want[i]; d < -time.Millisecond || d > time.Millisecond {
						t.Fatalf("checks at %v, want %v", ti.checks, tc.want)
					}
				}
				last := ti.checks[len(ti.checks)-1]
				if lag := last - tc.available; lag < 0 || lag >= DefaultPollDelay {
					t.Errorf("noticed %v after the image became available, want less than %v", lag, DefaultPollDelay)
				}
				// The unmoved schedule makes a check at every multiple of
				// 10s: never fewer by any time.
				for i, c := range ti.checks {
					if regular := int(c/DefaultPollDelay) + 1; i+1 > regular {
						t.Errorf("check %d at %v: %d checks by then, the schedule makes %d", i+1, c, i+1, regular)
					}
				}
			})
		})
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
		if _, err := Wait(context.Background(), api, &WaitInput{ImageID: "ami-1", Region: "eu-west-1", Wait: w}); err != nil {
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

// TestDurationBounds: each reading narrows the whole duration to what
// every reading so far allows; one that contradicts them starts afresh.
func TestDurationBounds(t *testing.T) {
	type reading struct {
		elapsed time.Duration
		pct     int
	}
	m := time.Minute
	tests := []struct {
		name     string
		readings []reading
		lo, hi   time.Duration
	}{
		{name: "none", lo: 0, hi: 0},
		{name: "0% bounds only from below", readings: []reading{{m, 0}}, lo: 100 * m, hi: 0},
		{name: "one reading", readings: []reading{{m, 4}}, lo: 20 * m, hi: 25 * m},
		// A 21-minute copy read each minute: 4% at 1m, 9% at 2m, 14% at 3m.
		{name: "readings intersect", readings: []reading{{m, 4}, {2 * m, 9}, {3 * m, 14}}, lo: 20 * m, hi: 3 * m * 100 / 14},
		{name: "contradiction starts afresh", readings: []reading{{m, 4}, {2 * m, 50}}, lo: 2 * m * 100 / 51, hi: 4 * m},
		{name: "unusable ignored", readings: []reading{{m, 4}, {2 * m, -1}, {3 * m, 100}, {0, 5}}, lo: 20 * m, hi: 25 * m},
	}
	for _, tc := range tests {
		var b durationBounds
		for _, r := range tc.readings {
			b.add(r.elapsed, r.pct)
		}
		if d := b.lo - tc.lo; d < -time.Microsecond || d > time.Microsecond || b.hi-tc.hi < -time.Microsecond || b.hi-tc.hi > time.Microsecond {
			t.Errorf("%s: bounds %v..%v, want %v..%v", tc.name, b.lo, b.hi, tc.lo, tc.hi)
		}
	}
}
