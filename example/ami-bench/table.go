//go:build unix

package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// verdict is the last column of a row.
type verdict string

const (
	pass verdict = "PASS"
	fail verdict = "FAIL"
	info verdict = "info" // no target: reported for reading
)

// row is one line of the table.
type row struct {
	measure, ours, reference, ratio, target string
	verdict                                 verdict
}

type table struct{ rows []row }

func (t *table) add(r row) { t.rows = append(t.rows, r) }

func (t *table) failed() bool {
	for _, r := range t.rows {
		if r.verdict == fail {
			return true
		}
	}
	return false
}

// check returns pass when ok, else fail.
func check(ok bool) verdict {
	if ok {
		return pass
	}
	return fail
}

// print writes the table in Markdown form, so that it can be pasted into
// docs/performance.md as it is, followed by a note line.
func (t *table) print(w io.Writer, note string) {
	head := row{"measure", "ours", "reference", "ratio", "target", "pass/fail"}
	cells := func(r row) []string {
		return []string{r.measure, r.ours, r.reference, r.ratio, r.target, string(r.verdict)}
	}
	width := make([]int, 6)
	for _, r := range append([]row{head}, t.rows...) {
		for i, c := range cells(r) {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cs []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cs {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		fmt.Fprintln(w, b.String())
	}
	line(cells(head))
	sep := make([]string, 6)
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range t.rows {
		line(cells(r))
	}
	if note != "" {
		fmt.Fprintf(w, "\n%s\n", note)
	}
}

// secs formats a duration in seconds.
func secs(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", d.Seconds()*1000)
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

// times formats a ratio.
func times(r float64) string { return fmt.Sprintf("%.2f×", r) }

// speed formats a duration with the throughput over n bytes.
func speed(d time.Duration, n int64) string {
	return fmt.Sprintf("%s (%.0f MB/s)", secs(d), float64(n)/d.Seconds()/1e6)
}
