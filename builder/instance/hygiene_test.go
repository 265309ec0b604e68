//go:build unix

package instance

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// hygieneTree is a root file system with everything the hygiene rules are
// about, and things that look like them but must stay.
var hygieneTree = map[string]string{
	"etc/ssh/ssh_host_ed25519_key":          "-----BEGIN OPENSSH PRIVATE" + " KEY-----\nx\n",
	"etc/ssh/ssh_host_ed25519_key.pub":      "ssh-ed25519 AAAAhost root@vm\n",
	"etc/ssh/sshd_config":                   "PermitRootLogin no\n",
	"root/.ssh/authorized_keys":             "ssh-ed25519 BUILDKEY packer_build\n",
	"home/ops/.ssh/authorized_keys":         "ssh-rsa OTHERKEY ops@example\nssh-ed25519 BUILDKEY packer_build\n",
	"home/ops/.bash_history":                "aws configure\n",
	"home/ops/.python_history":              "import os\n",
	"root/.bash_history":                    "history\n",
	"home/ops/notes.txt":                    "keep me\n",
	"etc/machine-id":                        "0123456789abcdef0123456789abcdef\n",
	"var/lib/dbus/machine-id":               "0123456789abcdef0123456789abcdef\n",
	"var/lib/systemd/random-seed":           "seed",
	"etc/ssl/private/server.key":            "-----BEGIN RSA PRIVATE" + " KEY-----\nx\n",
	"etc/ssl/certs/ca.pem":                  "-----BEGIN CERTIFICATE-----\nx\n",
	"etc/pki/tls-ca-bundle.pem":             "-----BEGIN CERTIFICATE-----\nx\n",
	"opt/app/id_rsa":                        "-----BEGIN OPENSSH PRIVATE" + " KEY-----\nx\n",
	"opt/app/id_rsa.pub":                    "ssh-rsa AAAAapp app\n",
	"opt/app/keystore.jks":                  "\xfe\xed\xfe\xed",
	"root/.gnupg/secring.gpg":               "\x95\x01\x02",
	"etc/apt/trusted.gpg.d/debian.gpg":      "\x99\x01\x02",
	"usr/share/doc/example/test-key.pem":    "-----BEGIN PRIVATE" + " KEY-----\nx\n",
	"usr/local/etc/app.pem":                 "-----BEGIN EC PRIVATE" + " KEY-----\nx\n",
	"srv/web/.viminfo":                      "x",
	"var/log/app.log":                       "log\n",
	"tmp/.keep-the-dir-but-not-its-content": "x",
}

// TestCleanImage runs copy mode's hygiene on a tree with the local shell,
// as the script does in the image it made, once with every default and
// once keeping everything.
func TestCleanImage(t *testing.T) {
	gone := []string{
		"etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub",
		"root/.ssh/authorized_keys",
		"home/ops/.bash_history", "home/ops/.python_history", "root/.bash_history", "srv/web/.viminfo",
		"var/lib/dbus/machine-id", "var/lib/systemd/random-seed",
		"etc/ssl/private/server.key", "opt/app/id_rsa", "opt/app/keystore.jks", "root/.gnupg/secring.gpg",
		"usr/local/etc/app.pem",
	}
	tests := []struct {
		name      string
		keep      []string
		wantGone  []string
		wantFiles map[string]string
		wantSaid  []string
	}{
		{
			name:     "defaults",
			wantGone: gone,
			wantFiles: map[string]string{
				"home/ops/.ssh/authorized_keys":      "ssh-rsa OTHERKEY ops@example\n",
				"etc/machine-id":                     "",
				"etc/ssh/sshd_config":                "PermitRootLogin no\n",
				"etc/ssl/certs/ca.pem":               hygieneTree["etc/ssl/certs/ca.pem"],
				"etc/pki/tls-ca-bundle.pem":          hygieneTree["etc/pki/tls-ca-bundle.pem"],
				"opt/app/id_rsa.pub":                 hygieneTree["opt/app/id_rsa.pub"],
				"etc/apt/trusted.gpg.d/debian.gpg":   hygieneTree["etc/apt/trusted.gpg.d/debian.gpg"],
				"usr/share/doc/example/test-key.pem": hygieneTree["usr/share/doc/example/test-key.pem"],
				"home/ops/notes.txt":                 "keep me\n",
				"var/log/app.log":                    "log\n",
			},
			wantSaid: []string{
				"left out the SSH host keys (2 files in /etc/ssh",
				"left out /root/.ssh/authorized_keys, which held only the build's SSH key",
				"removed the build's SSH key from /home/ops/.ssh/authorized_keys",
				"left out /home/ops/.bash_history (history)",
				"emptied /etc/machine-id",
				"left out /etc/ssl/private/server.key (a private key)",
				"left out /root/.gnupg/secring.gpg (a private key)",
				"left out the contents of /tmp and /var/tmp",
			},
		},
		{
			name: "keep everything",
			keep: hygieneRules,
			wantFiles: func() map[string]string {
				m := map[string]string{}
				for k, v := range hygieneTree {
					m[k] = v
				}
				return m
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, body := range hygieneTree {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			said := runCleanImage(t, root, scriptOptions{Source: BundleSourceCopy, ScratchDir: "/mnt", BuildKey: "BUILDKEY", Keep: tc.keep})
			for _, name := range tc.wantGone {
				if _, err := os.Lstat(filepath.Join(root, name)); err == nil {
					t.Errorf("%s is still in the image", name)
				}
			}
			for name, want := range tc.wantFiles {
				got, err := os.ReadFile(filepath.Join(root, name))
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if string(got) != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			// An edited authorized_keys keeps its mode.
			if fi, err := os.Stat(filepath.Join(root, "home/ops/.ssh/authorized_keys")); err == nil && fi.Mode().Perm() != 0o640 {
				t.Errorf("authorized_keys mode %v, want 0640", fi.Mode().Perm())
			}
			for _, w := range tc.wantSaid {
				if !strings.Contains(said, w) {
					t.Errorf("output lacks %q:\n%s", w, said)
				}
			}
			if len(tc.wantSaid) == 0 && strings.TrimSpace(said) != "" {
				t.Errorf("keeping everything, the output is %q", said)
			}
			if strings.Contains(said, "BUILDKEY") {
				t.Errorf("the output names the key itself: %s", said)
			}
		})
	}
}

// runCleanImage runs clean_image of the script for o in root and returns
// what it wrote.
func runCleanImage(t *testing.T, root string, o scriptOptions) string {
	t.Helper()
	s := bundleScript(o)
	// Everything up to the call of copy_image defines functions and
	// variables; call clean_image instead.
	i := strings.LastIndex(s, "copy_image \"$@\" </dev/null")
	if i < 0 {
		t.Fatal("no call of copy_image in the script")
	}
	s = s[:i] + "cd \"$AMI_TEST_ROOT\" && clean_image\n"
	cmd := exec.Command("sh", "-s")
	cmd.Env = append(os.Environ(), "AMI_TEST_ROOT="+root)
	cmd.Stdin = strings.NewReader(s)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("clean_image: %v\n%s", err, out.String())
	}
	return out.String()
}

// TestStopScript stops a stand-in of the bundle script the way stopScript
// does on the instance: by its process group, waiting for its exit trap;
// and before it started, by the marker it finds as it starts.
func TestStopScript(t *testing.T) {
	// The stand-in records itself as copy_image does, then waits on a
	// child, as the script waits on tar; its trap removes what it made.
	const standIn = `set -eu
base="$1/ami-bundle.r1"
trap 'trap "" TERM; rm -f "$base.img" "$base.pid" "$base.stop"' EXIT
trap 'exit 130' TERM
read -r _ _ _ _ pgid _ </proc/$$/stat
echo "$pgid $$" >"$base.pid"
if [ -e "$base.stop" ]; then exit 130; fi
: >"$base.img"
echo started
cat
`
	o := scriptOptions{Source: BundleSourceCopy, RunID: "r1"}

	t.Run("running", func(t *testing.T) {
		dir := t.TempDir()
		o.ScratchDir = dir
		bundle := exec.Command("sh", "-c", standIn, "sh", dir)
		bundle.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		in, err := bundle.StdinPipe() // held open: cat never ends by itself
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		outPipe, err := bundle.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := bundle.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, len("started\n"))
		if _, err := outPipe.Read(line); err != nil || string(line) != "started\n" {
			t.Fatalf("stand-in did not start: %q %v", line, err)
		}
		out, err := exec.Command("sh", "-c", stopScript(o)).CombinedOutput()
		if err != nil {
			t.Fatalf("stop script: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "stopped the bundle script") {
			t.Errorf("stop script said %q", out)
		}
		if err := bundle.Wait(); err == nil {
			t.Error("the stand-in ended with status 0, want it stopped")
		}
		assertEmptyDir(t, dir)
	})

	t.Run("not started yet", func(t *testing.T) {
		dir := t.TempDir()
		o.ScratchDir = dir
		stop := exec.Command("sh", "-c", stopScript(o))
		var out bytes.Buffer
		pipe, err := stop.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		stop.Stderr = &errb
		if err := stop.Start(); err != nil {
			t.Fatal(err)
		}
		// The stop script says when it has left its marker.
		sc := bufio.NewScanner(pipe)
		for sc.Scan() && !strings.Contains(sc.Text(), "waiting for it to see the stop") {
			out.WriteString(sc.Text() + "\n")
		}
		if _, err := os.Stat(filepath.Join(dir, "ami-bundle.r1.stop")); err != nil {
			t.Fatalf("no stop marker once the stop script waits: %v\n%s", err, out.String())
		}
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for sc.Scan() {
				out.WriteString(sc.Text() + "\n")
			}
		}()
		bundle := exec.Command("sh", "-c", standIn, "sh", dir)
		bundle.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if b, err := bundle.CombinedOutput(); err == nil || strings.Contains(string(b), "started") {
			t.Errorf("the stand-in ran although a stop came first: %v %s", err, b)
		}
		<-drained
		if err := stop.Wait(); err != nil {
			t.Fatalf("stop script: %v\n%s%s", err, out.String(), errb.String())
		}
		assertEmptyDir(t, dir)
	})

	t.Run("never started", func(t *testing.T) {
		defer func(w int) { stopStartWait = w }(stopStartWait)
		stopStartWait = 1
		dir := t.TempDir()
		o.ScratchDir = dir
		out, err := exec.Command("sh", "-c", stopScript(o)).CombinedOutput()
		if err != nil {
			t.Fatalf("stop script: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "was not running") {
			t.Errorf("stop script said %q", out)
		}
		assertEmptyDir(t, dir)
	})
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) > 0 {
		t.Errorf("left in the scratch directory: %v", names)
	}
}
