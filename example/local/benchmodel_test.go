//go:build unix

package main

import (
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestIdealAndLags: waits one after another add up; overlapping ones (the
// copies of a distribution) count as one step as long as the longest; a
// transition nobody waited for is not on the critical path.
func TestIdealAndLags(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	events := []awstest.Event{
		{Kind: "instance-run", Start: at(0), Done: at(1), Noticed: at(1.2), Polls: 2},
		{Kind: "image-create", Start: at(2), Done: at(5), Noticed: at(5.5), Polls: 4},
		{Kind: "image-copy", Start: at(6), Done: at(8), Noticed: at(8.1), Polls: 3},
		{Kind: "image-copy", Start: at(6.1), Done: at(10), Noticed: at(10.3), Polls: 5},
		{Kind: "image-register", Start: at(11), Done: at(12)}, // not waited for
	}
	ideal, lags := idealAndLags(events, 10) // model time = wall × 10
	// Steps: 1 s + 3 s + (10 − 6) s = 8 s wall = 80 s model.
	if ideal != 80*time.Second {
		t.Errorf("ideal = %s, want 80s", ideal)
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second}
	if len(lags) != len(want) {
		t.Fatalf("lags = %v, want %v", lags, want)
	}
	for i := range want {
		if d := lags[i] - want[i]; d > time.Millisecond || d < -time.Millisecond {
			t.Errorf("lags = %v, want %v", lags, want)
		}
	}
	if p := percentile(lags, 50); p != lags[1] {
		t.Errorf("median = %s, want %s", p, lags[1])
	}
}
