//go:build unix

package amiconfig

import (
	"strings"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

func TestParseTimeScale(t *testing.T) {
	tests := []struct {
		value   string
		want    float64
		wantErr bool
	}{
		{value: "", want: 1},
		{value: "1", want: 1},
		{value: "0.01", want: 0.01},
		{value: " 0.5 ", want: 0.5},
		{value: "0", wantErr: true},
		{value: "-0.5", wantErr: true},
		{value: "1.5", wantErr: true},
		{value: "NaN", wantErr: true},
		{value: "fast", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			got, err := parseTimeScale(tc.value)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), TimeScaleEnv) {
					t.Fatalf("parseTimeScale(%q) = %v, %v; want an error naming %s", tc.value, got, err, TimeScaleEnv)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseTimeScale(%q) = %v, %v; want %v", tc.value, got, err, tc.want)
			}
		})
	}
}

// TestPollingWaits checks the wait options the builders get: the default
// schedule (a check every 5 seconds for an instance, 10 for an AMI) unless
// delay_seconds says otherwise, max_attempts as a bound on the whole wait,
// and the test time scale shrinking every delay but no timeout.
func TestPollingWaits(t *testing.T) {
	tests := []struct {
		name                string
		polling             PollingConfig
		scale               string
		wantDelay           time.Duration // both MinDelay and MaxDelay; 0 = the SDK default
		wantImageMaxWait    time.Duration // 0 = the SDK default
		wantInstanceMaxWait time.Duration
		wantInstanceDelay   time.Duration // when it differs from wantDelay
		wantErr             bool
	}{
		{name: "defaults", wantDelay: 0},
		{name: "delay and attempts", polling: PollingConfig{DelaySeconds: 5, MaxAttempts: 10}, wantDelay: 5 * time.Second, wantImageMaxWait: 50 * time.Second, wantInstanceMaxWait: 50 * time.Second},
		{name: "attempts only", polling: PollingConfig{MaxAttempts: 4}, wantImageMaxWait: time.Minute, wantInstanceMaxWait: time.Minute},
		{name: "scaled defaults", scale: "0.01", wantDelay: 100 * time.Millisecond, wantInstanceDelay: 50 * time.Millisecond},
		{name: "scaled delay", polling: PollingConfig{DelaySeconds: 5, MaxAttempts: 10}, scale: "0.1", wantDelay: 500 * time.Millisecond, wantImageMaxWait: 50 * time.Second, wantInstanceMaxWait: 50 * time.Second},
		{name: "scale 1", scale: "1", wantDelay: 0},
		{name: "malformed scale", scale: "0,5", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(TimeScaleEnv, tc.scale)
			c := tc.polling
			errs := c.Prepare()
			if tc.wantErr {
				if len(errs) != 1 || !strings.Contains(errs[0].Error(), TimeScaleEnv) {
					t.Fatalf("Prepare() = %v, want one error naming %s", errs, TimeScaleEnv)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			iw, nw := c.ImageWait(), c.InstanceWait()
			if iw.MinDelay != tc.wantDelay || iw.MaxDelay != tc.wantDelay || iw.MaxWait != tc.wantImageMaxWait {
				t.Errorf("ImageWait() = %+v, want delays %v, max wait %v", iw, tc.wantDelay, tc.wantImageMaxWait)
			}
			wantInstanceDelay := tc.wantDelay
			if tc.wantInstanceDelay != 0 {
				wantInstanceDelay = tc.wantInstanceDelay
			}
			if nw.MinDelay != wantInstanceDelay || nw.MaxDelay != wantInstanceDelay || nw.MaxWait != tc.wantInstanceMaxWait {
				t.Errorf("InstanceWait() = %+v, want delays %v, max wait %v", nw, wantInstanceDelay, tc.wantInstanceMaxWait)
			}
		})
	}
	// The scale is read once, in Prepare.
	t.Setenv(TimeScaleEnv, "0.5")
	var c PollingConfig
	if errs := c.Prepare(); len(errs) > 0 {
		t.Fatal(errs)
	}
	t.Setenv(TimeScaleEnv, "0.1")
	if w := c.ImageWait(); w.MinDelay != image.DefaultPollDelay/2 {
		t.Errorf("after the variable changed, MinDelay = %v, want %v", w.MinDelay, image.DefaultPollDelay/2)
	}
	if w := c.InstanceWait(); w.MinDelay != instance.DefaultPollDelay/2 {
		t.Errorf("after the variable changed, MinDelay = %v, want %v", w.MinDelay, instance.DefaultPollDelay/2)
	}
}

// TestImageProgress: the wait options a builder uses for its own AMI
// report a pending image once a minute through the UI, keeping the
// schedule and limits it was given.
func TestImageProgress(t *testing.T) {
	tests := []struct {
		name string
		p    image.Progress
		want string
	}{
		{name: "percent", p: image.Progress{ImageID: "ami-1", Region: "eu-west-1", State: "pending", Elapsed: 190400 * time.Millisecond, SnapshotPercent: 45},
			want: "eu-west-1: ami-1 pending, snapshots 45 %, 3m10s"},
		{name: "unknown", p: image.Progress{ImageID: "ami-2", Region: "us-east-1", State: "pending", Elapsed: time.Minute, SnapshotPercent: -1},
			want: "us-east-1: ami-2 pending, snapshots unknown, 1m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			base := image.WaitOptions{MinDelay: time.Second, MaxDelay: 2 * time.Second, MaxWait: time.Hour}
			w := ImageProgress(base, func(s string) { got = append(got, s) })
			if w.MinDelay != base.MinDelay || w.MaxDelay != base.MaxDelay || w.MaxWait != base.MaxWait {
				t.Errorf("schedule changed: %+v", w)
			}
			if w.ProgressInterval != time.Minute || w.Progress == nil {
				t.Fatalf("progress every %v (callback set: %v), want every minute", w.ProgressInterval, w.Progress != nil)
			}
			w.Progress(tc.p)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("lines = %q, want %q", got, tc.want)
			}
		})
	}
}
