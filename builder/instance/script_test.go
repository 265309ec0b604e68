//go:build unix

package instance

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func TestBundleScriptContent(t *testing.T) {
	tests := []struct {
		name    string
		opts    scriptOptions
		want    []string
		notWant []string
	}{
		{
			name: "copy with excludes",
			opts: scriptOptions{Source: BundleSourceCopy, ScratchDir: "/mnt/", SizeMB: 2048, RunID: "0a1b2c",
				Exclude: []string{"/var/cache/app/", "/home/o'brien/tmp", "/home/*/.cache", "*/.npm"}},
			want: []string{
				"scratch='/mnt'",
				"run='0a1b2c'",
				"size_mb=2048",
				"set -- --anchored --no-wildcards '--exclude=./mnt' '--exclude=./var/cache/app' " +
					`'--exclude=./home/o'\''brien/tmp' --wildcards '--exclude=./home/*/.cache' '--exclude=*/.npm' '--exclude=./tmp/*' '--exclude=./var/tmp/*'`,
				"keep_ssh_host_keys=0", "keep_build_ssh_key=0", "keep_shell_history=0",
				"keep_temp_files=0", "keep_machine_id=0", "keep_private_keys=0",
				"build_key=''",
				"--one-file-system",
				"mount -o bind / \"$src\"",
				"mount -o \"$mount_opts\"",
				"copy_image \"$@\" </dev/null",
			},
			notWant: []string{"source_image </dev/null"},
		},
		{
			name: "copy keeping everything",
			opts: scriptOptions{Source: BundleSourceCopy, ScratchDir: "/media/ephemeral0", BuildKey: "AAAAC3NzaC1lZDI1NTE5AAAA",
				Keep: []string{KeepSSHHostKeys, KeepBuildSSHKey, KeepShellHistory, KeepTempFiles, KeepMachineID, KeepPrivateKeys}},
			want: []string{
				"size_mb=0", "scratch='/media/ephemeral0'", "run='local'",
				"set -- --anchored --no-wildcards '--exclude=./media/ephemeral0'\n",
				"keep_ssh_host_keys=1", "keep_build_ssh_key=1", "keep_shell_history=1",
				"keep_temp_files=1", "keep_machine_id=1", "keep_private_keys=1",
				"build_key='AAAAC3NzaC1lZDI1NTE5AAAA'",
			},
			notWant: []string{"source_image </dev/null", "--wildcards", "./tmp/*"},
		},
		{
			name:    "block device",
			opts:    scriptOptions{Source: "/dev/xvdb"},
			want:    []string{"src='/dev/xvdb'", "blockdev --getsize64", "source_image </dev/null"},
			notWant: []string{"copy_image \"$@\"", "mkfs", "--exclude"},
		},
		{
			name:    "image file with awkward name",
			opts:    scriptOptions{Source: "/tmp/my image;rm -rf /.img"},
			want:    []string{"src='/tmp/my image;rm -rf /.img'"},
			notWant: []string{"mkfs"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := bundleScript(tc.opts)
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("script lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(s, w) {
					t.Errorf("script contains %q", w)
				}
			}
			checkNoSecrets(t, s)
			checkSyntax(t, s)
		})
	}
}

// checkNoSecrets fails when s contains anything that looks like a
// credential or key material, or the values of the AWS credential
// variables of the environment.
func checkNoSecrets(t *testing.T, s string) {
	t.Helper()
	for _, w := range []string{"PRIVATE KEY", "CERTIFICATE", "AWS_SECRET", "AWS_ACCESS", "AWS_SESSION", "aws_secret", "X-Amz-", "AKIA"} {
		if strings.Contains(s, w) {
			t.Errorf("script contains %q", w)
		}
	}
	for _, k := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"} {
		if v := os.Getenv(k); len(v) > 4 && strings.Contains(s, v) {
			t.Errorf("script contains the value of %s", k)
		}
	}
}

// checkSyntax parses s with every POSIX shell available (sh -n).
func checkSyntax(t *testing.T, s string) {
	t.Helper()
	shells := 0
	for _, sh := range []string{"sh", "dash", "bash", "busybox"} {
		p, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		args := []string{"-n"}
		if sh == "busybox" {
			args = []string{"sh", "-n"}
		}
		cmd := exec.Command(p, args...)
		cmd.Stdin = strings.NewReader(s)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
		shells++
	}
	if shells == 0 {
		t.Fatal("no POSIX shell found to check the script")
	}
}

func TestBundleCommand(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"", "sh -s"},
		{"sudo -n", "sudo -n sh -s"},
		{"  doas ", "doas sh -s"},
	}
	for _, tc := range tests {
		if got := bundleCommand(tc.prefix); got != tc.want {
			t.Errorf("bundleCommand(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// TestBundleScriptStreamsFile runs the script of the file mode with the
// local shell, as the build instance would, and checks its output: the size
// header, then the gzip-compressed image, and nothing else.
func TestBundleScriptStreamsFile(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "root image.img")
	want := testImage(3<<20 + 12345)
	if err := os.WriteFile(img, want, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		src      string
		wantExit bool
		wantErr  string
	}{
		{name: "image file", src: img},
		{name: "missing", src: filepath.Join(dir, "nope.img"), wantExit: true, wantErr: "neither a block device nor a regular file"},
		{name: "empty", src: emptyFile(t, dir), wantExit: true, wantErr: "1 byte to 10 GiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", bundleCommand(""))
			cmd.Stdin = strings.NewReader(bundleScript(scriptOptions{Source: tc.src}))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tc.wantExit {
				if err == nil {
					t.Fatalf("script succeeded, want a failure; stderr: %s", stderr.String())
				}
				if !strings.Contains(stderr.String(), tc.wantErr) {
					t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
				}
				if stdout.Len() != 0 {
					t.Errorf("failed script wrote %d bytes to stdout", stdout.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("script: %v\n%s", err, stderr.String())
			}
			br := bufio.NewReader(&stdout)
			size, err := readSizeHeader(br)
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(want)) {
				t.Errorf("size header %d, want %d", size, len(want))
			}
			zr, err := gzip.NewReader(br)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("streamed image differs from the file (%d bytes, want %d)", len(got), len(want))
			}
			if !strings.Contains(stderr.String(), "streaming") {
				t.Errorf("no progress message on stderr: %q", stderr.String())
			}
		})
	}
}

func emptyFile(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "empty.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testImage returns n bytes: a stretch of zeros (as in a sparse file
// system image), then pseudo-random data.
func testImage(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := n / 3; i < n; i++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// TestBundleExcludeMatches runs tar with the exclusions the script passes
// it on a tree, as copy mode does from the root, and checks what is left
// out: literal paths, patterns and the temporary files.
func TestBundleExcludeMatches(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{
		"home/a/.cache/x/f", "home/b/.npm/f", "srv/.npm/f", ".npm", "var/cache/app/f", "var/cache/apple",
		"tmp/junk", "var/tmp/junk", "mnt/ami-bundle.img", "keep/f", "home/a/notes",
	} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := bundleScript(scriptOptions{Source: BundleSourceCopy, ScratchDir: "/mnt",
		Exclude: []string{"/var/cache/app", "/home/*/.cache", "*/.npm"}})
	var setLine string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "set -- --anchored") {
			setLine = l
		}
	}
	if setLine == "" {
		t.Fatal("no tar options in the script")
	}
	cmd := exec.Command("sh", "-c", setLine+"\ncd \"$0\" && tar -c \"$@\" -f - . | tar -t", root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasSuffix(l, "/") {
			got = append(got, l)
		}
	}
	sort.Strings(got)
	want := []string{"./home/a/notes", "./keep/f", "./var/cache/apple"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("files tar copies: %q, want %q", got, want)
	}
	for _, dir := range []string{"./tmp/", "./var/tmp/", "./home/a/"} {
		if !strings.Contains(string(out), dir+"\n") {
			t.Errorf("tar left out the directory %s itself", dir)
		}
	}
}

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestBundleScriptGolden pins the whole script the instance runs, for the
// default copy mode and for a block device source. The script is what a
// user reads to know what runs on the instance as root: a change to it
// must be deliberate (run with -update) and reviewed as a diff of these
// files.
func TestBundleScriptGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		opts scriptOptions
	}{
		{"script-copy.golden.sh", scriptOptions{Source: BundleSourceCopy, ScratchDir: "/mnt", SizeMB: 4096, RunID: "0a1b2c3d",
			Exclude: []string{"/var/cache/app/", "/home/*/.cache"}, BuildKey: "AAAAC3NzaC1lZDI1NTE5AAAAIGolden"}},
		{"script-device.golden.sh", scriptOptions{Source: "/dev/xvdb", RunID: "0a1b2c3d"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := bundleScript(tc.opts)
			path := filepath.Join("testdata", tc.file)
			if *updateGolden {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run the test with -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("the bundle script for %s changed; if that is deliberate, run with -update and review the diff", tc.file)
			}
		})
	}
}
