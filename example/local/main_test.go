//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRun runs the demo end to end against moto with the real packer: the
// default builds, one local example alone, and an interrupt in the middle
// of a build. After every run the emulator and the SSH server must be gone.
func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		only     string
		cancelOn string // cancel the run (as Ctrl-C does) when the output has this
		wantErr  bool
		want     []*regexp.Regexp
	}{
		{
			name: "default builds",
			only: defaultOnly,
			want: []*regexp.Regexp{
				regexp.MustCompile(`Connected to SSH!`),
				regexp.MustCompile(`provisioned by packer at`),
				regexp.MustCompile(`Per-region results:`),
				regexp.MustCompile(`(?m)^    us-east-1 +ami-\w+ +demo-web-\d+ +ebs +\S*Region=us-east-1\S* +111122223333,444455556666,o-abcdefghij$`),
				regexp.MustCompile(`(?m)^    eu-west-1 +ami-\w+ +demo-web-\d+ +ebs +\S*Region=eu-west-1\S* +111122223333,444455556666,o-abcdefghij$`),
				regexp.MustCompile(`(?m)^    ap-southeast-2 +ami-\w+ +demo-web-\d+ +ebs +\S*Region=ap-southeast-2\S* +111122223333,444455556666,o-abcdefghij$`),
				regexp.MustCompile(`(?m)^    us-east-1 +ami-\w+ +demo-instance-\d+ +instance-store +\S*Name=demo-instance\S* +-$`),
				// Published: each region's parameter and template default
				// name the region's AMI, and the other account owns its copy.
				regexp.MustCompile(`(?m)^    this +eu-west-1 +\[(ami-\w+)\] +(ami-\w+) +version 2: (ami-\w+)$`),
				regexp.MustCompile(`(?m)^    222222222222 +eu-west-1 +\[(ami-\w+)\] +(ami-\w+) +version 2: (ami-\w+)$`),
				regexp.MustCompile(`(?m)^ +\d+  s3://demo-bundles/demo/\d+/image\.manifest\.xml$`),
				regexp.MustCompile(`(?m)^ +\d+  s3://demo-bundles/demo/\d+/image\.part\.0$`),
				regexp.MustCompile(`only the products remain: 4 AMIs in 3 regions, 4 snapshots of theirs, 2 bundle objects`),
			},
		},
		{
			name: "ebs alone",
			only: "ebs",
			want: []*regexp.Regexp{
				regexp.MustCompile(`(?m)^    us-east-1 +ami-\w+ +demo-web-\d+ +ebs +\S*SourceAMI=ami-\w+\S* +-$`),
				regexp.MustCompile(`only the products remain: 1 AMIs in 1 regions, 1 snapshots of theirs\n`),
			},
		},
		{
			name:     "interrupted",
			only:     defaultOnly,
			cancelOn: "Launching a t3.micro build instance",
			wantErr:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			out := &watchWriter{match: tc.cancelOn, onMatch: cancel}
			err := run(ctx, options{only: tc.only, region: "us-east-1", bucket: "demo-bundles", timeout: 2 * time.Minute}, out)
			got := out.String()
			if (err != nil) != tc.wantErr {
				t.Fatalf("run() error = %v, want error %v; output:\n%s", err, tc.wantErr, got)
			}
			if tc.cancelOn != "" && !errors.Is(err, context.Canceled) {
				t.Errorf("run() error = %v, want context.Canceled", err)
			}
			for _, re := range tc.want {
				m := re.FindStringSubmatch(got)
				switch {
				case m == nil:
					t.Errorf("output does not match %s:\n%s", re, got)
				case len(m) == 4 && (m[1] != m[2] || m[2] != m[3]):
					// Published rows: owned AMI, parameter and template agree.
					t.Errorf("published row names different AMIs: %q", m[0])
				}
			}
			for _, addr := range listeners(t, got) {
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					t.Errorf("%s still answers after run() returned", addr)
				}
			}
		})
	}
}

// listeners returns the addresses of moto and the SSH server from the
// demo's output.
func listeners(t *testing.T, out string) []string {
	t.Helper()
	var addrs []string
	if m := regexp.MustCompile(`(?m)^    http://(127\.0\.0\.1:\d+)$`).FindStringSubmatch(out); m != nil {
		addrs = append(addrs, m[1])
	} else {
		t.Error("the output does not name moto's endpoint")
	}
	if m := regexp.MustCompile(`(?m)^    \S+@(127\.0\.0\.1:\d+)$`).FindStringSubmatch(out); m != nil {
		addrs = append(addrs, m[1])
	} else {
		t.Error("the output does not name the SSH server")
	}
	return addrs
}

// watchWriter collects output and calls onMatch once when it contains match.
type watchWriter struct {
	match   string
	onMatch func()

	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.match != "" && !w.done && strings.Contains(w.buf.String(), w.match) {
		w.done = true
		w.onMatch()
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
