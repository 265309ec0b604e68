//go:build unix

package distribute

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestCopyProgressAndDuration runs Copy on the synctest clock with the
// default wait schedule (a check every 10 s). The copy in eu-west-1 is
// pending at its first 20 checks (0 s to 190 s) and available at 200 s, the
// one in ap-south-1 available at its fourth check (30 s). Copy logs a
// progress line for eu-west-1 once a minute (at 60, 120 and 180 s) and none
// for ap-south-1, describes snapshots only for those lines, and reports
// each copy's time from CopyImage to available.
func TestCopyProgressAndDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCopyCloud(t, "eu-west-1", "ap-south-1")
		pendingChecks := map[string]int{"eu-west-1": 20, "ap-south-1": 3}
		var mu sync.Mutex
		checks := map[string]int{}
		c.DescribeImagesFn = func(ctx context.Context, region string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
			out, err := c.defDescribeImages(region, in)
			if err != nil || len(in.ImageIds) != 1 || in.ImageIds[0] == srcID || region == srcRegion {
				return out, err
			}
			mu.Lock()
			checks[region]++
			n := checks[region]
			mu.Unlock()
			if n <= pendingChecks[region] {
				for i := range out.Images {
					out.Images[i].State = types.ImageStatePending
				}
			}
			return out, nil
		}
		var lines []string
		opts := func(o *Options) {
			o.RetryDelay = time.Millisecond
			o.Logf = func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, fmt.Sprintf(format, args...))
			}
		}
		out, err := Copy(context.Background(), c.clients(), &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1")}, opts)
		if err != nil {
			t.Fatal(err)
		}
		eu, ap := out.Results[0], out.Results[1]
		var progress []string
		for _, l := range lines {
			if strings.Contains(l, "copying,") {
				progress = append(progress, l)
			}
		}
		want := []string{
			"eu-west-1: " + eu.ImageID + " copying, snapshots 100 %, 1m0s",
			"eu-west-1: " + eu.ImageID + " copying, snapshots 100 %, 2m0s",
			"eu-west-1: " + eu.ImageID + " copying, snapshots 100 %, 3m0s",
		}
		if strings.Join(progress, "\n") != strings.Join(want, "\n") {
			t.Errorf("progress lines:\n%s\nwant:\n%s", strings.Join(progress, "\n"), strings.Join(want, "\n"))
		}
		if n := len(c.Calls("DescribeSnapshots")); n != 3 {
			t.Errorf("%d DescribeSnapshots calls, want 3 (one per progress line)", n)
		}
		if eu.Duration != 200*time.Second || ap.Duration != 30*time.Second {
			t.Errorf("durations = %v (eu-west-1), %v (ap-south-1); want 3m20s, 30s", eu.Duration, ap.Duration)
		}
		b, err := json.Marshal(eu)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"copy_seconds":200`) {
			t.Errorf("JSON %s lacks copy_seconds 200", b)
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil || back.Duration != eu.Duration {
			t.Errorf("round trip: %v, duration %v", err, back.Duration)
		}
	})
}

// TestCopyWithoutLogfReadsSnapshotsOnceAMinute: without Logf no line is
// logged, and the snapshots are read only as image.Wait reads them to
// predict the end: once a minute (at 60 s of the 120 s wait).
func TestCopyWithoutLogfReadsSnapshotsOnceAMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCopyCloud(t, "eu-west-1")
		var checks int
		c.DescribeImagesFn = func(ctx context.Context, region string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
			out, err := c.defDescribeImages(region, in)
			if err == nil && region == "eu-west-1" && len(in.ImageIds) == 1 {
				if checks++; checks <= 12 {
					out.Images[0].State = types.ImageStatePending
				}
			}
			return out, err
		}
		if _, err := Copy(context.Background(), c.clients(), &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1")}, func(o *Options) { o.RetryDelay = time.Millisecond }); err != nil {
			t.Fatal(err)
		}
		if n := len(c.Calls("DescribeSnapshots")); n != 1 {
			t.Errorf("%d DescribeSnapshots calls, want 1", n)
		}
	})
}
