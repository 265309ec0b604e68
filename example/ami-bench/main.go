//go:build unix

// Command ami-bench measures the bundle pipeline, bundle upload, AMI
// distribution and `packer build` of the local examples (section e2e)
// against references run side by side on the same machine,
// and prints one table: measure, ours, reference, ratio, target, pass/fail.
// It is what `make bench` runs; docs/performance.md explains the rows.
//
//	go run ./example/ami-bench [-reps 2] [-size 1536] [-big 6144] [-src /usr/share] [-only bundle,unbundle,rss,upload,distribute,model,e2e]
//
// The images are made in a temporary directory (truncate + mkfs.ext4 -d
// SRC) and removed afterwards. Speeds are always compared with a reference
// measured in the same run, each best of -reps runs, so that a busy machine
// slows both sides alike. Nothing here is a test: a target missed is
// reported as FAIL in the table, and the exit status is 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type config struct {
	reps      int
	sizeMiB   int64
	bigMiB    int64
	src       string
	cli       string
	packer    string
	keep      bool
	only      map[string]bool
	latency   time.Duration
	work      string
	logf      func(format string, args ...any)
	regionsNs []int
	// modelScale and modelNs configure the rows under the time model.
	modelScale float64
	modelNs    []int
}

func (c *config) want(section string) bool { return len(c.only) == 0 || c.only[section] }

func main() {
	var c config
	var only, regions string
	flag.IntVar(&c.reps, "reps", 2, "runs of each measurement; the best is kept")
	flag.Int64Var(&c.sizeMiB, "size", 1536, "size of the image in MiB")
	flag.Int64Var(&c.bigMiB, "big", 6144, "size of the large image for the memory comparison, in MiB")
	flag.StringVar(&c.src, "src", "/usr/share", "directory copied into the images (mkfs.ext4 -d)")
	flag.StringVar(&c.cli, "cli", "", "ami-bundle binary to measure (default: build ./sdk/cmd/ami-bundle)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory")
	flag.StringVar(&only, "only", "", "comma-separated sections to run: bundle, rss, unbundle, upload, distribute, model, e2e (default all)")
	flag.StringVar(&c.packer, "packer", "bin/packer", "packer binary for the e2e section")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "latency the proxy adds to every EC2 call of the distribution rows and every AWS call of the e2e rows")
	flag.StringVar(&regions, "regions", "1,4,8", "region counts for the distribution rows")
	var modelRegionsFlag string
	var modelSpeed float64
	flag.StringVar(&modelRegionsFlag, "model-regions", "1,4,8,16", "region counts for the rows under the time model")
	flag.Float64Var(&modelSpeed, "model-speed", 20, "the time model runs this many times faster than AWS (a 10-minute copy takes 30 s at 20); the emulator's own latency counts this many times over")
	flag.Parse()
	c.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.only[s] = true
		}
	}
	for _, s := range strings.Split(regions, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "ami-bench: -regions: bad count %q\n", s)
			os.Exit(2)
		}
		c.regionsNs = append(c.regionsNs, n)
	}
	for _, s := range strings.Split(modelRegionsFlag, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 || n > len(modelRegions) {
			fmt.Fprintf(os.Stderr, "ami-bench: -model-regions: bad count %q (1 to %d)\n", s, len(modelRegions))
			os.Exit(2)
		}
		c.modelNs = append(c.modelNs, n)
	}
	if modelSpeed < 1 {
		fmt.Fprintf(os.Stderr, "ami-bench: -model-speed: %g is below 1\n", modelSpeed)
		os.Exit(2)
	}
	c.modelScale = 1 / modelSpeed
	c.logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "ami-bench: "+format+"\n", args...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	t, err := run(ctx, &c)
	stop()
	if t != nil {
		fmt.Println()
		t.print(os.Stdout, c.note())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ami-bench:", err)
		os.Exit(1)
	}
	if t.failed() {
		os.Exit(1)
	}
}

func (c *config) note() string {
	host, _ := os.Hostname()
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%s, %d CPUs, %s/%s, %s%s; best of %d runs each; %s",
		host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load, c.reps, time.Now().UTC().Format(time.RFC3339))
}

func run(ctx context.Context, c *config) (*table, error) {
	work, err := os.MkdirTemp("", "ami-bench")
	if err != nil {
		return nil, err
	}
	c.work = work
	if c.keep {
		c.logf("keeping %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	t := &table{}
	type waited struct {
		r   row
		err error
	}
	var waitDone chan waited
	if c.want("distribute") {
		waitDone = make(chan waited, 1)
		go func() {
			r, err := waitBench(ctx, c)
			waitDone <- waited{r, err}
		}()
	}
	if c.want("bundle") || c.want("rss") || c.want("unbundle") || c.want("upload") {
		b, err := newBundleBench(ctx, c)
		if err != nil {
			return t, err
		}
		if err := b.run(ctx, t); err != nil {
			return t, err
		}
	}
	if c.want("distribute") {
		if err := distributeBench(ctx, c, t); err != nil {
			return t, err
		}
		w := <-waitDone
		if w.err != nil {
			return t, w.err
		}
		t.add(w.r)
	}
	if c.want("model") {
		if err := modelBench(ctx, c, t); err != nil {
			return t, err
		}
	}
	if c.want("e2e") {
		if err := e2eBench(ctx, c, t); err != nil {
			return t, err
		}
	}
	return t, nil
}

// sh runs a shell script and returns its wall time.
func sh(ctx context.Context, dir, script string, args ...string) (time.Duration, error) {
	cmd := execCommand(ctx, "bash", append([]string{"-euo", "pipefail", "-c", script, "bash"}, args...)...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s: %w\n%s", firstLine(script), err, out)
	}
	return d, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
