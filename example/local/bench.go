//go:build unix

package main

// Bench mode (-bench-json FILE): the end-to-end rows of `make bench`.
//
// Every AWS call of the run goes through a recording proxy in front of
// moto that adds -latency to each call. For each chosen local example the
// runner measures, best of -reps runs each:
//
//   - ours: `packer build` of the template, its wall time and its calls per
//     component, told apart by the app id in the User-Agent
//     (app/packer-plugin-ami.ebs, .instance, .distribute);
//   - the minimum calls: the calls a build with exactly the template's
//     settings must make, made as plain aws-sdk-go-v2 calls through the
//     same proxy (minimum.go), counted by the proxy and timed;
//   - the null build: `packer build` of a template with Packer's null
//     builder, the template's SSH settings and its provisioner blocks
//     (nullbuild.go): everything of the build that is not AWS.
//
// The floor of a build's wall time is the null build plus the minimum
// calls. The calls beyond the minimum are listed per action on w, so that
// each one can be explained or removed.
//
// The JSON written to FILE ("-" for standard output) is a
// benchreport.Report, the contract with example/ami-bench, which turns it
// into table rows:
//
//	{
//	  "latency_ms": 50,             // added to every AWS call
//	  "reps": 2,                    // runs of each measurement, best kept
//	  "templates": [{
//	    "template": "distribute.pkr.hcl",
//	    "wall_seconds": 4.1,        // best packer build
//	    "null_build_seconds": 2.2,  // best null build
//	    "minimum_seconds": 1.3,     // best minimum call sequence
//	    "unattributed_calls": 0,    // calls of the build with no app id
//	    "components": [             // in the order they run
//	      {"component": "ami-ebs", "calls": 19, "minimum_calls": 12},
//	      {"component": "ami-distribute", "calls": 17, "minimum_calls": 14}
//	    ]
//	  }]
//	}
//
// Calls are those of the fastest run of each kind.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/example/internal/benchreport"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// benchreport.Report is the JSON written by -bench-json.
// components maps app ids to component names, in the order they run.
var components = []struct{ appID, name string }{
	{amibuild.AppIDEBS, "ami-ebs"},
	{amibuild.AppIDInstance, "ami-instance"},
	{amibuild.AppIDDistribute, "ami-distribute"},
}

// unattributed names the calls that carry no known app id.
const unattributed = "(no app id)"

var appIDRE = regexp.MustCompile(`(?:^| )app/(\S+)`)

// componentOf names the component that made c, by its User-Agent.
func componentOf(c awstest.Call) string {
	m := appIDRE.FindStringSubmatch(c.Header.Get("User-Agent"))
	if m == nil {
		return unattributed
	}
	for _, comp := range components {
		if comp.appID == m[1] {
			return comp.name
		}
	}
	return unattributed
}

// tally counts calls per component and, within it, per action.
type tally map[string]map[string]int

func count(calls []awstest.Call) tally {
	t := tally{}
	for _, c := range calls {
		comp := componentOf(c)
		if t[comp] == nil {
			t[comp] = map[string]int{}
		}
		t[comp][c.Service+":"+c.Action]++
	}
	return t
}

func (t tally) total(comp string) int {
	n := 0
	for _, v := range t[comp] {
		n += v
	}
	return n
}

// extra describes the calls of ours beyond min, per action: "+2
// ec2:DescribeImages, -1 ec2:CreateTags" (a minus for calls the minimum
// makes and ours does not).
func extra(ours, min map[string]int) string {
	var actions []string
	for a := range ours {
		actions = append(actions, a)
	}
	for a := range min {
		if _, ok := ours[a]; !ok {
			actions = append(actions, a)
		}
	}
	slices.Sort(actions)
	var parts []string
	for _, a := range actions {
		if d := ours[a] - min[a]; d != 0 {
			parts = append(parts, fmt.Sprintf("%+d %s", d, a))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// measured is the best run of one kind.
type measured struct {
	wall  time.Duration
	calls tally
}

func (m *measured) keep(d time.Duration, calls []awstest.Call) {
	if m.calls == nil || d < m.wall {
		m.wall, m.calls = d, count(calls)
	}
}

// runBench is run in bench mode: it measures the chosen local examples and
// writes the report to o.benchJSON.
func runBench(ctx context.Context, o options, w io.Writer) (err error) {
	if len(o.templates) > 0 {
		return errors.New("-bench-json measures the local examples; -template is not supported with it")
	}
	if o.reps < 1 {
		return fmt.Errorf("-reps %d: want at least 1", o.reps)
	}
	s, err := setUp(ctx, &o, w, true)
	if err != nil {
		return err
	}
	defer s.close()
	templates, sshd, pk, proxy := s.templates, s.sshd, s.packer, s.proxy
	var ms *modelStage
	if o.modelSpeed > 0 {
		if ms, err = startModel(s, o.modelSpeed, o.latency, w); err != nil {
			return err
		}
	}

	report := benchreport.Report{LatencyMS: float64(o.latency) / float64(time.Millisecond), Reps: o.reps}
	var products []product
	runs := 0
	for _, t := range templates {
		name := filepath.Base(t.path)
		min, ok := minimums[name]
		if !ok {
			return fmt.Errorf("no minimum call sequence for %s", name)
		}
		nullTpl, err := nullTemplate(t.path)
		if err != nil {
			return err
		}
		var ours, null, least measured
		var bm *benchreport.Model
		for rep := range o.reps {
			runs++
			out, err := s.outDir(runs)
			if err != nil {
				return err
			}
			vars := templateVars(t, o, sshd, out)

			step(w, fmt.Sprintf("run %d of %d: packer build %s", rep+1, o.reps, name))
			proxy.Reset()
			res, err := pk.Run(ctx, packertest.RunOptions{Args: append(append([]string{"build"}, vars...), t.path), Timeout: o.timeout})
			if err := buildFailed(ctx, name, res, err); err != nil {
				return err
			}
			made := artifacts(res.Stdout)
			if len(made) == 0 {
				return fmt.Errorf("packer build %s reported no AMI", name)
			}
			products = append(products, made...)
			oursCalls := proxy.Calls()
			if o.listCalls {
				for _, c := range oursCalls {
					fmt.Fprintf(w, "      %-14s %s\n", componentOf(c), c)
				}
			}
			ours.keep(res.Duration, oursCalls)
			fmt.Fprintf(w, "    %s, %d calls\n", secs(res.Duration), len(proxy.Calls()))

			step(w, fmt.Sprintf("run %d of %d: packer build of the null builder with the provisioners of %s", rep+1, o.reps, name))
			proxy.Reset()
			res, err = pk.Run(ctx, packertest.RunOptions{
				Args:         append([]string{"build"}, vars...),
				Template:     nullTpl,
				TemplateName: "null-" + name,
				Timeout:      o.timeout,
			})
			if err := buildFailed(ctx, "null-"+name, res, err); err != nil {
				return err
			}
			null.keep(res.Duration, proxy.Calls())
			fmt.Fprintf(w, "    %s, %d calls\n", secs(res.Duration), len(proxy.Calls()))

			step(w, fmt.Sprintf("run %d of %d: the minimum calls of %s", rep+1, o.reps, name))
			proxy.Reset()
			env := &minEnv{endpoint: proxy.URL, region: o.region, bucket: o.bucket, run: runs, ours: oursCalls}
			start := time.Now()
			made, err = min(ctx, env)
			d := time.Since(start)
			if err != nil {
				return fmt.Errorf("minimum calls of %s: %w", name, err)
			}
			products = append(products, made...)
			least.keep(d, proxy.Calls())
			fmt.Fprintf(w, "    %s, %d calls\n", secs(d), len(proxy.Calls()))

			if ms == nil || rep > 0 {
				// One build under the model: its waits are drawn and far
				// longer than the variation between runs.
				continue
			}
			runs++
			out, err = s.outDir(runs)
			if err != nil {
				return err
			}
			step(w, fmt.Sprintf("run %d of %d: packer build %s under the time model", rep+1, o.reps, name))
			wall, events, res, err := ms.build(ctx, pk, append(append([]string{"build"}, templateVars(t, o, sshd, out)...), t.path), o.timeout)
			if err := buildFailed(ctx, name+" (model)", res, err); err != nil {
				return err
			}
			products = append(products, artifacts(res.Stdout)...)
			runs++
			if out, err = s.outDir(runs); err != nil {
				return err
			}
			step(w, fmt.Sprintf("packer build %s without the model, at the model's latency", name))
			noWait, res, err := ms.buildWithoutWaits(ctx, pk, append(append([]string{"build"}, templateVars(t, o, sshd, out)...), t.path), o.timeout)
			if err := buildFailed(ctx, name+" (without waits)", res, err); err != nil {
				return err
			}
			products = append(products, artifacts(res.Stdout)...)
			fmt.Fprintf(w, "    %s\n", secs(noWait))
			ideal, lags := idealAndLags(events, ms.speed)
			fmt.Fprintf(w, "    %s; ideal AWS time %s of model time over %d waits, lag median %s, p95 %s\n",
				secs(wall), secs(ideal), len(lags), secs(percentile(lags, 50)), secs(percentile(lags, 95)))
			for _, e := range events {
				if waitedFor(e) {
					fmt.Fprintf(w, "      %-18s %-14s %s after %s, noticed %s later (model time), %d checks\n", e.Kind, e.Region, e.ID,
						secs(e.Modelled), secs(time.Duration(float64(e.Noticed.Sub(e.Done))*ms.speed)), e.Polls)
				}
			}
			bm = &benchreport.Model{Speed: ms.speed, WallSeconds: wall.Seconds(), IdealAWSSeconds: ideal.Seconds(), Waits: len(lags),
				MedianLagSeconds: percentile(lags, 50).Seconds(), P95LagSeconds: percentile(lags, 95).Seconds(),
				NoWaitSeconds: noWait.Seconds()}
		}
		if n := null.calls.all(); n != 0 {
			return fmt.Errorf("the null build of %s made %d AWS calls, want none", name, n)
		}

		bt := benchreport.Template{
			Template:         name,
			WallSeconds:      ours.wall.Seconds(),
			NullBuildSeconds: null.wall.Seconds(),
			MinimumSeconds:   least.wall.Seconds(),
			Unattributed:     ours.calls.total(unattributed),
			Model:            bm,
		}
		step(w, fmt.Sprintf("%s: %s (floor %s = null build %s + minimum calls %s)", name,
			secs(ours.wall), secs(null.wall+least.wall), secs(null.wall), secs(least.wall)))
		for _, comp := range components {
			n, m := ours.calls.total(comp.name), least.calls.total(comp.name)
			if n == 0 && m == 0 {
				continue
			}
			bt.Components = append(bt.Components, benchreport.Component{Component: comp.name, Calls: n, MinimumCalls: m})
			fmt.Fprintf(w, "    %s: %d calls, minimum %d; beyond the minimum: %s\n", comp.name, n, m,
				extra(ours.calls[comp.name], least.calls[comp.name]))
		}
		if bt.Unattributed > 0 {
			fmt.Fprintf(w, "    calls with no app id: %d (%s)\n", bt.Unattributed, extra(ours.calls[unattributed], nil))
		}
		report.Templates = append(report.Templates, bt)
	}

	step(w, s.leakCheckTitle())
	_, _, kept, err := s.kept(ctx, products, o.bucket)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "    only the products remain: %s\n", kept)
	return writeReport(o.benchJSON, report)
}

func (t tally) all() int {
	n := 0
	for comp := range t {
		n += t.total(comp)
	}
	return n
}

// buildFailed turns a failed packer run into an error.
func buildFailed(ctx context.Context, name string, res *packertest.Result, err error) error {
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case res.ExitCode != 0:
		return fmt.Errorf("packer build %s exited %d:\n%s", name, res.ExitCode, res.Output())
	}
	return nil
}

func writeReport(path string, r benchreport.Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// secs formats a duration in seconds, as ami-bench does.
func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", d.Seconds()*1000)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
