//go:build unix

package amibuild

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/ssmtunnel"
)

// newSessionManagerEnv is a testEnv whose SSM calls reach the proxy, where
// the Session Manager stand-in answers them, with the stand-in plugin (in
// the returned directory) first on PATH.
func newSessionManagerEnv(t *testing.T) (*testEnv, string) {
	t.Helper()
	e := newTestEnv(t)
	e.proxy.SetFault(awstest.SessionManagerStandIn())
	t.Setenv("AWS_ENDPOINT_URL_SSM", e.proxy.URL)
	key, secret := awstest.TestCredentials()
	sess, err := awscfg.New(context.Background(), awscfg.Config{
		Region: testRegion, AccessKey: key, SecretKey: secret, MaxAttempts: 1,
		Endpoints: awscfg.Endpoints{EC2: e.proxy.URL, STS: e.proxy.URL, S3: e.proxy.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sess = sess
	StateSession.Put(e.state, sess)
	dir := t.TempDir()
	if _, err := awstest.BuildSessionManagerPlugin(dir); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return e, dir
}

// echoPort plays the instance's SSH port: a server that echoes.
func echoPort(t *testing.T) int {
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

func TestStepsSessionManager(t *testing.T) {
	e, dir := newSessionManagerEnv(t)
	remote := echoPort(t)
	StateInstance.Put(e.state, types.Instance{InstanceId: aws.String("i-0123456789abcdef0")})

	find := &StepFindSessionManagerPlugin{Enabled: true}
	e.run(t, find)
	if p, _ := StateSessionManagerPlugin.Get(e.state); p != filepath.Join(dir, ssmtunnel.PluginName) {
		t.Errorf("plugin = %q, want the stand-in in %s", p, dir)
	}
	step := &StepStartSessionManager{Region: testRegion, Enabled: true, Pause: time.Millisecond, RemotePort: remote}
	e.run(t, step)
	port, err := SessionPort(e.state)
	if err != nil {
		t.Fatal(err)
	}
	host, err := CommHost("", SSHInterfaceSessionManager)(e.state)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("CommHost = %q, %v; want 127.0.0.1", host, err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("over ssm\n"))
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "over ssm\n" {
		t.Fatalf("through the session: %q, %v", got, err)
	}
	c.Close()

	runs, err := awstest.SessionManagerPluginRuns(dir)
	if err != nil || len(runs) != 1 {
		t.Fatalf("plugin runs = %v, %v", runs, err)
	}
	if a := runs[0].Args; a[1] != testRegion || a[5] != e.proxy.URL {
		t.Errorf("plugin region %q and endpoint %q; want %s and the proxy", a[1], a[5], testRegion)
	}
	starts := e.proxy.CallsFor("ssm", "StartSession")
	if len(starts) != 1 || starts[0].Params.Get("Target") != "i-0123456789abcdef0" || starts[0].Params.Get("DocumentName") != ssmtunnel.DocumentName {
		t.Fatalf("StartSession calls = %v", starts)
	}

	step.Cleanup(e.state)
	terms := e.proxy.CallsFor("ssm", "TerminateSession")
	if len(terms) != 1 || terms[0].Params.Get("SessionId") != runs[0].SessionID() {
		t.Errorf("TerminateSession calls = %v, want one for %s", terms, runs[0].SessionID())
	}
	if runs[0].Running() {
		t.Error("the plugin runs after Cleanup")
	}
	step.Cleanup(e.state) // a second Cleanup does nothing
	if n := len(e.proxy.CallsFor("ssm", "TerminateSession")); n != 1 {
		t.Errorf("TerminateSession calls after a second Cleanup = %d", n)
	}
}

func TestStepsSessionManagerDisabled(t *testing.T) {
	e, dir := newSessionManagerEnv(t)
	e.run(t, &StepFindSessionManagerPlugin{})
	e.run(t, &StepStartSessionManager{Region: testRegion, RemotePort: 22})
	if len(e.proxy.Calls()) != 0 {
		t.Errorf("calls = %v, want none", e.proxy.Actions())
	}
	if runs, _ := awstest.SessionManagerPluginRuns(dir); len(runs) != 0 {
		t.Errorf("plugin runs = %v", runs)
	}
	if _, ok := StateSessionPort.Get(e.state); ok {
		t.Error("a session port without Session Manager")
	}
}

func TestStepFindSessionManagerPluginMissing(t *testing.T) {
	e := newTestEnv(t)
	t.Setenv("PATH", t.TempDir())
	err := e.runHalt(t, &StepFindSessionManagerPlugin{Enabled: true})
	var nf *ssmtunnel.PluginNotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "session-manager-plugin not found on PATH") {
		t.Errorf("error %v does not name the missing session-manager-plugin", err)
	}
	if len(e.proxy.Calls()) != 0 {
		t.Errorf("calls = %v, want none", e.proxy.Actions())
	}
}

// TestStepStartSessionManagerInterruptedDuringPause: Ctrl-C during
// pause_before_ssm halts the step before any session exists.
func TestStepStartSessionManagerInterruptedDuringPause(t *testing.T) {
	e, dir := newSessionManagerEnv(t)
	StateInstance.Put(e.state, types.Instance{InstanceId: aws.String("i-0123456789abcdef0")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	step := &StepStartSessionManager{Region: testRegion, Enabled: true, Pause: time.Hour, RemotePort: 22}
	if a := step.Run(ctx, e.state); a != multistep.ActionHalt {
		t.Fatalf("Run = %v, want a halt", a)
	}
	if err, _ := StateError.Get(e.state); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v", err)
	}
	step.Cleanup(e.state)
	if len(e.proxy.Calls()) != 0 {
		t.Errorf("calls = %v, want none", e.proxy.Actions())
	}
	if runs, _ := awstest.SessionManagerPluginRuns(dir); len(runs) != 0 {
		t.Errorf("plugin runs = %v", runs)
	}
}

// TestStepCreateSecurityGroupNoIngress: with Session Manager the temporary
// group admits nothing.
func TestStepCreateSecurityGroupNoIngress(t *testing.T) {
	e := newTestEnv(t)
	comm := &communicator.Config{Type: "ssh"}
	comm.SSHPort = 22
	step := &StepCreateSecurityGroup{Region: testRegion, Comm: comm, NoIngress: true}
	e.run(t, step)
	ids, _ := StateSecurityGroupIDs.Get(e.state)
	if len(ids) != 1 {
		t.Fatalf("security groups = %v", ids)
	}
	out, err := e.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Fatalf("describe %v: %v", ids, err)
	}
	if perms := out.SecurityGroups[0].IpPermissions; len(perms) != 0 {
		t.Errorf("ingress rules = %+v, want none", perms)
	}
	for _, a := range e.actions() {
		if a == "AuthorizeSecurityGroupIngress" {
			t.Error("AuthorizeSecurityGroupIngress was called")
		}
	}
	step.Cleanup(e.state)
	if _, err := e.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: ids}); err == nil {
		t.Error("the temporary group still exists after Cleanup")
	}
}

func TestLaunchStepsSessionManager(t *testing.T) {
	c := &RunConfig{SSHInterface: SSHInterfaceSessionManager, IamInstanceProfile: "p", Comm: communicator.Config{Type: "ssh"}}
	c.SessionManagerConfig = SessionManagerConfig{PauseBeforeSSM: 3 * time.Second, SessionManagerPort: 8022}
	c.Comm.SSHPort = 2222
	var found, started bool
	for _, s := range c.LaunchSteps(LaunchInput{Region: testRegion}) {
		switch s := s.(type) {
		case *StepFindSessionManagerPlugin:
			found = s.Enabled
		case *StepCreateSecurityGroup:
			if !s.NoIngress {
				t.Error("the temporary security group opens a port")
			}
		case *StepStartSessionManager:
			started = s.Enabled && s.Pause == 3*time.Second && s.LocalPort == 8022 && s.RemotePort == 2222
		case *communicator.StepConnect:
			if s.SSHPort == nil {
				t.Error("StepConnect does not take the session's port")
			}
		}
	}
	if !found || !started {
		t.Errorf("plugin check enabled %v, session step set up %v", found, started)
	}
}
