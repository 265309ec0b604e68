//go:build unix

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestModelShort runs the distribution under the time model briefly (a
// modelled 20-minute copy takes 2 s), so that the model rows of make bench
// keep working: every copy is seen by the model and noticed, and the rows
// are made. It asserts no timing; make bench judges the targets.
func TestModelShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runs, err := runModel(ctx, []int{1, 3}, 1.0/600, 7, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{1, 3} {
		r := runs[i]
		if r.regions != n || len(r.events) != n || r.slowest <= 0 || r.calls == 0 {
			t.Errorf("run %d: %d regions, %d copy events, slowest %s, %d calls", i, r.regions, len(r.events), r.slowest, r.calls)
		}
		for _, e := range r.events {
			if e.Noticed.IsZero() || e.Noticed.Before(e.Done) || e.Polls == 0 {
				t.Errorf("copy %s in %s: noticed %v (done %v) after %d polls", e.ID, e.Region, e.Noticed, e.Done, e.Polls)
			}
		}
	}
	rows := modelRows(runs, 1.0/600)
	if len(rows) != 4 || !strings.Contains(rows[2].measure, "detection lag of 4 copies") {
		t.Errorf("rows: %+v", rows)
	}
}

func TestLagStats(t *testing.T) {
	base := time.Unix(0, 0)
	var events []awstest.Event
	for i := 1; i <= 20; i++ {
		// Scale 1/10: a lag of i×100 ms wall is i s of model time; each
		// waited 60 s of model time with 6 polls: the first at once, then
		// 5 in the minute.
		events = append(events, awstest.Event{Start: base, Done: base.Add(6*time.Second - time.Duration(i)*100*time.Millisecond),
			Noticed: base.Add(6 * time.Second), Polls: 6})
	}
	events = append(events, awstest.Event{Start: base, Done: base.Add(time.Second)})
	median, p95, ppm, missed := lagStats(events, 0.1)
	if median != 11*time.Second || p95 != 19*time.Second || ppm != 5 || missed != 1 {
		t.Errorf("lagStats = %s, %s, %.1f/min, %d missed; want 11s, 19s, 5.0/min, 1", median, p95, ppm, missed)
	}
}
