//go:build unix

package instance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
	smithywaiter "github.com/aws/smithy-go/waiter"
)

// TestWaitDefaultSchedule checks the delays the SDK waiters compute from
// the delays waitState gives them: with zero WaitOptions every check after
// the first follows 5 seconds after the one before, without growth or
// jitter, so a state change is noticed within 5 seconds for 12
// DescribeInstances calls a minute.
func TestWaitDefaultSchedule(t *testing.T) {
	tests := []struct {
		name string
		w    WaitOptions
		want time.Duration
	}{
		{name: "defaults", w: WaitOptions{}, want: 5 * time.Second},
		{name: "fixed override", w: WaitOptions{MinDelay: 3 * time.Second, MaxDelay: 3 * time.Second}, want: 3 * time.Second},
		{name: "longer min", w: WaitOptions{MinDelay: 20 * time.Second}, want: 20 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w.withDefaults()
			if w.MaxWait != 20*time.Minute {
				t.Errorf("MaxWait = %v, want 20m", w.MaxWait)
			}
			calls := 0
			var elapsed time.Duration
			for attempt := int64(1); elapsed < 10*time.Minute; attempt++ {
				d, err := smithywaiter.ComputeDelay(attempt, w.MinDelay, w.MaxDelay, time.Hour-elapsed)
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
			if tc.name == "defaults" && calls != 12 {
				t.Errorf("checks in the first minute after the first = %d, want 12", calls)
			}
		})
	}
}

// A timeout of any wait in the SDK matches either package's sentinel.
func TestErrWaitTimeoutIsShared(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &StateError{InstanceID: "i-1", Want: "running", Err: ErrWaitTimeout})
	if !errors.Is(err, image.ErrWaitTimeout) {
		t.Error("an instance wait timeout does not match image.ErrWaitTimeout")
	}
}
