//go:build unix

package main

// Bench mode with -model-speed N: after its other measurements, each local
// example is built once more through a second proxy with
// awstest's time model (instances, AMIs and copies take realistic time,
// scaled down N times), with PACKER_PLUGIN_AMI_TEST_TIME_SCALE = 1/N so
// that the plugin's polling delays scale alike. The model's events give the
// ideal schedule: the modelled AWS durations on the critical path, what a
// client that noticed every change at once would wait. The report gains,
// per template:
//
//	"model": {
//	  "speed": 20,                 // the model runs this many times faster than AWS
//	  "wall_seconds": 23.4,        // the packer build under the model (wall)
//	  "ideal_aws_seconds": 410,    // modelled AWS time on the critical path (model time)
//	  "waits": 5,                  // transitions the build waited for
//	  "median_lag_seconds": 4.8,   // detection lag over those waits (model time)
//	  "p95_lag_seconds": 9.6,
//	  "no_wait_seconds": 1.9      // the same build without the model (wall)
//	}
//
// AWS's own latency per call is part of what the model scales: its proxy
// adds -latency ÷ N to every call, so that a call counts -latency in model
// time, as on AWS. The same build is also run through a proxy with that
// latency and no model (no_wait_seconds: nothing waits there).
// example/ami-bench adds that build's wall time (in model time) to the
// ideal and judges wall ≤ 1.05 × ideal + 5 s of model time: what the build
// adds to the waits.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/example/internal/benchreport"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// modelStage is the proxy with the time model the model builds use, and
// one with the same latency and no model for the same builds without
// waits.
type modelStage struct {
	model       *awstest.TimeModel
	proxy, flat *awstest.Proxy
	speed       float64
}

func startModel(s *stage, speed float64, latency time.Duration, w io.Writer) (*modelStage, error) {
	m := &awstest.TimeModel{Scale: 1 / speed, Seed: 1}
	scaled := time.Duration(float64(latency) / speed)
	fault := func(*http.Request, awstest.Call) *awstest.Fault { return awstest.LatencyFault(scaled) }
	p, err := awstest.StartProxy(s.moto.Endpoint, awstest.ProxyOptions{Model: m, Fault: fault})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { p.Close() })
	flat, err := awstest.StartProxy(s.moto.Endpoint, awstest.ProxyOptions{Fault: fault})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { flat.Close() })
	fmt.Fprintf(w, "    time model at %g× AWS's speed, %s per call (%s of model time): %s; without the model: %s\n", speed, scaled, latency, p.URL, flat.URL)
	return &modelStage{model: m, proxy: p, flat: flat, speed: speed}, nil
}

// buildWithoutWaits runs the same build through the proxy without the
// model and returns its wall time.
func (ms *modelStage) buildWithoutWaits(ctx context.Context, pk *packertest.Packer, args []string, timeout time.Duration) (time.Duration, *packertest.Result, error) {
	res, err := pk.Run(ctx, packertest.RunOptions{Args: args, Timeout: timeout, Env: []string{"AWS_ENDPOINT_URL=" + ms.flat.URL}})
	if res == nil {
		return 0, nil, err
	}
	return res.Duration, res, err
}

// build runs one packer build of the template under the model and returns
// its wall time and the transitions it began.
func (ms *modelStage) build(ctx context.Context, pk *packertest.Packer, args []string, timeout time.Duration) (time.Duration, []awstest.Event, *packertest.Result, error) {
	start := time.Now()
	res, err := pk.Run(ctx, packertest.RunOptions{
		Args: args, Timeout: timeout,
		Env: []string{
			"AWS_ENDPOINT_URL=" + ms.proxy.URL,
			"PACKER_PLUGIN_AMI_TEST_TIME_SCALE=" + strconv.FormatFloat(1/ms.speed, 'g', -1, 64),
		},
	})
	var events []awstest.Event
	for _, e := range ms.model.Events() {
		if !e.Start.Before(start) {
			events = append(events, e)
		}
	}
	if res == nil {
		return 0, nil, nil, err
	}
	return res.Duration, events, res, err
}

// summary prints the waits of a build under the model, which took wall
// and made events, next to the ideal schedule, and returns the template's
// model entry of the report; noWait is the same build without the model.
func (ms *modelStage) summary(w io.Writer, wall, noWait time.Duration, events []awstest.Event) *benchreport.Model {
	ideal, lags := idealAndLags(events, ms.speed)
	fmt.Fprintf(w, "    %s; ideal AWS time %s of model time over %d waits, lag median %s, p95 %s\n",
		secs(wall), secs(ideal), len(lags), secs(percentile(lags, 50)), secs(percentile(lags, 95)))
	for _, e := range events {
		if waitedFor(e) {
			fmt.Fprintf(w, "      %-18s %-14s %s after %s, noticed %s later (model time), %d checks\n", e.Kind, e.Region, e.ID,
				secs(e.Modelled), secs(time.Duration(float64(e.Noticed.Sub(e.Done))*ms.speed)), e.Polls)
		}
	}
	return &benchreport.Model{Speed: ms.speed, WallSeconds: wall.Seconds(), IdealAWSSeconds: ideal.Seconds(), Waits: len(lags),
		MedianLagSeconds: percentile(lags, 50).Seconds(), P95LagSeconds: percentile(lags, 95).Seconds(),
		NoWaitSeconds: noWait.Seconds()}
}

// idealAndLags returns the modelled AWS time on the critical path of the
// events a build waited for (model time) and their detection lags.
// Transitions that overlap in time (the copies of one distribution) form
// one step, as long as its longest member.
func idealAndLags(events []awstest.Event, speed float64) (ideal time.Duration, lags []time.Duration) {
	var waited []awstest.Event
	for _, e := range events {
		if waitedFor(e) {
			waited = append(waited, e)
			lags = append(lags, time.Duration(float64(e.Noticed.Sub(e.Done))*speed))
		}
	}
	slices.SortFunc(waited, func(a, b awstest.Event) int { return a.Start.Compare(b.Start) })
	var stepStart, stepEnd time.Time
	flush := func() {
		if !stepStart.IsZero() {
			ideal += time.Duration(float64(stepEnd.Sub(stepStart)) * speed)
		}
	}
	for _, e := range waited {
		if stepStart.IsZero() || e.Start.After(stepEnd) {
			flush()
			stepStart, stepEnd = e.Start, e.Done
			continue
		}
		if e.Done.After(stepEnd) {
			stepEnd = e.Done
		}
	}
	flush()
	slices.Sort(lags)
	return ideal, lags
}

// waitedFor reports whether the build waited for e: it asked about the
// resource and saw the change.
func waitedFor(e awstest.Event) bool { return e.Polls > 0 && !e.Noticed.IsZero() }

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, (len(sorted)*p+99)/100-1)]
}
