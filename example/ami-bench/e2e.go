//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/amiforge/packer-plugin-ami/example/internal/benchreport"
)

// Targets of the end-to-end rows.
const (
	e2eMaxCallRatio = 1.5 // calls of a component ≤ this × the minimum
	e2eMaxWallRatio = 1.5 // wall time of a build ≤ this × the floor
)

// Targets of the whole builds under the time model.
const (
	modelMaxBuildRatio = 1.05            // wall ≤ this × the ideal schedule …
	modelBuildSlack    = 5 * time.Second // … plus this (model time)
)

// e2eBench runs the local examples' bench mode (it needs packer, moto and
// sshd, as `make demo` does) and adds its rows to t.
func e2eBench(ctx context.Context, c *config, t *table) error {
	out := filepath.Join(c.work, "e2e.json")
	// A build takes 2–3 s, of which packer's own start is a large and
	// variable share, on both sides of a row: one more run than elsewhere.
	reps := max(c.reps, 3)
	args := []string{"run", "./example/local", "-bench-json", out,
		"-reps", fmt.Sprint(reps), "-latency", c.latency.String(), "-model-speed", fmt.Sprint(1 / c.modelScale)}
	if c.packer != "" {
		args = append(args, "-packer", abs(c.packer))
	}
	c.logf("go %v (the end-to-end rows)", args)
	cmd := execCommand(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go run ./example/local -bench-json (run from the repository root; needs bin/packer, moto_server and sshd: make bin/packer sshd moto): %w", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	rows, err := e2eRows(b)
	if err != nil {
		return err
	}
	for _, r := range rows {
		t.add(r)
	}
	return nil
}

// e2eRows turns the runner's report into rows: per template, one row of
// calls per component and one of wall time.
func e2eRows(b []byte) ([]row, error) {
	var r benchreport.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read the end-to-end report: %w", err)
	}
	if len(r.Templates) == 0 {
		return nil, fmt.Errorf("the end-to-end report has no templates")
	}
	latency := time.Duration(r.LatencyMS * float64(time.Millisecond))
	var rows []row
	for _, tpl := range r.Templates {
		if len(tpl.Components) == 0 {
			return nil, fmt.Errorf("the end-to-end report of %s has no components", tpl.Template)
		}
		for _, comp := range tpl.Components {
			if comp.MinimumCalls <= 0 {
				return nil, fmt.Errorf("%s: %s has no minimum calls", tpl.Template, comp.Component)
			}
			ratio := float64(comp.Calls) / float64(comp.MinimumCalls)
			rows = append(rows, row{
				measure:   fmt.Sprintf("packer build %s: %s calls", tpl.Template, comp.Component),
				ours:      fmt.Sprintf("%d calls", comp.Calls),
				reference: fmt.Sprintf("minimum %d", comp.MinimumCalls),
				ratio:     times(ratio),
				target:    fmt.Sprintf("≤ %.1f× minimum", e2eMaxCallRatio),
				verdict:   check(ratio <= e2eMaxCallRatio),
			})
		}
		if tpl.Unattributed > 0 {
			rows = append(rows, row{
				measure: fmt.Sprintf("packer build %s: calls without an app id", tpl.Template),
				ours:    fmt.Sprintf("%d calls", tpl.Unattributed),
				target:  "none",
				verdict: fail,
			})
		}
		wall := seconds(tpl.WallSeconds)
		null, least := seconds(tpl.NullBuildSeconds), seconds(tpl.MinimumSeconds)
		floor := null + least
		if floor <= 0 {
			return nil, fmt.Errorf("%s: no floor", tpl.Template)
		}
		ratio := wall.Seconds() / floor.Seconds()
		rows = append(rows, row{
			measure:   fmt.Sprintf("packer build %s wall, moto + %s per call", tpl.Template, latency),
			ours:      secs(wall),
			reference: fmt.Sprintf("floor %s (null build %s + minimum calls %s)", secs(floor), secs(null), secs(least)),
			ratio:     times(ratio),
			target:    fmt.Sprintf("≤ %.1f× floor", e2eMaxWallRatio),
			verdict:   check(ratio <= e2eMaxWallRatio),
		})
		if m := tpl.Model; m != nil && m.Speed > 0 {
			// In model time (wall × Speed). The ideal is the same build
			// without waits, at the model's latency (its overhead over the
			// floor is judged by the row above), plus each modelled AWS
			// duration on the critical path, noticed at once: the
			// difference is what the build adds to the waits. A report
			// without that build uses the row above's.
			ours := seconds(m.WallSeconds * m.Speed)
			base := seconds(tpl.WallSeconds * m.Speed)
			if m.NoWaitSeconds > 0 {
				base = seconds(m.NoWaitSeconds * m.Speed)
			}
			ideal := base + seconds(m.IdealAWSSeconds)
			limit := time.Duration(float64(ideal)*modelMaxBuildRatio) + modelBuildSlack
			rows = append(rows, row{
				measure:   fmt.Sprintf("packer build %s under the time model (model time, %d waits, lag median %s, p95 %s)", tpl.Template, m.Waits, secs(seconds(m.MedianLagSeconds)), secs(seconds(m.P95LagSeconds))),
				ours:      secs(ours),
				reference: fmt.Sprintf("ideal %s (AWS %s + the build without waits %s)", secs(ideal), secs(seconds(m.IdealAWSSeconds)), secs(base)),
				ratio:     times(ours.Seconds() / ideal.Seconds()),
				target:    fmt.Sprintf("≤ %.2f× ideal + %s", modelMaxBuildRatio, secs(modelBuildSlack)),
				verdict:   check(ours <= limit),
			})
		}
	}
	return rows, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
