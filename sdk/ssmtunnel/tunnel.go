package ssmtunnel

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// PluginName is the name of AWS's Session Manager plugin executable,
// looked up on PATH.
const PluginName = "session-manager-plugin"

// DocumentName is the SSM document of port-forwarding sessions.
const DocumentName = "AWS-StartPortForwardingSession"

// Kinds of the resources Start records in Options.Ledger.
const (
	// KindSession is an SSM session; its ID is the session ID.
	KindSession ledger.Kind = "ssm-session"
	// KindPluginProcess is a running session-manager-plugin; its ID is the
	// process ID.
	KindPluginProcess ledger.Kind = "process"
)

// SessionAPI is the client behaviour Start and Tunnel.Close need.
// *ssm.Client satisfies it.
type SessionAPI interface {
	StartSession(ctx context.Context, in *ssm.StartSessionInput, optFns ...func(*ssm.Options)) (*ssm.StartSessionOutput, error)
	TerminateSession(ctx context.Context, in *ssm.TerminateSessionInput, optFns ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error)
}

var _ SessionAPI = (*ssm.Client)(nil)

// PluginNotFoundError reports that the session-manager-plugin executable
// is not on PATH.
type PluginNotFoundError struct {
	// Name is the executable looked for.
	Name string
	// Err is the error of the look-up.
	Err error
}

// Error names the executable and says how to install it.
func (e *PluginNotFoundError) Error() string {
	return fmt.Sprintf("%s not found on PATH (%v): Session Manager connections need AWS's Session Manager plugin on the machine running the build; "+
		"install it (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html) and put it on PATH", e.Name, e.Err)
}

// Unwrap returns Err, the error of the look-up.
func (e *PluginNotFoundError) Unwrap() error { return e.Err }

// FindPlugin returns the path of PluginName on PATH, or a
// *PluginNotFoundError that says how to install it.
func FindPlugin() (string, error) {
	p, err := exec.LookPath(PluginName)
	if err != nil {
		return "", &PluginNotFoundError{Name: PluginName, Err: err}
	}
	return p, nil
}

// Options are optional settings of Start.
type Options struct {
	// Ledger, when set, receives the session and the plugin process, with
	// undos that end them.
	Ledger *ledger.Ledger
	// Logf, when set, receives progress messages. It never receives the
	// session's token.
	Logf func(format string, args ...any)
	// RetryDelay is the first delay between StartSession attempts while
	// the instance's agent is not connected. It doubles up to
	// RetryMaxDelay. Zero means 2s.
	RetryDelay time.Duration
	// RetryMaxDelay caps the delay between attempts. Zero means 30s.
	RetryMaxDelay time.Duration
	// StopTimeout bounds the wait for the plugin to exit after SIGTERM,
	// after which it is killed. Zero means 10s.
	StopTimeout time.Duration
}

func newOptions(optFns []func(*Options)) Options {
	o := opts.Apply(optFns)
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	if o.RetryMaxDelay < o.RetryDelay {
		o.RetryMaxDelay = max(30*time.Second, o.RetryDelay)
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	return o
}

func (o Options) logf(format string, args ...any) {
	opts.Logf(o.Logf, format, args...)
}

// StartInput describes a port-forwarding session.
type StartInput struct {
	// InstanceID is the instance to reach. Required.
	InstanceID string
	// Port is the TCP port on the instance, for example 22. Required.
	Port int
	// LocalPort is the port of 127.0.0.1 the plugin listens on. Zero means
	// a free port chosen by Start.
	LocalPort int
	// Region is the region of the instance, handed to the plugin. Empty
	// means the client's region (an *ssm.Client's Options().Region).
	Region string
	// Endpoint is the SSM endpoint URL handed to the plugin. Empty means
	// the endpoint an *ssm.Client resolves for Region.
	Endpoint string
	// Profile is the shared configuration profile handed to the plugin,
	// which it uses for its own calls. Empty lets the plugin use its
	// environment.
	Profile string
	// PluginPath is the plugin executable. Empty means FindPlugin.
	PluginPath string
	// Output receives what the plugin prints (stdout and stderr). Nil
	// discards it.
	Output io.Writer
	// ConnectTimeout bounds how long StartSession is retried while it
	// fails with TargetNotConnected (the agent has not registered yet).
	// Zero means 5 minutes.
	ConnectTimeout time.Duration
	// ReadyTimeout bounds the wait for the plugin to announce its local
	// port. When it passes with the plugin still running, Start returns
	// the tunnel anyway. Zero means 30s.
	ReadyTimeout time.Duration
}

// Tunnel is the result of Start: a running port-forwarding session and its
// plugin process.
type Tunnel struct {
	// SessionID is the SSM session.
	SessionID string
	// InstanceID and Region are the instance the session reaches.
	InstanceID, Region string
	// LocalPort is the port of 127.0.0.1 that leads to the instance.
	LocalPort int

	api   SessionAPI
	o     Options
	cmd   *exec.Cmd
	done  chan struct{} // closed when the plugin has exited
	err   error         // why the plugin exited; set before done closes
	tail  *tail
	ready chan struct{} // closed when the plugin announced its port

	closeOnce sync.Once
	closeErr  error
}

// Addr returns the local address that leads to the instance's port,
// "127.0.0.1:<LocalPort>".
func (t *Tunnel) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(t.LocalPort)) }

// Done is closed when the plugin process has exited, for whatever reason.
func (t *Tunnel) Done() <-chan struct{} { return t.done }

// Err returns why the plugin exited, once Done is closed; nil before.
func (t *Tunnel) Err() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}

// Start starts a port-forwarding session to in.Port of in.InstanceID and
// the plugin that carries it, and returns once the plugin listens on the
// local port (or in.ReadyTimeout passed with the plugin running). On
// error, nothing is left running: a session that was started is
// terminated and the plugin stopped.
func Start(ctx context.Context, api SessionAPI, in *StartInput, optFns ...func(*Options)) (*Tunnel, error) {
	o := newOptions(optFns)
	tg, err := resolveTarget(ctx, api, in)
	if err != nil {
		return nil, err
	}
	req := &ssm.StartSessionInput{
		Target:       aws.String(in.InstanceID),
		DocumentName: aws.String(DocumentName),
		Parameters: map[string][]string{
			"portNumber":      {strconv.Itoa(in.Port)},
			"localPortNumber": {strconv.Itoa(tg.local)},
		},
	}
	out, err := startSession(ctx, api, req, in.ConnectTimeout, o)
	if err != nil {
		return nil, fmt.Errorf("start session manager session to port %d of %s: %w", in.Port, tg.where, err)
	}
	t, err := newTunnel(api, in, tg, out, o)
	if err != nil {
		return nil, err
	}
	args, err := pluginArgs(out, req, tg.region, in.Profile, tg.endpoint)
	if err == nil {
		err = t.startPlugin(tg.plugin, args, in.Output)
	}
	if err != nil {
		err = fmt.Errorf("start %s for session %s to %s: %w", PluginName, t.SessionID, tg.where, err)
		return nil, errors.Join(err, t.closeDetached(ctx))
	}
	if err := t.awaitReady(ctx, in.ReadyTimeout, tg.where); err != nil {
		return nil, errors.Join(err, t.closeDetached(ctx))
	}
	return t, nil
}

// target is what Start settles before any AWS call: the plugin to run, the
// region and SSM endpoint to hand it, and the local port it listens on.
type target struct {
	plugin, region, endpoint string
	local                    int
	// where names the instance, with its region, in messages.
	where string
}

// resolveTarget checks in and settles the target of the tunnel, filling in
// the plugin, region, endpoint and local port where in leaves them out.
func resolveTarget(ctx context.Context, api SessionAPI, in *StartInput) (*target, error) {
	if in.InstanceID == "" {
		return nil, errors.New("start session manager tunnel: no instance ID")
	}
	where := in.InstanceID
	if in.Port < 1 || in.Port > 65535 {
		return nil, fmt.Errorf("start session manager tunnel to %s: port %d is out of range; want 1 to 65535", where, in.Port)
	}
	if in.LocalPort < 0 || in.LocalPort > 65535 {
		return nil, fmt.Errorf("start session manager tunnel to %s: local port %d is out of range; want 1 to 65535, or 0 for any free port", where, in.LocalPort)
	}
	tg := &target{plugin: in.PluginPath, local: in.LocalPort}
	if tg.plugin == "" {
		p, err := FindPlugin()
		if err != nil {
			return nil, fmt.Errorf("start session manager tunnel to %s: %w", where, err)
		}
		tg.plugin = p
	}
	var err error
	if tg.region, tg.endpoint, err = resolve(ctx, api, in.Region, in.Endpoint); err != nil {
		return nil, fmt.Errorf("start session manager tunnel to %s: %w", where, err)
	}
	tg.where = in.InstanceID + " in " + tg.region
	if tg.local == 0 {
		if tg.local, err = freePort(); err != nil {
			return nil, fmt.Errorf("start session manager tunnel to %s: find a free local port: %w", tg.where, err)
		}
	}
	return tg, nil
}

// newTunnel returns the tunnel of a started session, recorded in the
// ledger so that the session is ended even if the plugin never runs.
func newTunnel(api SessionAPI, in *StartInput, tg *target, out *ssm.StartSessionOutput, o Options) (*Tunnel, error) {
	t := &Tunnel{
		SessionID:  aws.ToString(out.SessionId),
		InstanceID: in.InstanceID,
		Region:     tg.region,
		LocalPort:  tg.local,
		api:        api,
		o:          o,
		done:       make(chan struct{}),
		ready:      make(chan struct{}),
		tail:       &tail{max: 10},
	}
	if t.SessionID == "" {
		return nil, fmt.Errorf("start session manager session to port %d of %s: the answer has no session ID", in.Port, tg.where)
	}
	o.logf("session manager session %s to port %d of %s started", t.SessionID, in.Port, tg.where)
	if o.Ledger != nil {
		o.Ledger.Record(ledger.Resource{Kind: KindSession, ID: t.SessionID, Region: tg.region}, t.terminateSession)
	}
	return t, nil
}

// awaitReady waits for the plugin to announce its local port, for up to
// wait (zero: 30s); when that passes with the plugin still running, the
// tunnel is used anyway. It fails when the plugin exits first or ctx ends;
// where names the instance in errors.
func (t *Tunnel) awaitReady(ctx context.Context, wait time.Duration, where string) error {
	if wait <= 0 {
		wait = 30 * time.Second
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-t.ready:
		t.o.logf("%s listens on %s for session %s", PluginName, t.Addr(), t.SessionID)
	case <-t.done:
		return fmt.Errorf("%s for session %s to %s exited before it opened port %d: %w%s", PluginName, t.SessionID, where, t.LocalPort, t.err, t.tail.describe())
	case <-timer.C:
		t.o.logf("%s did not announce port %d within %s; going on", PluginName, t.LocalPort, wait)
	case <-ctx.Done():
		return fmt.Errorf("start session manager tunnel to %s: %w", where, ctx.Err())
	}
	return nil
}

// Close stops the plugin (SIGTERM, then SIGKILL after Options.StopTimeout)
// and terminates the session, and forgets both in the ledger. It does
// both whatever the outcome of the other, and only once; later calls
// return the first call's result.
func (t *Tunnel) Close(ctx context.Context) error {
	t.closeOnce.Do(func() {
		var errs []error
		if err := t.stopPlugin(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := t.terminateSession(ctx); err != nil {
			errs = append(errs, err)
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// closeDetached closes t with a context that outlives ctx, for the
// failure paths of Start.
func (t *Tunnel) closeDetached(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	return t.Close(cctx)
}

// terminateSession ends the session. A session that is already gone is
// not an error.
func (t *Tunnel) terminateSession(ctx context.Context) error {
	t.o.logf("terminating session manager session %s", t.SessionID)
	_, err := t.api.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(t.SessionID)})
	var ae smithy.APIError
	if err != nil && !(errors.As(err, &ae) && ae.ErrorCode() == "DoesNotExistException") {
		return fmt.Errorf("terminate session manager session %s in %s: %w", t.SessionID, t.Region, err)
	}
	if t.o.Ledger != nil {
		t.o.Ledger.Forget(KindSession, t.SessionID)
	}
	return nil
}

// startPlugin runs the plugin with args, its output going to out (and
// scanned for the announcement of the local port).
func (t *Tunnel) startPlugin(path string, args []string, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	pr, pw := io.Pipe()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.WaitDelay = t.o.StopTimeout
	if err := cmd.Start(); err != nil {
		pw.Close()
		close(t.done)
		return err
	}
	t.cmd = cmd
	pid := strconv.Itoa(cmd.Process.Pid)
	if t.o.Ledger != nil {
		t.o.Ledger.Record(ledger.Resource{Kind: KindPluginProcess, ID: pid}, t.stopPlugin)
	}
	announce := "Port " + strconv.Itoa(t.LocalPort) + " opened"
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		var once sync.Once
		s := bufio.NewScanner(pr)
		for s.Scan() {
			line := s.Text()
			t.tail.add(line)
			fmt.Fprintln(out, line)
			if strings.Contains(line, announce) {
				once.Do(func() { close(t.ready) })
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-scanned // the last lines are in the tail before done closes
		if err == nil {
			err = errors.New("exit status 0")
		}
		t.err = err
		close(t.done)
	}()
	return nil
}

// stopPlugin stops the plugin process, if one runs: SIGTERM, then SIGKILL
// when it has not exited after StopTimeout or when ctx ends.
func (t *Tunnel) stopPlugin(ctx context.Context) error {
	if t.cmd == nil {
		return nil
	}
	pid := strconv.Itoa(t.cmd.Process.Pid)
	select {
	case <-t.done:
	default:
		t.o.logf("stopping %s (process %s) of session %s", PluginName, pid, t.SessionID)
		if err := t.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			_ = t.cmd.Process.Kill()
		}
		timer := time.NewTimer(t.o.StopTimeout)
		defer timer.Stop()
		select {
		case <-t.done:
		case <-timer.C:
			_ = t.cmd.Process.Kill()
			<-t.done
		case <-ctx.Done():
			_ = t.cmd.Process.Kill()
			<-t.done
		}
	}
	if t.o.Ledger != nil {
		t.o.Ledger.Forget(KindPluginProcess, pid)
	}
	return nil
}

// startSession calls StartSession, retrying while the target is not
// connected, for up to connectTimeout (zero: 5 minutes).
func startSession(ctx context.Context, api SessionAPI, req *ssm.StartSessionInput, connectTimeout time.Duration, o Options) (*ssm.StartSessionOutput, error) {
	if connectTimeout <= 0 {
		connectTimeout = 5 * time.Minute
	}
	deadline := time.Now().Add(connectTimeout)
	delay := o.RetryDelay
	for {
		out, err := api.StartSession(ctx, req)
		var ae smithy.APIError
		switch {
		case err == nil:
			return out, nil
		case !errors.As(err, &ae) || ae.ErrorCode() != "TargetNotConnected":
			return nil, err
		case time.Now().Add(delay).After(deadline):
			return nil, fmt.Errorf("the instance's SSM agent is still not connected after %s (does the instance profile allow Systems Manager, for example with AmazonSSMManagedInstanceCore, and can the instance reach the SSM endpoints?): %w", connectTimeout, err)
		}
		o.logf("the SSM agent of %s is not connected yet; retrying in %s", aws.ToString(req.Target), delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(err, ctx.Err())
		}
		delay = min(2*delay, o.RetryMaxDelay)
	}
}

// pluginArgs are the plugin's arguments, in the order the AWS CLI passes
// them.
func pluginArgs(out *ssm.StartSessionOutput, req *ssm.StartSessionInput, region, profile, endpoint string) ([]string, error) {
	answer, err := json.Marshal(struct {
		SessionID  *string `json:"SessionId"`
		StreamURL  *string `json:"StreamUrl"`
		TokenValue *string `json:"TokenValue"`
	}{out.SessionId, out.StreamUrl, out.TokenValue})
	if err != nil {
		return nil, fmt.Errorf("encode the StartSession answer: %w", err)
	}
	input, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the StartSession input: %w", err)
	}
	return []string{string(answer), region, "StartSession", profile, string(input), endpoint}, nil
}

// resolve returns the region and SSM endpoint to hand to the plugin:
// the given ones, else those of the client when it is an *ssm.Client (or
// anything with its Options method).
func resolve(ctx context.Context, api SessionAPI, region, endpoint string) (string, string, error) {
	c, ok := api.(interface{ Options() ssm.Options })
	if region == "" {
		if !ok || c.Options().Region == "" {
			return "", "", errors.New("no region: set StartInput.Region or use a client with a region")
		}
		region = c.Options().Region
	}
	if endpoint != "" {
		return region, endpoint, nil
	}
	if !ok {
		return "", "", errors.New("no SSM endpoint: set StartInput.Endpoint or use an *ssm.Client")
	}
	opts := c.Options()
	resolver := opts.EndpointResolverV2
	if resolver == nil {
		resolver = ssm.NewDefaultEndpointResolverV2()
	}
	ep, err := resolver.ResolveEndpoint(ctx, ssm.EndpointParameters{
		Region:       aws.String(region),
		Endpoint:     opts.BaseEndpoint,
		UseFIPS:      aws.Bool(opts.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack: aws.Bool(opts.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
	})
	if err != nil {
		return "", "", fmt.Errorf("resolve the SSM endpoint of %s: %w", region, err)
	}
	return region, ep.URI.String(), nil
}

// freePort returns a TCP port that is free on 127.0.0.1 now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last lines of the plugin's output, for errors.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// describe returns "; it said: …" with the kept lines, or "".
func (t *tail) describe() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keep []string
	for _, l := range t.lines {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) == 0 {
		return ""
	}
	return "; it said: " + strings.Join(keep, " / ")
}
