package poll

import (
	"testing"
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
