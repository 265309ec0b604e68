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

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/example/internal/benchreport"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// benchreport.Report is the JSON written by -bench-json.
// components maps app ids to component names, in the order they run.
var components = []struct{ appID, name string }{
	{amiconfig.AppIDEBS, "ami-ebs"},
	{amiconfig.AppIDInstance, "ami-instance"},
	{amiconfig.AppIDDistribute, "ami-distribute"},
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
	b := &bench{s: s, o: o, w: w}
	if o.modelSpeed > 0 {
		if b.ms, err = startModel(s, o.modelSpeed, o.latency, w); err != nil {
			return err
		}
	}

	report := benchreport.Report{LatencyMS: float64(o.latency) / float64(time.Millisecond), Reps: o.reps}
	for _, t := range s.templates {
		bt, err := b.template(ctx, t)
		if err != nil {
			return err
		}
		report.Templates = append(report.Templates, bt)
	}

	step(w, s.leakCheckTitle())
	_, _, kept, err := s.kept(ctx, b.products, o.bucket)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "    only the products remain: %s\n", kept)
	return writeReport(o.benchJSON, report)
}

// bench is one bench mode run on its stage: it numbers the packer builds,
// each with an output directory of its own, and collects the AMIs they
// and the minimum call sequences keep, for the leak check.
type bench struct {
	s        *stage
	o        options
	w        io.Writer
	ms       *modelStage // nil without -model-speed
	runs     int
	products []product
}

// template measures one template: the best of o.reps runs each of our
// build, the null build and the minimum calls, and one build under the
// time model when there is one. It prints the comparison and returns the
// template's entry of the report.
func (b *bench) template(ctx context.Context, t template) (benchreport.Template, error) {
	name := filepath.Base(t.path)
	minCalls, ok := minimums[name]
	if !ok {
		return benchreport.Template{}, fmt.Errorf("no minimum call sequence for %s", name)
	}
	nullTpl, err := nullTemplate(t.path)
	if err != nil {
		return benchreport.Template{}, err
	}
	var ours, null, least measured
	var bm *benchreport.Model
	for rep := range b.o.reps {
		vars, err := b.nextVars(t)
		if err != nil {
			return benchreport.Template{}, err
		}
		oursCalls, err := b.buildOurs(ctx, t, rep, vars, &ours)
		if err != nil {
			return benchreport.Template{}, err
		}
		if err := b.buildNull(ctx, name, nullTpl, rep, vars, &null); err != nil {
			return benchreport.Template{}, err
		}
		if err := b.minimum(ctx, name, minCalls, rep, oursCalls, &least); err != nil {
			return benchreport.Template{}, err
		}
		if b.ms == nil || rep > 0 {
			// One build under the model: its waits are drawn and far
			// longer than the variation between runs.
			continue
		}
		if bm, err = b.modelled(ctx, t); err != nil {
			return benchreport.Template{}, err
		}
	}
	if n := null.calls.all(); n != 0 {
		return benchreport.Template{}, fmt.Errorf("the null build of %s made %d AWS calls, want none", name, n)
	}
	return b.summary(name, ours, null, least, bm), nil
}

// nextVars numbers a new build and returns t's -var arguments for it,
// with an output directory of its own.
func (b *bench) nextVars(t template) ([]string, error) {
	b.runs++
	out, err := b.s.outDir(b.runs)
	if err != nil {
		return nil, err
	}
	return templateVars(t, b.o, b.s.sshd, out), nil
}

// buildArgs are packer's arguments to build the template at path.
func buildArgs(vars []string, path string) []string {
	return append(append([]string{"build"}, vars...), path)
}

// runStep heads one of the measurements of repetition rep.
func (b *bench) runStep(rep int, what string) {
	step(b.w, fmt.Sprintf("run %d of %d: %s", rep+1, b.o.reps, what))
}

// keep keeps a measurement's time and calls in m when it is the best so
// far, and prints them.
func (b *bench) keep(m *measured, d time.Duration, calls []awstest.Call) {
	m.keep(d, calls)
	fmt.Fprintf(b.w, "    %s, %d calls\n", secs(d), len(b.s.proxy.Calls()))
}

// buildOurs runs `packer build` of t through the recording proxy, keeps
// its time and calls in ours and the AMIs it made for the leak check, and
// returns its calls.
func (b *bench) buildOurs(ctx context.Context, t template, rep int, vars []string, ours *measured) ([]awstest.Call, error) {
	name := filepath.Base(t.path)
	b.runStep(rep, "packer build "+name)
	b.s.proxy.Reset()
	res, err := b.s.packer.Run(ctx, packertest.RunOptions{Args: buildArgs(vars, t.path), Timeout: b.o.timeout})
	if err := buildFailed(ctx, name, res, err); err != nil {
		return nil, err
	}
	made := artifacts(res.Stdout)
	if len(made) == 0 {
		return nil, fmt.Errorf("packer build %s reported no AMI", name)
	}
	b.products = append(b.products, made...)
	calls := b.s.proxy.Calls()
	if b.o.listCalls {
		for _, c := range calls {
			fmt.Fprintf(b.w, "      %-14s %s\n", componentOf(c), c)
		}
	}
	b.keep(ours, res.Duration, calls)
	return calls, nil
}

// buildNull runs `packer build` of nullTpl, the null builder with the
// provisioners of the template called name, and keeps its time and calls
// in null.
func (b *bench) buildNull(ctx context.Context, name, nullTpl string, rep int, vars []string, null *measured) error {
	b.runStep(rep, "packer build of the null builder with the provisioners of "+name)
	b.s.proxy.Reset()
	res, err := b.s.packer.Run(ctx, packertest.RunOptions{
		Args:         append([]string{"build"}, vars...),
		Template:     nullTpl,
		TemplateName: "null-" + name,
		Timeout:      b.o.timeout,
	})
	if err := buildFailed(ctx, "null-"+name, res, err); err != nil {
		return err
	}
	b.keep(null, res.Duration, b.s.proxy.Calls())
	return nil
}

// minimum makes the minimum calls of the template called name through the
// recording proxy, given the calls of our build of the same run, and keeps
// their time and calls in least and the AMIs they made for the leak check.
func (b *bench) minimum(ctx context.Context, name string, minCalls func(context.Context, *minEnv) ([]product, error), rep int, oursCalls []awstest.Call, least *measured) error {
	b.runStep(rep, "the minimum calls of "+name)
	b.s.proxy.Reset()
	env := &minEnv{endpoint: b.s.proxy.URL, region: b.o.region, bucket: b.o.bucket, run: b.runs, ours: oursCalls}
	start := time.Now()
	made, err := minCalls(ctx, env)
	d := time.Since(start)
	if err != nil {
		return fmt.Errorf("minimum calls of %s: %w", name, err)
	}
	b.products = append(b.products, made...)
	b.keep(least, d, b.s.proxy.Calls())
	return nil
}

// modelled builds t once under the time model and once at the model's
// latency without it, keeps the AMIs both made for the leak check, prints
// the waits of the build and returns the template's model entry.
func (b *bench) modelled(ctx context.Context, t template) (*benchreport.Model, error) {
	name := filepath.Base(t.path)
	vars, err := b.nextVars(t)
	if err != nil {
		return nil, err
	}
	b.runStep(0, fmt.Sprintf("packer build %s under the time model", name))
	wall, events, res, err := b.ms.build(ctx, b.s.packer, buildArgs(vars, t.path), b.o.timeout)
	if err := buildFailed(ctx, name+" (model)", res, err); err != nil {
		return nil, err
	}
	b.products = append(b.products, artifacts(res.Stdout)...)
	if vars, err = b.nextVars(t); err != nil {
		return nil, err
	}
	step(b.w, fmt.Sprintf("packer build %s without the model, at the model's latency", name))
	noWait, res, err := b.ms.buildWithoutWaits(ctx, b.s.packer, buildArgs(vars, t.path), b.o.timeout)
	if err := buildFailed(ctx, name+" (without waits)", res, err); err != nil {
		return nil, err
	}
	b.products = append(b.products, artifacts(res.Stdout)...)
	fmt.Fprintf(b.w, "    %s\n", secs(noWait))
	return b.ms.summary(b.w, wall, noWait, events), nil
}

// summary prints how the template called name compares with its floor,
// per component with the calls beyond the minimum, and returns its entry
// of the report.
func (b *bench) summary(name string, ours, null, least measured, bm *benchreport.Model) benchreport.Template {
	bt := benchreport.Template{
		Template:         name,
		WallSeconds:      ours.wall.Seconds(),
		NullBuildSeconds: null.wall.Seconds(),
		MinimumSeconds:   least.wall.Seconds(),
		Unattributed:     ours.calls.total(unattributed),
		Model:            bm,
	}
	step(b.w, fmt.Sprintf("%s: %s (floor %s = null build %s + minimum calls %s)", name,
		secs(ours.wall), secs(null.wall+least.wall), secs(null.wall), secs(least.wall)))
	for _, comp := range components {
		n, m := ours.calls.total(comp.name), least.calls.total(comp.name)
		if n == 0 && m == 0 {
			continue
		}
		bt.Components = append(bt.Components, benchreport.Component{Component: comp.name, Calls: n, MinimumCalls: m})
		fmt.Fprintf(b.w, "    %s: %d calls, minimum %d; beyond the minimum: %s\n", comp.name, n, m,
			extra(ours.calls[comp.name], least.calls[comp.name]))
	}
	if bt.Unattributed > 0 {
		fmt.Fprintf(b.w, "    calls with no app id: %d (%s)\n", bt.Unattributed, extra(ours.calls[unattributed], nil))
	}
	return bt
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
