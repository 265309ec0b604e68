//go:build unix

package main

import (
	"strings"
	"testing"
)

func TestE2ERows(t *testing.T) {
	tests := []struct {
		name     string
		report   string
		want     []row
		wantErrs string
	}{
		{
			name: "two components and a wall row",
			report: `{"latency_ms": 50, "reps": 2, "templates": [{"template": "distribute.pkr.hcl",
				"wall_seconds": 3, "null_build_seconds": 1.5, "minimum_seconds": 0.5, "unattributed_calls": 0,
				"components": [{"component": "ami-ebs", "calls": 18, "minimum_calls": 12},
				               {"component": "ami-distribute", "calls": 30, "minimum_calls": 14}]}]}`,
			want: []row{
				{"packer build distribute.pkr.hcl: ami-ebs calls", "18 calls", "minimum 12", "1.50×", "≤ 1.5× minimum", pass},
				{"packer build distribute.pkr.hcl: ami-distribute calls", "30 calls", "minimum 14", "2.14×", "≤ 1.5× minimum", fail},
				{"packer build distribute.pkr.hcl wall, moto + 50ms per call", "3.00 s", "floor 2.00 s (null build 1.50 s + minimum calls 500 ms)", "1.50×", "≤ 1.5× floor", pass},
			},
		},
		{
			name: "calls without an app id fail",
			report: `{"latency_ms": 20, "reps": 1, "templates": [{"template": "ebs.pkr.hcl",
				"wall_seconds": 4, "null_build_seconds": 1, "minimum_seconds": 1, "unattributed_calls": 2,
				"components": [{"component": "ami-ebs", "calls": 13, "minimum_calls": 13}]}]}`,
			want: []row{
				{"packer build ebs.pkr.hcl: ami-ebs calls", "13 calls", "minimum 13", "1.00×", "≤ 1.5× minimum", pass},
				{"packer build ebs.pkr.hcl: calls without an app id", "2 calls", "", "", "none", fail},
				{"packer build ebs.pkr.hcl wall, moto + 20ms per call", "4.00 s", "floor 2.00 s (null build 1.00 s + minimum calls 1.00 s)", "2.00×", "≤ 1.5× floor", fail},
			},
		},
		{
			name: "a build under the time model",
			report: `{"latency_ms": 50, "reps": 1, "templates": [{"template": "ebs.pkr.hcl",
				"wall_seconds": 3, "null_build_seconds": 1, "minimum_seconds": 1, "unattributed_calls": 0,
				"components": [{"component": "ami-ebs", "calls": 13, "minimum_calls": 13}],
				"model": {"speed": 20, "wall_seconds": 22, "ideal_aws_seconds": 400, "waits": 4, "median_lag_seconds": 5, "p95_lag_seconds": 9}}]}`,
			want: []row{
				{"packer build ebs.pkr.hcl: ami-ebs calls", "13 calls", "minimum 13", "1.00×", "≤ 1.5× minimum", pass},
				{"packer build ebs.pkr.hcl wall, moto + 50ms per call", "3.00 s", "floor 2.00 s (null build 1.00 s + minimum calls 1.00 s)", "1.50×", "≤ 1.5× floor", pass},
				// Ideal 60 s (the build without waits, 3 s × 20) + 400 s =
				// 460 s; the limit is 1.05 × 460 s + 5 s = 488 s; ours
				// 22 × 20 = 440 s.
				{"packer build ebs.pkr.hcl under the time model (model time, 4 waits, lag median 5.00 s, p95 9.00 s)", "440.0 s", "ideal 460.0 s (AWS 400.0 s + the build without waits 60.0 s)", "0.96×", "≤ 1.05× ideal + 5.00 s", pass},
			},
		},
		{
			name: "the build without waits at the model's latency",
			report: `{"latency_ms": 50, "reps": 1, "templates": [{"template": "ebs.pkr.hcl",
				"wall_seconds": 3, "null_build_seconds": 1, "minimum_seconds": 1, "unattributed_calls": 0,
				"components": [{"component": "ami-ebs", "calls": 13, "minimum_calls": 13}],
				"model": {"speed": 20, "wall_seconds": 22, "ideal_aws_seconds": 400, "waits": 4, "median_lag_seconds": 5, "p95_lag_seconds": 9, "no_wait_seconds": 1.5}}]}`,
			want: []row{
				{"packer build ebs.pkr.hcl: ami-ebs calls", "13 calls", "minimum 13", "1.00×", "≤ 1.5× minimum", pass},
				{"packer build ebs.pkr.hcl wall, moto + 50ms per call", "3.00 s", "floor 2.00 s (null build 1.00 s + minimum calls 1.00 s)", "1.50×", "≤ 1.5× floor", pass},
				// Ideal 30 s (1.5 s × 20) + 400 s = 430 s; the limit is
				// 1.05 × 430 s + 5 s = 456.5 s; ours 440 s.
				{"packer build ebs.pkr.hcl under the time model (model time, 4 waits, lag median 5.00 s, p95 9.00 s)", "440.0 s", "ideal 430.0 s (AWS 400.0 s + the build without waits 30.0 s)", "1.02×", "≤ 1.05× ideal + 5.00 s", pass},
			},
		},
		{name: "not JSON", report: `packer build failed`, wantErrs: "read the end-to-end report"},
		{name: "no templates", report: `{"templates": []}`, wantErrs: "no templates"},
		{name: "no minimum", report: `{"templates": [{"template": "x", "wall_seconds": 1, "null_build_seconds": 1,
			"components": [{"component": "ami-ebs", "calls": 3}]}]}`, wantErrs: "no minimum calls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := e2eRows([]byte(tc.report))
			if tc.wantErrs != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrs) {
					t.Fatalf("e2eRows() error = %v, want one containing %q", err, tc.wantErrs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tc.want) {
				t.Fatalf("got %d rows, want %d: %+v", len(rows), len(tc.want), rows)
			}
			for i := range rows {
				if rows[i] != tc.want[i] {
					t.Errorf("row %d:\n got %+v\nwant %+v", i, rows[i], tc.want[i])
				}
			}
		})
	}
}
