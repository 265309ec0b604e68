package main

import (
	"fmt"
	"io"
	"time"
)

// progress prints "LABEL: P% (DONE of TOTAL)" lines to w: one per
// interval while the operation runs, and always the last one.
type progress struct {
	w        io.Writer
	label    string
	interval time.Duration
	now      func() time.Time
	last     time.Time // of the last line, or of the first update
}

func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, label: label, interval: 2 * time.Second, now: time.Now}
}

func (p *progress) update(done, total int64) {
	now := p.now()
	if p.last.IsZero() {
		p.last = now
	}
	if done < total && now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	pct := 100.0
	if total > 0 {
		pct = float64(done) * 100 / float64(total)
	}
	fmt.Fprintf(p.w, "%s: %3.0f%% (%s of %s)\n", p.label, pct, size(done), size(total))
}

// size formats a byte count for people.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
