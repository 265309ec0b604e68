//go:build unix

package awstest

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// freeLoopbackPort returns a TCP port that was free on 127.0.0.1.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pluginArgs are the arguments of a port-forwarding session to remote
// with local as the local port.
func pluginArgs(t *testing.T, remote, local int) []string {
	t.Helper()
	answer, _ := json.Marshal(map[string]string{"SessionId": "s-1", "StreamUrl": "wss://example/s-1", "TokenValue": "tok"})
	input, _ := json.Marshal(map[string]any{
		"Target": "i-0123456789abcdef0", "DocumentName": "AWS-StartPortForwardingSession",
		"Parameters": map[string][]string{"portNumber": {strconv.Itoa(remote)}, "localPortNumber": {strconv.Itoa(local)}},
	})
	return []string{string(answer), "eu-west-1", "StartSession", "", string(input), "https://ssm.eu-west-1.amazonaws.com"}
}

func TestSessionManagerPluginStandIn(t *testing.T) {
	dir := t.TempDir()
	path, err := BuildSessionManagerPlugin(dir)
	if err != nil {
		t.Fatal(err)
	}

	// An echo server plays the instance's port.
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	local := freeLoopbackPort(t)
	args := pluginArgs(t, echo.Addr().(*net.TCPAddr).Port, local)
	cmd := exec.Command(path, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "Port ") {
	}
	if want := "Port " + strconv.Itoa(local) + " opened for sessionId s-1."; lines.Text() != want {
		t.Fatalf("plugin said %q, want %q", lines.Text(), want)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(local))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "ping\n" {
		t.Fatalf("through the tunnel: %q, %v", got, err)
	}
	c.Close()

	runs, err := SessionManagerPluginRuns(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].PID != cmd.Process.Pid || strings.Join(runs[0].Args, "\x00") != strings.Join(args, "\x00") {
		t.Fatalf("runs = %+v", runs)
	}
	if !runs[0].Running() || runs[0].SessionID() != "s-1" {
		t.Errorf("run: running %v, session %q", runs[0].Running(), runs[0].SessionID())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("plugin after SIGTERM: %v", err)
	}
	if runs[0].Running() {
		t.Error("the plugin still runs after SIGTERM")
	}
}

func TestSessionManagerPluginStandInRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	path, err := BuildSessionManagerPlugin(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := pluginArgs(t, 22, 8022)
	tests := []struct {
		name string
		edit func([]string) []string
		want string
	}{
		{"too few", func(a []string) []string { return a[:5] }, "want 6"},
		{"operation", func(a []string) []string { a[2] = "ResumeSession"; return a }, "want StartSession"},
		{"answer", func(a []string) []string { a[0] = `{"SessionId":"s"}`; return a }, "TokenValue"},
		{"document", func(a []string) []string { a[4] = `{"Target":"i-1","DocumentName":"AWS-StartSSHSession"}`; return a }, "AWS-StartPortForwardingSession"},
		{"endpoint", func(a []string) []string { a[5] = ""; return a }, "endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(path, tc.edit(append([]string(nil), good...))...).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output %q does not mention %q", out, tc.want)
			}
		})
	}
	if runs, err := SessionManagerPluginRuns(dir); err != nil || len(runs) != 0 {
		t.Errorf("refused runs were recorded: %v, %v", runs, err)
	}
}
