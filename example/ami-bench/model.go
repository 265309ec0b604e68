//go:build unix

package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// Targets of the model rows (issue: copies never wait in line, prompt
// detection, few calls while waiting).
const (
	modelMaxCopyRatio   = 1.1              // wall ≤ this × the slowest region's copy
	modelMedianLag      = 5 * time.Second  // unscaled
	modelP95Lag         = 10 * time.Second // unscaled
	modelMaxPollsPerMin = 6.0
)

// modelRegions are the copy targets of the model rows, in order: 16
// regions besides the source.
var modelRegions = []string{
	"eu-west-1", "eu-central-1", "us-west-2", "ap-southeast-2", "ap-northeast-1", "sa-east-1", "ca-central-1", "eu-north-1",
	"ap-south-1", "us-east-2", "us-west-1", "eu-west-2", "eu-west-3", "ap-northeast-2", "ap-southeast-1", "ap-northeast-3",
}

// modelRun is the outcome of one distribution under the time model.
type modelRun struct {
	regions int
	wall    time.Duration // scaled back to model time
	slowest time.Duration // the slowest copy's modelled duration
	events  []awstest.Event
	calls   int
}

// runModel distributes an AMI to each count of regions in ns with
// distribute.Copy's defaults (concurrency, and the SDK's wait schedule
// scaled like the model), behind a proxy with a time model of the given
// scale and seed, and returns one run per count.
func runModel(ctx context.Context, ns []int, scale float64, seed int64, logf func(string, ...any)) ([]modelRun, error) {
	m, err := awstest.StartMoto(ctx, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	if err != nil {
		return nil, fmt.Errorf("start moto (%s): %w", awstest.MotoInstallHint, err)
	}
	defer m.Stop()
	model := &awstest.TimeModel{Scale: scale, Seed: seed}
	p, err := awstest.StartProxy(m.Endpoint, awstest.ProxyOptions{Model: model})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	clients := regionClients(p.URL)
	direct, _ := awstest.Clients(m.Endpoint, "us-east-1")
	// The SDK's default schedule, on the model's clock.
	poll := time.Duration(float64(10*time.Second) * scale)
	opts := func(o *distribute.Options) {
		o.Wait = distribute.WaitOptions{MinDelay: poll, MaxDelay: poll, MaxWait: 2 * time.Hour}
		o.RetryDelay = poll
	}
	var runs []modelRun
	for _, n := range ns {
		if n > len(modelRegions) {
			return nil, fmt.Errorf("at most %d regions", len(modelRegions))
		}
		name := fmt.Sprintf("model-%d-%d", n, time.Now().UnixNano())
		src, err := direct.RegisterImage(ctx, &ec2.RegisterImageInput{
			Name: aws.String(name), RootDeviceName: aws.String("/dev/xvda"),
			Architecture: types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
		})
		if err != nil {
			return nil, err
		}
		var targets []distribute.Target
		for _, r := range modelRegions[:n] {
			targets = append(targets, distribute.Target{Region: r})
		}
		p.Reset()
		start := time.Now()
		out, err := distribute.Copy(ctx, clients, &distribute.CopyInput{
			SourceImageID: aws.ToString(src.ImageId), SourceRegion: "us-east-1", Targets: targets,
			Tags: map[string]string{"bench": name},
		}, opts)
		wall := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("copy to %d regions under the model: %w", n, err)
		}
		ids := map[string]bool{}
		for _, r := range out.Results {
			ids[r.ImageID] = true
		}
		run := modelRun{regions: n, wall: unscale(wall, scale), calls: len(p.Calls())}
		for _, e := range model.Events() {
			if e.Kind == "image-copy" && ids[e.ID] {
				run.events = append(run.events, e)
				run.slowest = max(run.slowest, e.Modelled)
			}
		}
		if len(run.events) != n {
			return nil, fmt.Errorf("copy to %d regions: the model saw %d copies", n, len(run.events))
		}
		logf("  model: copy to %d regions: %s (slowest copy %s), %d calls", n, secs(run.wall), secs(run.slowest), run.calls)
		runs = append(runs, run)
	}
	return runs, nil
}

// unscale turns a wall-clock duration back into model time.
func unscale(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) / scale)
}

// lagStats returns the median and 95th percentile of the detection lag of
// events (model time) and the highest poll rate of any: the checks after
// the first (which is made as the wait starts) per minute of waiting.
func lagStats(events []awstest.Event, scale float64) (median, p95 time.Duration, pollsPerMin float64, missed int) {
	var lags []time.Duration
	for _, e := range events {
		if e.Noticed.IsZero() {
			missed++
			continue
		}
		lags = append(lags, unscale(e.Noticed.Sub(e.Done), scale))
		if waited := unscale(e.Noticed.Sub(e.Start), scale); waited > 0 {
			pollsPerMin = max(pollsPerMin, float64(e.Polls-1)/waited.Minutes())
		}
	}
	if len(lags) == 0 {
		return 0, 0, 0, missed
	}
	slices.Sort(lags)
	return lags[len(lags)/2], lags[min(len(lags)-1, (len(lags)*95+99)/100-1)], pollsPerMin, missed
}

// modelBench adds the rows of the distribution under the time model.
func modelBench(ctx context.Context, c *config, t *table) error {
	c.logf("starting moto with the time model (scale 1/%.0f) for the model rows", 1/c.modelScale)
	runs, err := runModel(ctx, c.modelNs, c.modelScale, 1, c.logf)
	if err != nil {
		return err
	}
	for _, r := range modelRows(runs, c.modelScale) {
		t.add(r)
	}
	return nil
}

// modelRows turns runs into rows: one per region count (wall against the
// slowest copy), then the detection lag and the polls over every copy.
func modelRows(runs []modelRun, scale float64) []row {
	var rows []row
	var all []awstest.Event
	for _, r := range runs {
		ratio := r.wall.Seconds() / r.slowest.Seconds()
		rows = append(rows, row{
			measure:   fmt.Sprintf("copy AMI to %d region(s) under the time model (model time)", r.regions),
			ours:      fmt.Sprintf("%s, %d calls", secs(r.wall), r.calls),
			reference: "slowest copy " + secs(r.slowest),
			ratio:     times(ratio),
			target:    fmt.Sprintf("≤ %.1f× the slowest copy", modelMaxCopyRatio),
			verdict:   check(ratio <= modelMaxCopyRatio),
		})
		all = append(all, r.events...)
	}
	median, p95, ppm, missed := lagStats(all, scale)
	rows = append(rows, row{
		measure:   fmt.Sprintf("detection lag of %d copies under the time model", len(all)),
		ours:      fmt.Sprintf("median %s, p95 %s", secs(median), secs(p95)),
		reference: "the modelled transition",
		ratio:     "-",
		target:    fmt.Sprintf("median ≤ %s, p95 ≤ %s", secs(modelMedianLag), secs(modelP95Lag)),
		verdict:   check(missed == 0 && median <= modelMedianLag && p95 <= modelP95Lag),
	}, row{
		measure:   "DescribeImages per minute of waiting, per copy",
		ours:      fmt.Sprintf("at most %.1f", ppm),
		reference: "-",
		ratio:     "-",
		target:    fmt.Sprintf("≤ %.0f", modelMaxPollsPerMin),
		verdict:   check(ppm <= modelMaxPollsPerMin),
	})
	return rows
}
