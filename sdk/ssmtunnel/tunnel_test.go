//go:build unix

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
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// fakeSSM is a SessionAPI with function fields and a log of calls.
type fakeSSM struct {
	mu    sync.Mutex
	calls []string
	start func(n int, in *ssm.StartSessionInput) (*ssm.StartSessionOutput, error)
	term  func(in *ssm.TerminateSessionInput) error
}

func (f *fakeSSM) log(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	n := 0
	for _, c := range f.calls {
		if c == s || strings.HasPrefix(s, "StartSession") && strings.HasPrefix(c, "StartSession") {
			n++
		}
	}
	return n
}

func (f *fakeSSM) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeSSM) StartSession(_ context.Context, in *ssm.StartSessionInput, _ ...func(*ssm.Options)) (*ssm.StartSessionOutput, error) {
	n := f.log("StartSession " + aws.ToString(in.Target))
	if f.start != nil {
		return f.start(n, in)
	}
	id := fmt.Sprintf("me-%017d", n)
	return &ssm.StartSessionOutput{SessionId: aws.String(id), StreamUrl: aws.String("wss://example/" + id), TokenValue: aws.String("token-" + id)}, nil
}

func (f *fakeSSM) TerminateSession(_ context.Context, in *ssm.TerminateSessionInput, _ ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error) {
	f.log("TerminateSession " + aws.ToString(in.SessionId))
	if f.term != nil {
		if err := f.term(in); err != nil {
			return nil, err
		}
	}
	return &ssm.TerminateSessionOutput{SessionId: in.SessionId}, nil
}

// standIn builds the stand-in plugin into a fresh directory.
func standIn(t *testing.T) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path, err := awstest.BuildSessionManagerPlugin(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// script writes an executable shell script.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), PluginName)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// echoServer plays the instance's port: it echoes what it reads.
func echoServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func echoThrough(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect to the tunnel: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "hello\n" {
		t.Fatalf("through the tunnel: %q, %v", got, err)
	}
}

func quick(o *Options) {
	o.RetryDelay, o.RetryMaxDelay, o.StopTimeout = time.Millisecond, time.Millisecond, 5*time.Second
}

// TestStartAndClose runs a session through the real SSM client and the
// recording proxy (whose stand-in answers StartSession and
// TerminateSession) with the stand-in plugin, which forwards to a local
// echo server as the instance's port.
func TestStartAndClose(t *testing.T) {
	ctx := context.Background()
	p := awstest.NewProxy(t, "http://127.0.0.1:1", awstest.ProxyOptions{Fault: awstest.SessionManagerStandIn()})
	client := ssm.NewFromConfig(awstest.Config(p.URL, "eu-west-1"))
	dir, plugin := standIn(t)
	remote := echoServer(t)
	var led ledger.Ledger
	var out strings.Builder
	var outMu sync.Mutex
	tun, err := Start(ctx, client, &StartInput{
		InstanceID: "i-0123456789abcdef0",
		Port:       remote,
		Profile:    "builds",
		PluginPath: plugin,
		Output:     writerFunc(func(b []byte) { outMu.Lock(); out.Write(b); outMu.Unlock() }),
	}, func(o *Options) { o.Ledger = &led })
	if err != nil {
		t.Fatal(err)
	}
	echoThrough(t, tun.Addr())
	if tun.Region != "eu-west-1" || tun.LocalPort == 0 || tun.SessionID == "" {
		t.Errorf("tunnel %+v", tun)
	}
	if got := led.Resources(); len(got) != 2 || got[0].Kind != KindSession || got[0].ID != tun.SessionID || got[1].Kind != KindPluginProcess {
		t.Errorf("ledger = %v", got)
	}

	// The plugin got the arguments the AWS CLI gives it.
	runs, err := awstest.SessionManagerPluginRuns(dir)
	if err != nil || len(runs) != 1 {
		t.Fatalf("plugin runs = %v, %v", runs, err)
	}
	args := runs[0].Args
	if len(args) != 6 || args[1] != "eu-west-1" || args[2] != "StartSession" || args[3] != "builds" || args[5] != p.URL {
		t.Errorf("plugin arguments 2 to 6: %q", args[1:])
	}
	var answer map[string]string
	if err := json.Unmarshal([]byte(args[0]), &answer); err != nil || answer["SessionId"] != tun.SessionID ||
		!strings.HasPrefix(answer["TokenValue"], awstest.SessionManagerStandInToken) || !strings.HasPrefix(answer["StreamUrl"], "wss://") {
		t.Errorf("plugin argument 1: %s (%v)", args[0], err)
	}
	var input = struct {
		Target, DocumentName string
		Parameters           map[string][]string
	}{}
	if err := json.Unmarshal([]byte(args[4]), &input); err != nil {
		t.Fatal(err)
	}
	wantParams := map[string][]string{"portNumber": {strconv.Itoa(remote)}, "localPortNumber": {strconv.Itoa(tun.LocalPort)}}
	if input.Target != "i-0123456789abcdef0" || input.DocumentName != DocumentName || !reflect.DeepEqual(input.Parameters, wantParams) {
		t.Errorf("plugin argument 5: %s", args[4])
	}
	// What the SSM API was asked is what the plugin was told.
	starts := p.CallsFor("ssm", "StartSession")
	if len(starts) != 1 {
		t.Fatalf("StartSession requests %v, want one", starts)
	}
	var asked struct {
		Target, DocumentName string
		Parameters           map[string][]string
	}
	if err := json.Unmarshal(starts[0].JSON, &asked); err != nil || !reflect.DeepEqual(asked, input) {
		t.Errorf("StartSession request %s (%v), want what the plugin was told, %s", starts[0].JSON, err, args[4])
	}

	if err := tun.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if runs[0].Running() {
		t.Error("the plugin runs after Close")
	}
	select {
	case <-tun.Done():
	default:
		t.Error("Done is open after Close")
	}
	terms := p.CallsFor("ssm", "TerminateSession")
	if len(terms) != 1 || terms[0].Params.Get("SessionId") != tun.SessionID {
		t.Errorf("TerminateSession requests %v", terms)
	}
	if led.Len() != 0 {
		t.Errorf("ledger after Close = %v", led.Resources())
	}
	if err := tun.Close(ctx); err != nil || len(p.CallsFor("ssm", "TerminateSession")) != 1 {
		t.Errorf("second Close: %v, %d TerminateSession calls", err, len(p.CallsFor("ssm", "TerminateSession")))
	}
	outMu.Lock()
	said := out.String()
	outMu.Unlock()
	if !strings.Contains(said, "opened for sessionId "+tun.SessionID) {
		t.Errorf("plugin output %q", said)
	}
	if strings.Contains(said, awstest.SessionManagerStandInToken) {
		t.Error("the session token reached the output")
	}
}

type writerFunc func([]byte)

func (w writerFunc) Write(b []byte) (int, error) { w(b); return len(b), nil }

func TestStartRetriesWhileTheAgentIsNotConnected(t *testing.T) {
	notConnected := &smithy.GenericAPIError{Code: "TargetNotConnected", Message: "i-1 is not connected."}
	_, plugin := standIn(t)
	tests := []struct {
		name      string
		failures  int
		timeout   time.Duration
		wantErr   string
		wantStart int
	}{
		{name: "connects on the third attempt", failures: 2, timeout: time.Minute, wantStart: 3},
		{name: "gives up", failures: 1000, timeout: 50 * time.Millisecond, wantErr: "AmazonSSMManagedInstanceCore"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSSM{}
			f.start = func(n int, in *ssm.StartSessionInput) (*ssm.StartSessionOutput, error) {
				if n <= tc.failures {
					return nil, notConnected
				}
				return &ssm.StartSessionOutput{SessionId: aws.String("me-1"), StreamUrl: aws.String("wss://x"), TokenValue: aws.String("t")}, nil
			}
			var led ledger.Ledger
			tun, err := Start(context.Background(), f, &StartInput{
				InstanceID: "i-1", Port: echoServer(t), Region: "us-east-1", Endpoint: "https://ssm.us-east-1.amazonaws.com",
				PluginPath: plugin, ConnectTimeout: tc.timeout,
			}, quick, func(o *Options) { o.Ledger = &led })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, notConnected) {
					t.Fatalf("err = %v, want one mentioning %q that wraps TargetNotConnected", err, tc.wantErr)
				}
				for _, c := range f.Calls() {
					if strings.HasPrefix(c, "TerminateSession") {
						t.Errorf("terminated a session that never started: %v", f.Calls())
					}
				}
				if led.Len() != 0 {
					t.Errorf("ledger = %v", led.Resources())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tun.Close(context.Background())
			if n := len(f.Calls()); n != tc.wantStart {
				t.Errorf("calls = %v, want %d StartSession", f.Calls(), tc.wantStart)
			}
		})
	}
}

// TestStartFailuresLeaveNothing: whatever goes wrong after the session
// started, Start ends it and leaves no plugin process.
func TestStartFailuresLeaveNothing(t *testing.T) {
	tests := []struct {
		name    string
		plugin  string // shell script body; $PIDFILE is written with its PID
		cancel  bool   // cancel the context once the plugin printed a line
		wantErr string
	}{
		{name: "plugin exits", plugin: `echo "Cannot perform start session: bad token" >&2; exit 1`, wantErr: "bad token"},
		{name: "cancelled while waiting for the port", plugin: `echo starting; while :; do sleep 1; done`, cancel: true, wantErr: "context canceled"},
		{name: "plugin ignores SIGTERM", plugin: `trap '' TERM; echo starting; while :; do sleep 1; done`, cancel: true, wantErr: "context canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			plugin := script(t, "echo $$ > "+pidFile+"\n"+tc.plugin)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out io.Writer = io.Discard
			if tc.cancel {
				out = writerFunc(func([]byte) { cancel() })
			}
			f := &fakeSSM{}
			var led ledger.Ledger
			_, err := Start(ctx, f, &StartInput{
				InstanceID: "i-1", Port: 22, Region: "us-east-1", Endpoint: "https://ssm.us-east-1.amazonaws.com",
				PluginPath: plugin, Output: out, ReadyTimeout: time.Hour,
			}, quick, func(o *Options) { o.Ledger = &led; o.StopTimeout = 200 * time.Millisecond })
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
			if got, want := f.Calls(), []string{"StartSession i-1", "TerminateSession me-00000000000000001"}; !reflect.DeepEqual(got, want) {
				t.Errorf("calls = %v, want %v", got, want)
			}
			if led.Len() != 0 {
				t.Errorf("ledger = %v", led.Resources())
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if (awstest.SessionManagerPluginRun{PID: pid}).Running() {
				t.Errorf("plugin process %d still runs", pid)
			}
		})
	}
}

func TestStartWithoutThePlugin(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &fakeSSM{}
	_, err := Start(context.Background(), f, &StartInput{InstanceID: "i-1", Port: 22, Region: "us-east-1", Endpoint: "https://x"})
	var nf *PluginNotFoundError
	if !errors.As(err, &nf) || nf.Name != PluginName || !strings.Contains(err.Error(), "session-manager-plugin not found on PATH") {
		t.Fatalf("err = %v, want a PluginNotFoundError", err)
	}
	if len(f.Calls()) != 0 {
		t.Errorf("calls = %v, want none", f.Calls())
	}
	if _, err := FindPlugin(); !errors.As(err, &nf) {
		t.Errorf("FindPlugin: %v", err)
	}
}

func TestStartRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		in   StartInput
		want string
	}{
		{"no instance", StartInput{Port: 22}, "no instance ID"},
		{"no port", StartInput{InstanceID: "i-1"}, "port 0 is out of range"},
		{"bad local port", StartInput{InstanceID: "i-1", Port: 22, LocalPort: 70000}, "local port 70000"},
		{"no region", StartInput{InstanceID: "i-1", Port: 22, PluginPath: "/bin/true"}, "no region"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSSM{}
			_, err := Start(context.Background(), f, &tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if len(f.Calls()) != 0 {
				t.Errorf("calls = %v", f.Calls())
			}
		})
	}
}

// TestCloseTerminatesAfterThePluginExited: the session is ended even when
// the plugin has already gone, and an error from TerminateSession is
// reported with the session and region.
func TestCloseTerminatesAfterThePluginExited(t *testing.T) {
	_, plugin := standIn(t)
	f := &fakeSSM{term: func(*ssm.TerminateSessionInput) error {
		return &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}
	}}
	tun, err := Start(context.Background(), f, &StartInput{
		InstanceID: "i-1", Port: echoServer(t), Region: "us-east-1", Endpoint: "https://x", PluginPath: plugin,
	}, quick)
	if err != nil {
		t.Fatal(err)
	}
	if err := tun.stopPlugin(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tun.Err() == nil {
		t.Error("Err() is nil after the plugin exited")
	}
	err = tun.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "terminate session manager session me-00000000000000001 in us-east-1") {
		t.Fatalf("Close: %v", err)
	}
	if got := f.Calls(); len(got) != 2 || got[1] != "TerminateSession me-00000000000000001" {
		t.Errorf("calls = %v", got)
	}
}
