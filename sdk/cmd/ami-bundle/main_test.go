//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// The bundle package's copy of the reference vectors.
const vectors = "../../bundle/testdata/vectors"

func vec(parts ...string) string { return filepath.Join(append([]string{vectors}, parts...)...) }

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (r result) must(t *testing.T, code int, stderrHas ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stderrHas {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr %q lacks %q", r.stderr, s)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnbundleVectors(t *testing.T) {
	tests := []struct {
		name, manifest, image, entry string
	}{
		{"v1-simple", "root.img.manifest.xml", "root.img", "root.img"},
		{"v2-fields", "web-2026.11.manifest.xml", "disk.raw", "web-2026.11"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			r := runCLI(t, "unbundle", "-k", vec("user-key.pem"), "-m", vec(tc.name, "bundle", tc.manifest),
				"-s", vec(tc.name, "bundle"), "-d", dst, "--cert", vec("user-cert.pem"))
			r.must(t, 0, "100%")
			got := readFile(t, filepath.Join(dst, tc.entry))
			if !bytes.Equal(got, readFile(t, vec(tc.name, "image", tc.image))) {
				t.Error("unbundled image differs from the vector's image")
			}
			if !strings.Contains(r.stdout, "signature verified") {
				t.Errorf("stdout %q", r.stdout)
			}
			entries, _ := os.ReadDir(dst)
			if len(entries) != 1 {
				t.Errorf("%d files in the destination, want 1", len(entries))
			}
		})
	}
}

func TestVerifyVectors(t *testing.T) {
	tests := []struct {
		name, manifest, cert string
		code                 int
		want                 string
	}{
		{"v1-simple", "root.img.manifest.xml", "user-cert.pem", 0, ""},
		{"v2-fields", "web-2026.11.manifest.xml", "user-cert.pem", 0, ""},
		{"v1-simple", "root.img.manifest.xml", "ec2-cert.pem", 1, "signature does not verify"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.cert, func(t *testing.T) {
			// -s defaults to the manifest's directory.
			r := runCLI(t, "verify", "-k", vec("user-key.pem"), "-c", vec(tc.cert), "-m", vec(tc.name, "bundle", tc.manifest))
			r.must(t, tc.code, tc.want)
			if tc.code == 0 && !strings.Contains(r.stdout, "is intact") {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
}

func TestVerifyCorruptPart(t *testing.T) {
	dir := t.TempDir()
	src := vec("v2-fields", "bundle")
	for _, n := range []string{"web-2026.11.manifest.xml", "web-2026.11.part.0"} {
		b := readFile(t, filepath.Join(src, n))
		if strings.HasSuffix(n, ".part.0") {
			b[1000] ^= 0x40
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, "verify", "-k", vec("user-key.pem"), "-c", vec("user-cert.pem"), "-m", filepath.Join(dir, "web-2026.11.manifest.xml"))
	r.must(t, 1, "part 0 (web-2026.11.part.0): SHA-1")
	// unbundle leaves no partial image behind.
	dst := t.TempDir()
	r = runCLI(t, "unbundle", "-k", vec("user-key.pem"), "-m", filepath.Join(dir, "web-2026.11.manifest.xml"), "-s", dir, "-d", dst)
	r.must(t, 1, "SHA-1")
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Errorf("destination holds %d files after a failure", len(entries))
	}
}

func TestUnbundleExistingDestination(t *testing.T) {
	// The v1 vector's manifest names its image root.img.
	manifest := vec("v1-simple", "bundle", "root.img.manifest.xml")
	image := readFile(t, vec("v1-simple", "image", "root.img"))
	tests := []struct {
		name string
		// prepare puts something at path; victim is a file outside the
		// destination that must not change.
		prepare func(t *testing.T, path, victim string)
	}{
		{"regular file", func(t *testing.T, path, victim string) {
			if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink", func(t *testing.T, path, victim string) {
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"dangling symlink", func(t *testing.T, path, victim string) {
			if err := os.Symlink(victim+".missing", path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			path := filepath.Join(dst, "root.img")
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, path, victim)
			before, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"unbundle", "-k", vec("user-key.pem"), "-m", manifest, "-s", vec("v1-simple", "bundle"), "-d", dst}

			r := runCLI(t, args...)
			r.must(t, 1, path, "already exists", "--force")
			after, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if after.Mode() != before.Mode() || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("%s changed: %v %d bytes, was %v %d bytes", path, after.Mode(), after.Size(), before.Mode(), before.Size())
			}
			if entries, _ := os.ReadDir(dst); len(entries) != 1 {
				t.Errorf("destination holds %d files after a refusal, want 1", len(entries))
			}

			runCLI(t, append(args, "--force")...).must(t, 0)
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || !bytes.Equal(readFile(t, path), image) {
				t.Errorf("with --force, %s is %v and not the image", path, fi.Mode())
			}
			if got := readFile(t, victim); string(got) != "precious" {
				t.Error("unbundle wrote through a symlink")
			}
		})
	}
}

func TestBundleRoundTrip(t *testing.T) {
	dir := t.TempDir()
	img := make([]byte, 3<<20)
	if _, err := rand.Read(img[:200<<10]); err != nil {
		t.Fatal(err)
	}
	copy(img[2<<20:], bytes.Repeat([]byte("text "), 1000))
	imgPath := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(imgPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	r := runCLI(t, "bundle", "-i", imgPath, "-c", vec("user-cert.pem"), "-k", vec("user-key.pem"),
		"-u", "1234-5678-9012", "-r", "arm64", "--ec2cert", vec("ec2-cert.pem"), "-d", out, "-p", "web-1",
		"--kernel", "aki-1a2b3c4d", "--ramdisk", "ari-5e6f7a8b", "--productcodes", "ABC,DEF",
		"-B", "root=/dev/sda1,ami=sda1", "--batch")
	r.must(t, 0, "bundling web-1: 100%")
	for _, want := range []string{"Created " + filepath.Join(out, "web-1.part.0"), "Created " + filepath.Join(out, "web-1.manifest.xml")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout %q lacks %q", r.stdout, want)
		}
	}
	raw := readFile(t, filepath.Join(out, "web-1.manifest.xml"))
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Architecture != "arm64" || m.User != "123456789012" || m.KernelID != "aki-1a2b3c4d" || m.RamdiskID != "ari-5e6f7a8b" ||
		len(m.ProductCodes) != 2 || len(m.BlockDeviceMappings) != 2 || m.Size != int64(len(img)) {
		t.Errorf("manifest fields: %+v", m)
	}
	if !bytes.Contains(raw, []byte("<mapping><virtual>ami</virtual><device>sda1</device></mapping><mapping><virtual>root</virtual>")) {
		t.Errorf("mappings not sorted: %s", raw)
	}

	dst := filepath.Join(dir, "restored")
	runCLI(t, "unbundle", "-k", vec("user-key.pem"), "-m", filepath.Join(out, "web-1.manifest.xml"), "-s", out, "-d", dst).must(t, 0)
	restored := filepath.Join(dst, "web-1")
	if !bytes.Equal(readFile(t, restored), img) {
		t.Fatal("unbundled image differs")
	}
	// Zeros were written as holes (every common Linux file system,
	// tmpfs included, supports them): about 200 KiB random and 5 KB text
	// are data.
	var st syscall.Stat_t
	if err := syscall.Stat(restored, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("unbundled file uses %d bytes of disk for %d bytes with 2.8 MiB of zeros", st.Blocks*512, len(img))
	}
	runCLI(t, "verify", "-k", vec("user-key.pem"), "-c", vec("user-cert.pem"), "-m", filepath.Join(out, "web-1.manifest.xml")).must(t, 0)
}

func TestUsageErrors(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	full := []string{"bundle", "-i", img, "-c", vec("user-cert.pem"), "-k", vec("user-key.pem"), "-u", "123456789012",
		"-r", "x86_64", "--ec2cert", vec("ec2-cert.pem"), "-d", t.TempDir()}
	without := func(flag string) []string {
		var out []string
		for i := 0; i < len(full); i++ {
			if full[i] == flag {
				i++
				continue
			}
			out = append(out, full[i])
		}
		return out
	}
	with := func(flag, value string) []string {
		out := append([]string(nil), full...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
			}
		}
		return out
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "usage: ami-bundle <command>"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", []string{"bundle", "-z"}, 2, "flag provided but not defined: -z"},
		{"missing image", without("-i"), 2, "missing -i/--image"},
		{"missing cert", without("-c"), 2, "missing -c/--cert"},
		{"missing key", without("-k"), 2, "missing -k/--privatekey"},
		{"missing user", without("-u"), 2, "missing -u/--user"},
		{"missing arch", without("-r"), 2, "missing -r/--arch"},
		{"missing EC2 cert", without("--ec2cert"), 2, "missing --ec2cert"},
		{"bad arch", with("-r", "sparc"), 2, `-r/--arch "sparc"`},
		{"bad mapping", append(full, "-B", "ami"), 2, "-B/--block-device-mapping"},
		{"bad account", with("-u", "42"), 1, "invalid User"},
		{"image missing", with("-i", "/nonexistent/img"), 1, "no such file"},
		{"empty image", with("-i", os.DevNull), 1, "invalid Size"},
		{"key of another cert", with("-k", vec("ec2-key.pem")), 1, "does not belong to UserCert"},
		{"extra argument", append(full, "extra"), 2, `unexpected argument "extra"`},
		{"unbundle missing manifest", []string{"unbundle", "-k", vec("user-key.pem")}, 2, "missing -m/--manifest"},
		{"verify missing cert", []string{"verify", "-k", vec("user-key.pem"), "-m", "x"}, 2, "missing -c/--cert"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runCLI(t, tc.args...).must(t, tc.code, tc.want)
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	r := runCLI(t, "help")
	r.must(t, 0)
	for _, c := range []string{"bundle", "unbundle", "verify"} {
		if !strings.Contains(r.stdout, "  "+c+" ") {
			t.Errorf("help lacks %s: %s", c, r.stdout)
		}
	}
	r = runCLI(t, "bundle", "-h")
	r.must(t, 0, "-i, --image file", "--ec2cert file", "-B, --block-device-mapping mappings")
	runCLI(t, "version").must(t, 0)
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	now := time.Unix(0, 0)
	p := newProgress(&b, "x")
	p.now = func() time.Time { return now }
	for i := int64(0); i <= 10; i++ {
		p.update(i<<20, 10<<20)
		now = now.Add(time.Second)
	}
	want := "x:  20% (2.0 MiB of 10.0 MiB)\nx:  40% (4.0 MiB of 10.0 MiB)\nx:  60% (6.0 MiB of 10.0 MiB)\nx:  80% (8.0 MiB of 10.0 MiB)\nx: 100% (10.0 MiB of 10.0 MiB)\n"
	if b.String() != want {
		t.Errorf("progress output:\n%s\nwant:\n%s", b.String(), want)
	}
}
