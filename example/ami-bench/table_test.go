//go:build unix

package main

import (
	"strings"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	tests := []struct {
		name       string
		rows       []row
		wantFailed bool
		wantLines  []string
	}{
		{
			name:      "empty",
			wantLines: []string{"| measure | ours | reference | ratio | target | pass/fail |"},
		},
		{
			name: "pass and info",
			rows: []row{
				{"bundle", "1.00 s", "9.0 s", times(9), "≥ 4×", check(true)},
				{"floor", "1.00 s", "floor 0.5 s", times(2), "report", info},
			},
			wantLines: []string{"| bundle  | 1.00 s | 9.0 s       | 9.00× | ≥ 4×   | PASS      |", "| floor   | 1.00 s | floor 0.5 s | 2.00× | report | info      |"},
		},
		{
			name:       "a failure",
			rows:       []row{{"unbundle", "2 s", "4 s", times(2), "≥ 4×", check(false)}},
			wantFailed: true,
			wantLines:  []string{"| unbundle | 2 s  | 4 s       | 2.00× | ≥ 4×   | FAIL      |"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := &table{rows: tc.rows}
			if tb.failed() != tc.wantFailed {
				t.Errorf("failed() = %v", tb.failed())
			}
			var b strings.Builder
			tb.print(&b, "note")
			out := b.String()
			for _, l := range tc.wantLines {
				if !strings.Contains(out, l+"\n") {
					t.Errorf("output lacks %q:\n%s", l, out)
				}
			}
			if !strings.HasSuffix(out, "\nnote\n") {
				t.Errorf("note missing:\n%s", out)
			}
		})
	}
}

func TestFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{secs(250 * time.Millisecond), "250 ms"},
		{secs(2500 * time.Millisecond), "2.50 s"},
		{secs(55 * time.Second), "55.0 s"},
		{speed(2*time.Second, 400e6), "2.00 s (200 MB/s)"},
		{mib(3 << 20), "3.0 MiB"},
		{times(4), "4.00×"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
