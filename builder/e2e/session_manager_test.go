//go:build unix

package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// ssmTemplate returns the Session Manager corpus template, migrated and
// pointed at the loopback SSH server (ssh_port is the port the session
// reaches, which the stand-in plugin forwards to on 127.0.0.1), with its
// provisioner's commands replaced by commands when not nil.
func (w *world) ssmTemplate(t *testing.T, commands []string) string {
	t.Helper()
	var f corpusFile
	for _, c := range corpusFiles(t) {
		if c.Name == "ssm-no-inbound.pkr.hcl" {
			f = c
		}
	}
	if f.Name == "" {
		t.Fatal("ssm-no-inbound.pkr.hcl is not in the corpus")
	}
	src := w.corpusTemplate(t, f)
	if commands != nil {
		const orig = `inline = ["echo reached through Session Manager"]`
		q := make([]string, len(commands))
		for i, c := range commands {
			q[i] = strconv.Quote(c)
		}
		if !strings.Contains(src, orig) {
			t.Fatalf("the template has no %s", orig)
		}
		src = strings.Replace(src, orig, "inline = ["+strings.Join(q, ", ")+"]", 1)
	}
	return src
}

// pluginRuns returns the stand-in plugin's runs since before.
func (w *world) pluginRuns(t *testing.T, before []awstest.SessionManagerPluginRun) []awstest.SessionManagerPluginRun {
	t.Helper()
	runs, err := awstest.SessionManagerPluginRuns(w.ssmPluginDir)
	if err != nil {
		t.Fatal(err)
	}
	// The records are not in run order: leave out those seen before.
	return slices.DeleteFunc(runs, func(r awstest.SessionManagerPluginRun) bool {
		return slices.ContainsFunc(before, func(b awstest.SessionManagerPluginRun) bool { return b.PID == r.PID && b.SessionID() == r.SessionID() })
	})
}

// checkSessionsEnded checks that every session the run started was
// terminated and that no plugin process of the run is left.
func (w *world) checkSessionsEnded(t *testing.T, runs []awstest.SessionManagerPluginRun) {
	t.Helper()
	var terminated []string
	for _, c := range w.proxy.CallsFor("ssm", "TerminateSession") {
		terminated = append(terminated, c.Params.Get("SessionId"))
	}
	if got, want := len(terminated), len(w.proxy.CallsFor("ssm", "StartSession")); got != want {
		t.Errorf("%d sessions started, %d terminated (%v)", want, got, terminated)
	}
	for _, r := range runs {
		if !slices.Contains(terminated, r.SessionID()) {
			t.Errorf("session %s (plugin process %d) was not terminated", r.SessionID(), r.PID)
		}
		if r.Running() {
			t.Errorf("plugin process %d of session %s still runs", r.PID, r.SessionID())
		}
	}
}

// TestSessionManagerBuild builds the Session Manager corpus template and
// checks what was asked of SSM and of the plugin, that the temporary
// security group admits nothing, that the session ended, and the IAM
// policy for Session Manager.
func TestSessionManagerBuild(t *testing.T) {
	w := theWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	localPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	before := w.pluginRuns(t, nil)
	base := w.baseline(t)
	res := w.run(t, runSpec{
		Template: w.ssmTemplate(t, []string{"echo over-session-manager > " + filepath.Join(w.scratch(t), "marker")}),
		Args:     []string{"build", "-machine-readable", "-var", "session_port=" + strconv.Itoa(localPort)},
		Fault:    awstest.SessionManagerStandIn(),
	})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d:\n%s", res.ExitCode, res.Output())
	}
	w.scanSecrets(t, res, nil, map[string]string{"Session Manager token": awstest.SessionManagerStandInToken})
	mustContain(t, "packer output", res.Output(), "without inbound rules (Session Manager)", "Starting a Session Manager session to port "+strconv.Itoa(w.sshd.Port))

	terms := w.proxy.CallsFor("ec2", "TerminateInstances")
	if len(terms) != 1 {
		t.Fatalf("TerminateInstances calls = %v", terms)
	}
	instanceID := terms[0].Params.Get("InstanceId.1")
	starts := w.proxy.CallsFor("ssm", "StartSession")
	if len(starts) != 1 {
		t.Fatalf("StartSession calls = %v", starts)
	}
	var asked struct {
		Target, DocumentName string
		Parameters           map[string][]string
	}
	if err := json.Unmarshal(starts[0].JSON, &asked); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"portNumber": {strconv.Itoa(w.sshd.Port)}, "localPortNumber": {strconv.Itoa(localPort)}}
	if asked.Target != instanceID || asked.DocumentName != "AWS-StartPortForwardingSession" || !reflect.DeepEqual(asked.Parameters, want) || starts[0].Region != buildRegion {
		t.Errorf("StartSession in %s asked %s; want target %s, AWS-StartPortForwardingSession, %v", starts[0].Region, starts[0].JSON, instanceID, want)
	}
	if n := len(w.proxy.CallsFor("ec2", "AuthorizeSecurityGroupIngress")); n != 0 || len(w.proxy.CallsFor("ec2", "CreateSecurityGroup")) != 1 {
		t.Errorf("the temporary security group was given %d inbound rules, want none", n)
	}
	runs := w.pluginRuns(t, before)
	if len(runs) != 1 {
		t.Fatalf("plugin runs = %+v, want one", runs)
	}
	args := runs[0].Args
	if args[1] != buildRegion || args[2] != "StartSession" || args[3] != "" || args[5] != w.proxy.URL {
		t.Errorf("plugin arguments 2 to 6 = %q; want the region, StartSession, no profile, the input and the SSM endpoint", args[1:])
	}
	var answered struct{ SessionId, TokenValue string }
	if err := json.Unmarshal([]byte(args[0]), &answered); err != nil || answered.SessionId == "" || !strings.HasPrefix(answered.TokenValue, awstest.SessionManagerStandInToken) {
		t.Errorf("plugin argument 1 = %s (%v), want the StartSession answer", args[0], err)
	}
	var input struct {
		Target, DocumentName string
		Parameters           map[string][]string
	}
	if err := json.Unmarshal([]byte(args[4]), &input); err != nil || !reflect.DeepEqual(input, asked) {
		t.Errorf("plugin argument 5 = %s, want the StartSession input %s", args[4], starts[0].JSON)
	}
	w.checkSessionsEnded(t, runs)
	if got := w.proxy.CallsFor("ssm", "TerminateSession"); len(got) != 1 || got[0].Params.Get("SessionId") != answered.SessionId {
		t.Errorf("TerminateSession calls = %v, want one for %s", got, answered.SessionId)
	}
	checkSessionManagerPolicy(t, w.proxy.Calls())

	amis := artifactAMIs(t, res, "ami-ebs.hardened")
	w.expectNoLeaks(t, base, w.artifactKeep(t, amis)...)
	w.removeAMIs(t, amis)
}

// TestSessionManagerFailureAndInterrupt: a failing provisioner and a
// Ctrl-C while the session is up end the session, stop the plugin and
// leave nothing in AWS.
func TestSessionManagerFailureAndInterrupt(t *testing.T) {
	w := theWorld(t)
	tests := []struct {
		name      string
		commands  []string
		interrupt string
	}{
		{name: "failing provisioner", commands: []string{"echo about to fail", "exit 3"}},
		{name: "interrupt", commands: []string{"sleep 120"}, interrupt: "is reachable on 127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := w.pluginRuns(t, nil)
			base := w.baseline(t)
			res := w.run(t, runSpec{
				Template:    w.ssmTemplate(t, tc.commands),
				Fault:       awstest.SessionManagerStandIn(),
				InterruptOn: tc.interrupt,
			})
			if res.ExitCode == 0 {
				t.Fatalf("packer build succeeded:\n%s", res.Output())
			}
			if tc.interrupt != "" && !res.Interrupted {
				t.Fatalf("the build was not interrupted:\n%s", res.Output())
			}
			if len(packertest.ArtifactIDs(res.Stdout)) != 0 {
				t.Errorf("artifacts %v", packertest.ArtifactIDs(res.Stdout))
			}
			runs := w.pluginRuns(t, before)
			if len(runs) != 1 || len(w.proxy.CallsFor("ssm", "StartSession")) != 1 {
				t.Fatalf("plugin runs %v, StartSession calls %v; want one session", runs, w.proxy.CallsFor("ssm", "StartSession"))
			}
			w.checkSessionsEnded(t, runs)
			w.expectNoLeaks(t, base)
		})
	}
}

// TestSessionManagerPluginMissing: without session-manager-plugin on PATH
// the build stops before anything is created, naming the executable.
func TestSessionManagerPluginMissing(t *testing.T) {
	w := theWorld(t)
	empty := t.TempDir()
	res := w.run(t, runSpec{
		Template: w.ssmTemplate(t, nil),
		Fault:    awstest.SessionManagerStandIn(),
		Env:      []string{"PATH=" + empty + string(os.PathListSeparator) + pathWithout(os.Getenv("PATH"), "session-manager-plugin")},
	})
	if res.ExitCode == 0 {
		t.Fatalf("packer build succeeded without the plugin:\n%s", res.Output())
	}
	mustContain(t, "packer output", res.Output(), "session-manager-plugin not found on PATH")
	for _, a := range w.proxy.Actions() {
		switch a {
		case "ec2:CreateKeyPair", "ec2:CreateSecurityGroup", "ec2:RunInstances", "ssm:StartSession":
			t.Errorf("%s was called although the plugin is missing", a)
		}
	}
}

// pathWithout returns path without the directories that hold name.
func pathWithout(path, name string) string {
	var keep []string
	for _, d := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			continue
		}
		keep = append(keep, d)
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

// checkSessionManagerPolicy checks the ami-ebs policy together with the
// Session Manager policy, every action of which the build needs (see
// checkBesidePolicy).
func checkSessionManagerPolicy(t *testing.T, calls []awstest.Call) {
	t.Helper()
	checkBesidePolicy(t, calls, "ami-builder-session-manager-policy.json", nil, nil)
}
