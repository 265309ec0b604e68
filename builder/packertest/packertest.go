//go:build unix

package packertest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PluginSource is the source address the plugin is installed under; templates
// name its components "ami-<name>".
const PluginSource = "github.com/amiforge/ami"

// ModulePath is this project's Go module path.
const ModulePath = "github.com/amiforge/packer-plugin-ami"

// DefaultTimeout bounds a packer run when [RunOptions.Timeout] is zero.
const DefaultTimeout = 5 * time.Minute

// ModuleRoot returns the absolute directory of this project's go.mod, found by
// walking up from the working directory (a test's working directory is its
// package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePathOf(b) == ModulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find module root: no go.mod for %s above the working directory", ModulePath)
		}
		dir = parent
	}
}

func modulePathOf(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// PackerPath returns the absolute path of the pinned packer binary,
// <module root>/bin/packer. It fails with a hint when the binary is missing.
func PackerPath() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "packer")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("packer binary %s is missing (run make bin/packer): %w", p, err)
	}
	return p, nil
}

var (
	pluginOnce sync.Once
	pluginPath string
	pluginErr  error
)

// BuildPlugin compiles the plugin from the module root once per process and
// returns the binary's path, <module root>/bin/test/packer-plugin-ami-<hash
// of the binary>. The binary is written under a temporary name and renamed
// into place, so test binaries running at the same time never see a partial
// file, and trees sharing bin/ never replace each other's binary.
func BuildPlugin() (string, error) {
	pluginOnce.Do(func() {
		pluginPath, pluginErr = buildPlugin()
	})
	return pluginPath, pluginErr
}

func buildPlugin() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "bin", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build plugin: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".packer-plugin-ami-*")
	if err != nil {
		return "", fmt.Errorf("build plugin: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-o", tmp.Name(), ".")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build plugin (go build in %s): %w\n%s", root, err, out.Bytes())
	}
	// Named by content: test processes of one tree share the binary, and a
	// concurrent run of another tree (another worktree sharing bin/) never
	// replaces it under them.
	sum, err := fileSHA256(tmp.Name())
	if err != nil {
		return "", fmt.Errorf("build plugin: %w", err)
	}
	final := filepath.Join(dir, "packer-plugin-ami-"+sum[:16])
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("build plugin: %w", err)
	}
	return final, nil
}

// Options configures [Setup].
type Options struct {
	// Packer is the packer binary. Empty means [PackerPath].
	Packer string
	// Plugin is the plugin binary to install. Empty means [BuildPlugin].
	Plugin string
	// Env is appended to every packer invocation's environment, for
	// example awstest.Env(proxyURL, region).
	Env []string
}

// Packer runs one packer binary with the plugin installed into private
// plugin, config and home directories under Dir.
type Packer struct {
	// Binary is the packer executable.
	Binary string
	// Dir is the working directory of every run; templates are written here.
	Dir string
	// PluginDir, ConfigDir and HomeDir are PACKER_PLUGIN_PATH,
	// PACKER_CONFIG_DIR and HOME of every run.
	PluginDir, ConfigDir, HomeDir string
	// Env is appended to the environment of every run.
	Env []string

	mu   sync.Mutex
	runs int
}

// Setup prepares dir (which must exist) for packer runs: it creates the
// plugin, config and home directories and installs the plugin with
// `packer plugins install --path`.
func Setup(ctx context.Context, dir string, opts Options) (*Packer, error) {
	bin := opts.Packer
	if bin == "" {
		var err error
		if bin, err = PackerPath(); err != nil {
			return nil, err
		}
	}
	plugin := opts.Plugin
	if plugin == "" {
		var err error
		if plugin, err = BuildPlugin(); err != nil {
			return nil, err
		}
	}
	p := &Packer{
		Binary:    bin,
		Dir:       dir,
		PluginDir: filepath.Join(dir, ".packer", "plugins"),
		ConfigDir: filepath.Join(dir, ".packer", "config"),
		HomeDir:   filepath.Join(dir, ".packer", "home"),
		Env:       opts.Env,
	}
	for _, d := range []string{p.PluginDir, p.ConfigDir, p.HomeDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("set up packer: %w", err)
		}
	}
	res, err := p.Run(ctx, RunOptions{Args: []string{"plugins", "install", "--path", plugin, PluginSource}, Timeout: 2 * time.Minute})
	if err != nil {
		return nil, fmt.Errorf("install plugin: %w", err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("install plugin: packer exited %d:\n%s", res.ExitCode, res.Output())
	}
	return p, nil
}

// RunOptions describes one packer invocation.
type RunOptions struct {
	// Args are packer's arguments, e.g. {"build", "-force"}. When Template is
	// set, its file name is appended as the last argument.
	Args []string
	// Template, when not empty, is written to Dir/TemplateName first.
	Template string
	// TemplateName is the template's file name; empty means
	// "template.pkr.hcl".
	TemplateName string
	// Env is appended to the environment after [Packer.Env].
	Env []string
	// InterruptOn, when not empty, makes the run send SIGINT to packer (and
	// its plugins, as a terminal's Ctrl-C would) the first time a line of
	// output contains this string.
	InterruptOn string
	// Interrupt, when not nil, makes the run send SIGINT to packer (and its
	// plugins) once the channel is closed, for tests that interrupt when an
	// event outside packer's output happens, such as a request reaching the
	// proxy.
	Interrupt <-chan struct{}
	// Timeout bounds the run; zero means [DefaultTimeout]. When it expires
	// packer gets SIGINT, then SIGKILL 30 seconds later.
	Timeout time.Duration
	// Stdout, when set, also receives packer's output as it happens (for
	// example os.Stdout in a demo).
	Stdout io.Writer
}

// Result is the outcome of a packer run.
type Result struct {
	// ExitCode is packer's exit status (-1 when killed by a signal).
	ExitCode int
	// Stdout and Stderr are packer's complete output streams.
	Stdout, Stderr string
	// LogPath is the PACKER_LOG file of the run (debug log of packer and
	// its plugins), kept for secret scans.
	LogPath string
	// Interrupted reports whether SIGINT was sent because InterruptOn matched.
	Interrupted bool
	// TimedOut reports whether the run hit its timeout.
	TimedOut bool
	// Duration is the wall time of the run.
	Duration time.Duration

	combined string
}

// Output returns stdout and stderr interleaved in the order lines arrived.
func (r *Result) Output() string { return r.combined }

// Log returns the content of the PACKER_LOG file.
func (r *Result) Log() (string, error) {
	b, err := os.ReadFile(r.LogPath)
	return string(b), err
}

// Run executes packer once. An error means packer could not be run at all;
// a failing packer is reported through Result.ExitCode.
func (p *Packer) Run(ctx context.Context, opts RunOptions) (*Result, error) {
	cmd, logPath, err := p.command(opts)
	if err != nil {
		return nil, err
	}
	r := watch(cmd, opts, &Result{LogPath: logPath})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", p.Binary, err)
	}
	waitErr := r.wait(ctx, cmp.Or(opts.Timeout, DefaultTimeout), opts.Interrupt)
	res := r.finish(start)
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return res, fmt.Errorf("run %s: %w", p.Binary, waitErr)
	}
	return res, nil
}

// command prepares the packer process of one run: it writes the template,
// if any, and gives packer the private directories, a numbered debug log
// and an environment without the user's AWS and packer settings. It
// returns the command and the path of the log.
func (p *Packer) command(opts RunOptions) (*exec.Cmd, string, error) {
	p.mu.Lock()
	p.runs++
	n := p.runs
	p.mu.Unlock()

	args := append([]string(nil), opts.Args...)
	if opts.Template != "" {
		name := cmp.Or(opts.TemplateName, "template.pkr.hcl")
		if err := os.WriteFile(filepath.Join(p.Dir, name), []byte(opts.Template), 0o644); err != nil {
			return nil, "", fmt.Errorf("write template: %w", err)
		}
		args = append(args, name)
	}
	logPath := filepath.Join(p.Dir, fmt.Sprintf("packer-%02d.log", n))

	cmd := exec.Command(p.Binary, args...)
	cmd.Dir = p.Dir
	cmd.Env = append(baseEnv(os.Environ()),
		"PACKER_PLUGIN_PATH="+p.PluginDir,
		"PACKER_CONFIG_DIR="+p.ConfigDir,
		"PACKER_CACHE_DIR="+filepath.Join(p.Dir, ".packer", "cache"),
		"HOME="+p.HomeDir,
		"CHECKPOINT_DISABLE=1",
		"PACKER_NO_COLOR=1",
		"PACKER_LOG=1",
		"PACKER_LOG_PATH="+logPath,
	)
	cmd.Env = append(cmd.Env, p.Env...)
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, logPath, nil
}

// run is one packer process being watched: it collects the process's
// output as it arrives and sends signals to its process group, so that
// packer's plugins get them too, as from a terminal.
type run struct {
	cmd  *exec.Cmd
	opts RunOptions
	res  *Result

	stdout, stderr *lineWriter

	mu                  sync.Mutex // guards the buffers and res
	outBuf, errBuf, all strings.Builder
	interruptOnce       sync.Once
}

// watch sets cmd up to report its output to a new run.
func watch(cmd *exec.Cmd, opts RunOptions, res *Result) *run {
	r := &run{cmd: cmd, opts: opts, res: res}
	r.stdout = &lineWriter{onLine: r.onLine(&r.outBuf)}
	r.stderr = &lineWriter{onLine: r.onLine(&r.errBuf)}
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	// Do not wait forever for output pipes held open by stray grandchildren.
	cmd.WaitDelay = 10 * time.Second
	return r
}

// onLine returns the handler of one output stream: each line goes to buf,
// to the combined output and to RunOptions.Stdout, and interrupts packer
// when it contains RunOptions.InterruptOn.
func (r *run) onLine(buf *strings.Builder) func(string) {
	return func(line string) {
		r.mu.Lock()
		buf.WriteString(line + "\n")
		r.all.WriteString(line + "\n")
		if r.opts.Stdout != nil {
			_, _ = io.WriteString(r.opts.Stdout, line+"\n")
		}
		r.mu.Unlock()
		if r.opts.InterruptOn != "" && strings.Contains(line, r.opts.InterruptOn) {
			r.interrupt()
		}
	}
}

// signal sends sig to packer's process group.
func (r *run) signal(sig syscall.Signal) { _ = syscall.Kill(-r.cmd.Process.Pid, sig) }

// interrupt sends SIGINT once, as a first Ctrl-C would, and notes it in
// the result.
func (r *run) interrupt() {
	r.interruptOnce.Do(func() {
		r.mu.Lock()
		r.res.Interrupted = true
		r.mu.Unlock()
		r.signal(syscall.SIGINT)
	})
}

// timedOut notes in the result that the run was cut short.
func (r *run) timedOut() {
	r.mu.Lock()
	r.res.TimedOut = true
	r.mu.Unlock()
}

// wait waits for the started process to exit and returns what
// exec.Cmd.Wait returned. Meanwhile it interrupts packer when interruptCh
// is closed, kills it when ctx is done, and when the timeout expires
// interrupts it and kills it 30 seconds later.
func (r *run) wait(ctx context.Context, timeout time.Duration, interruptCh <-chan struct{}) error {
	waitDone := make(chan error, 1)
	go func() { waitDone <- r.cmd.Wait() }()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	ctxDone := ctx.Done()
	var killTimer <-chan time.Time
	for {
		select {
		case err := <-waitDone:
			return err
		case <-interruptCh:
			interruptCh = nil
			r.interrupt()
		case <-ctxDone:
			ctxDone = nil
			r.timedOut()
			r.signal(syscall.SIGKILL)
		case <-timer.C:
			r.timedOut()
			r.signal(syscall.SIGINT)
			killTimer = time.After(30 * time.Second)
		case <-killTimer:
			r.signal(syscall.SIGKILL)
		}
	}
}

// finish completes the result of the exited process that started at
// start: the last unterminated lines, the output and the exit code.
func (r *run) finish(start time.Time) *Result {
	r.stdout.flush()
	r.stderr.flush()
	r.res.Duration = time.Since(start)
	r.mu.Lock()
	r.res.Stdout, r.res.Stderr, r.res.combined = r.outBuf.String(), r.errBuf.String(), r.all.String()
	r.mu.Unlock()
	r.res.ExitCode = r.cmd.ProcessState.ExitCode()
	return r.res
}

// lineWriter calls onLine for every complete line written to it. exec.Cmd
// writes to it from one goroutine per stream.
type lineWriter struct {
	onLine  func(string)
	pending []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.pending = append(w.pending, b...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			break
		}
		w.onLine(strings.TrimSuffix(string(w.pending[:i]), "\r"))
		w.pending = w.pending[i+1:]
	}
	return len(b), nil
}

// flush reports a final line without a newline. Call it after the command
// has exited.
func (w *lineWriter) flush() {
	if len(w.pending) > 0 {
		w.onLine(string(w.pending))
		w.pending = nil
	}
}

// baseEnv drops variables that could point packer at real AWS or at the
// user's own packer configuration.
func baseEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "PACKER_") || name == "HOME" || name == "CHECKPOINT_DISABLE" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// MachineReadable is one line of `packer -machine-readable` output.
type MachineReadable struct {
	Timestamp string
	Target    string
	Type      string
	Data      []string
}

// ParseMachineReadable parses `packer -machine-readable` output, undoing
// packer's comma and newline escaping. Lines that are not machine-readable
// are skipped.
func ParseMachineReadable(out string) []MachineReadable {
	var recs []MachineReadable
	for _, line := range strings.Split(out, "\n") {
		parts := strings.Split(line, ",")
		if len(parts) < 3 {
			continue
		}
		rec := MachineReadable{Timestamp: parts[0], Target: parts[1], Type: parts[2]}
		for _, d := range parts[3:] {
			d = strings.ReplaceAll(d, "%!(PACKER_COMMA)", ",")
			d = strings.ReplaceAll(d, `\n`, "\n")
			d = strings.ReplaceAll(d, `\r`, "\r")
			rec.Data = append(rec.Data, d)
		}
		recs = append(recs, rec)
	}
	return recs
}

// ArtifactIDs returns the id of every artifact in `packer build
// -machine-readable` output, keyed by build name (e.g. "ami-ebs.demo").
func ArtifactIDs(out string) map[string][]string {
	ids := map[string][]string{}
	for _, r := range ParseMachineReadable(out) {
		// <ts>,<build>,artifact,<index>,id,<id>
		if r.Type == "artifact" && len(r.Data) >= 3 && r.Data[1] == "id" {
			ids[r.Target] = append(ids[r.Target], r.Data[2])
		}
	}
	return ids
}

// HostAWSEnv returns this process's AWS_* variables, plus AWS_CONFIG_FILE
// and AWS_SHARED_CREDENTIALS_FILE pointing at the user's ~/.aws files when
// they are not set, for acceptance tests that run packer against real AWS
// (packer's HOME is a private directory). Pass it in [Options.Env].
func HostAWSEnv() []string {
	var env []string
	have := map[string]bool{}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") {
			env = append(env, kv)
			have[name] = true
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return env
	}
	for name, file := range map[string]string{"AWS_CONFIG_FILE": "config", "AWS_SHARED_CREDENTIALS_FILE": "credentials"} {
		p := filepath.Join(home, ".aws", file)
		if _, err := os.Stat(p); err == nil && !have[name] {
			env = append(env, name+"="+p)
		}
	}
	return env
}

// fileSHA256 returns the hex SHA-256 of a file's contents.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
