//go:build unix

package packertest

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePacker writes an executable shell script standing in for packer and
// returns a Packer that runs it in a temp dir.
func fakePacker(t *testing.T, script string) *Packer {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-packer")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Packer{
		Binary:    bin,
		Dir:       dir,
		PluginDir: filepath.Join(dir, "plugins"),
		ConfigDir: filepath.Join(dir, "config"),
		HomeDir:   filepath.Join(dir, "home"),
		Env:       []string{"FROM_PACKER_ENV=1"},
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name            string
		script          string
		opts            RunOptions
		wantExit        int
		wantStdout      []string
		wantStderr      []string
		wantOutput      []string
		wantInterrupted bool
		wantTimedOut    bool
	}{
		{
			name:       "exit code and streams",
			script:     "echo out-line; echo err-line >&2; printf 'no-newline'; exit 3\n",
			wantExit:   3,
			wantStdout: []string{"out-line\n", "no-newline\n"},
			wantStderr: []string{"err-line\n"},
			wantOutput: []string{"out-line\n", "err-line\n", "no-newline\n"},
		},
		{
			name: "environment is isolated and extended",
			script: `echo "home=$HOME plugins=$PACKER_PLUGIN_PATH cfg=$PACKER_CONFIG_DIR"
echo "log=$PACKER_LOG path=$PACKER_LOG_PATH"
echo "profile=[$AWS_PROFILE] token=[$PACKER_GITHUB_API_TOKEN]"
echo "extra=$FROM_PACKER_ENV,$FROM_RUN_ENV"
echo "args=$*"; cat "$2"
`,
			opts: RunOptions{
				Args:     []string{"build"},
				Template: "source \"x\" \"y\" {}\n",
				Env:      []string{"FROM_RUN_ENV=2"},
			},
			wantStdout: []string{"/home plugins=", "/plugins cfg=", "log=1 path=", "packer-01.log",
				"profile=[] token=[]", "extra=1,2", "args=build template.pkr.hcl", `source "x" "y" {}`},
		},
		{
			name:            "interrupt on marker",
			script:          "trap 'echo got-interrupt; exit 130' INT\necho starting\necho '==> marker: ready'\nwhile :; do sleep 0.05; done\n",
			opts:            RunOptions{InterruptOn: "marker: ready", Timeout: 20 * time.Second},
			wantExit:        130,
			wantStdout:      []string{"got-interrupt"},
			wantInterrupted: true,
		},
		{
			name:   "interrupt on channel",
			script: "trap 'echo got-interrupt; exit 130' INT\necho ready-for-signal\nwhile :; do sleep 0.05; done\n",
			opts: func() RunOptions {
				ready := make(chan struct{})
				return RunOptions{
					Interrupt: ready,
					Stdout:    closeOnLine{marker: "ready-for-signal", ch: ready, once: new(sync.Once)},
					Timeout:   20 * time.Second,
				}
			}(),
			wantExit:        130,
			wantStdout:      []string{"got-interrupt"},
			wantInterrupted: true,
		},
		{
			name:         "timeout interrupts",
			script:       "echo waiting\nsleep 30\n",
			opts:         RunOptions{Timeout: 300 * time.Millisecond},
			wantExit:     -1,
			wantTimedOut: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_PROFILE", "real-account")
			t.Setenv("PACKER_GITHUB_API_TOKEN", "secret")
			p := fakePacker(t, tc.script)
			res, err := p.Run(context.Background(), tc.opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != tc.wantExit {
				t.Errorf("exit code = %d, want %d; output:\n%s", res.ExitCode, tc.wantExit, res.Output())
			}
			for _, s := range tc.wantStdout {
				if !strings.Contains(res.Stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, res.Stdout)
				}
			}
			for _, s := range tc.wantStderr {
				if !strings.Contains(res.Stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, res.Stderr)
				}
			}
			for _, s := range tc.wantOutput {
				if !strings.Contains(res.Output(), s) {
					t.Errorf("combined output lacks %q:\n%s", s, res.Output())
				}
			}
			if res.Interrupted != tc.wantInterrupted {
				t.Errorf("Interrupted = %v, want %v", res.Interrupted, tc.wantInterrupted)
			}
			if res.TimedOut != tc.wantTimedOut {
				t.Errorf("TimedOut = %v, want %v", res.TimedOut, tc.wantTimedOut)
			}
		})
	}
}

func TestArtifactIDs(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want map[string][]string
	}{
		{
			name: "one artifact among ui lines",
			out: "1700000000,,ui,say,==> ami-ebs.demo: Creating AMI\n" +
				"1700000001,ami-ebs.demo,artifact-count,1\n" +
				"1700000001,ami-ebs.demo,artifact,0,builder-id,amiforge.ami-ebs\n" +
				"1700000001,ami-ebs.demo,artifact,0,id,us-east-1:ami-0123\n" +
				"1700000001,ami-ebs.demo,artifact,0,string,AMIs were created:\\nus-east-1: ami-0123\n",
			want: map[string][]string{"ami-ebs.demo": {"us-east-1:ami-0123"}},
		},
		{
			name: "escaped comma in id",
			out:  "1,ami-ebs.a,artifact,0,id,us-east-1:ami-1%!(PACKER_COMMA)us-west-2:ami-2\n",
			want: map[string][]string{"ami-ebs.a": {"us-east-1:ami-1,us-west-2:ami-2"}},
		},
		{
			name: "human output has none",
			out:  "==> Builds finished. The artifacts of successful builds are:\n--> ami-ebs.demo: AMIs were created:\n",
			want: map[string][]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ArtifactIDs(tc.out); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ArtifactIDs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPackerPath(t *testing.T) {
	p, err := PackerPath()
	if err != nil {
		t.Fatalf("PackerPath: %v", err)
	}
	if !filepath.IsAbs(p) || filepath.Base(p) != "packer" {
		t.Fatalf("PackerPath = %q, want an absolute .../bin/packer", p)
	}
	pk := &Packer{Binary: p, Dir: t.TempDir()}
	pk.PluginDir, pk.ConfigDir, pk.HomeDir = pk.Dir, pk.Dir, pk.Dir
	res := pk.RunT(t, RunOptions{Args: []string{"version"}, Timeout: time.Minute})
	if res.ExitCode != 0 || !strings.HasPrefix(res.Stdout, "Packer v") {
		t.Fatalf("packer version: exit %d, output %q", res.ExitCode, res.Output())
	}
}

func TestHostAWSEnv(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", "config"), []byte("[default]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("AWS_PROFILE", "acc")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/custom/credentials")
	env := HostAWSEnv()
	for _, want := range []string{
		"AWS_PROFILE=acc",
		"AWS_SHARED_CREDENTIALS_FILE=/custom/credentials",
		"AWS_CONFIG_FILE=" + filepath.Join(home, ".aws", "config"),
	} {
		if !slices.Contains(env, want) {
			t.Errorf("HostAWSEnv() = %q, lacks %q", env, want)
		}
	}
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			t.Errorf("HostAWSEnv() passes on %q", kv)
		}
	}
}

// closeOnLine closes ch the first time a write contains marker.
type closeOnLine struct {
	marker string
	ch     chan struct{}
	once   *sync.Once
}

func (c closeOnLine) Write(b []byte) (int, error) {
	if strings.Contains(string(b), c.marker) {
		c.once.Do(func() { close(c.ch) })
	}
	return len(b), nil
}
