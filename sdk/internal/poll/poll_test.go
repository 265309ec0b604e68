package poll

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestWithDefaults(t *testing.T) {
	const d, w = 10 * time.Second, time.Hour
	for _, tc := range []struct {
		name string
		in   Schedule
		want Schedule
	}{
		{"zero", Schedule{}, Schedule{d, d, w}},
		{"negative", Schedule{-1, -1, -1}, Schedule{d, d, w}},
		{"max below min", Schedule{MinDelay: 20 * time.Second, MaxDelay: 5 * time.Second}, Schedule{20 * time.Second, 20 * time.Second, w}},
		{"min only", Schedule{MinDelay: 30 * time.Second}, Schedule{30 * time.Second, 30 * time.Second, w}},
		{"kept", Schedule{2 * time.Second, 30 * time.Second, time.Minute}, Schedule{2 * time.Second, 30 * time.Second, time.Minute}},
	} {
		if got := tc.in.WithDefaults(d, w); got != tc.want {
			t.Errorf("%s: %+v.WithDefaults = %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(context.Background(), time.Minute); err != nil || time.Since(start) != time.Minute {
			t.Errorf("Sleep(1m) = %v after %v, want nil after 1m", err, time.Since(start))
		}
		if err := SleepUntil(context.Background(), start); err != nil || time.Since(start) != time.Minute {
			t.Errorf("SleepUntil(the past) = %v after %v, want nil at once", err, time.Since(start)-time.Minute)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute+time.Second {
			t.Errorf("Sleep cut short = %v after %v, want the deadline after 1s", err, time.Since(start)-time.Minute)
		}
		if err := Sleep(ctx, 0); err == nil {
			t.Error("Sleep(0) on a done context = nil, want its error")
		}
	})
}

func TestStateMessage(t *testing.T) {
	for _, tc := range []struct {
		state, reason string
		err           error
		notWant       bool
		want          string
	}{
		{"failed", "Snapshot copy failed", nil, false, "image ami-1 in r is failed: Snapshot copy failed"},
		{"", "", nil, false, "image ami-1 in r is gone"},
		{"pending", "", ErrTimeout, false, "image ami-1 in r: timed out waiting to become available; it is pending"},
		{"terminated", "", nil, true, "image ami-1 in r is terminated, not available"},
	} {
		if got := StateMessage("image ami-1 in r", "available", tc.state, tc.reason, tc.err, tc.notWant); got != tc.want {
			t.Errorf("StateMessage(%q, %q, %v, %v) = %q, want %q", tc.state, tc.reason, tc.err, tc.notWant, got, tc.want)
		}
	}
}
