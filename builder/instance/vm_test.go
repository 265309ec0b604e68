//go:build unix

package instance

// Copy mode on a real Linux machine: a Debian VM under qemu (sdk/vmtest),
// booted the way that broke earlier versions of the script. These tests
// run with `make test-vm` (AMI_VM_TESTS=1).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/crypto/ssh"

	"github.com/amiforge/packer-plugin-ami/sdk/vmtest"
)

// manyFiles is more small files than the inodes mkfs gives a file system
// sized for the bytes in use.
const manyFiles = 70000

// TestVMCopyMode runs the copy-mode script on a VM whose kernel mounted the
// root itself (no initramfs: /proc/mounts says /dev/root), with many small
// files, a scratch volume mounted at /mnt as an instance-store volume is,
// and everything the hygiene rules leave out; then reads the image it
// streamed with debugfs on the host.
func TestVMCopyMode(t *testing.T) {
	vmtest.SkipUnlessEnabled(t)
	img := vmtest.ImageT(t)
	m := vmtest.BootT(t, img, vmtest.BootOptions{Bus: vmtest.BusNVMe, NoInitrd: true, ExtraDisksMiB: []int{3072}})

	buildKey := newBuildKey(t)
	machineID := strings.TrimSpace(vmtest.RunT(t, m, "cat /etc/machine-id"))
	vmtest.RunT(t, m, strings.Join([]string{
		"set -e",
		"grep -q '^/dev/root / ' /proc/mounts",
		"mkfs.ext4 -q /dev/disk/by-id/virtio-extra1",
		"mount /dev/disk/by-id/virtio-extra1 /mnt",
		// Enough bytes that the image is over 512 MiB, where mkfs gives
		// one inode per 16 KiB, and more files than that makes inodes.
		"fallocate -l 200M /srv/big",
		"mkdir -p /srv/many && cd /srv/many && seq 1 " + strconv.Itoa(manyFiles) + " | xargs touch && cd /",
		"echo 'aws s3 ls' > /root/.bash_history",
		"mkdir -p /etc/ssl/private && printf -- '-----BEGIN PRIVATE%sKEY-----\\nx\\n' ' ' > /etc/ssl/private/app.key",
		"echo junk > /tmp/junk && echo junk > /var/tmp/junk",
		"echo " + shellQuote(buildKey.line) + " >> /home/admin/.ssh/authorized_keys",
	}, "\n"))
	rootUUID := strings.TrimSpace(vmtest.RunT(t, m, "blkid -o value -s UUID /dev/nvme0n1"))
	if rootUUID != img.UUID {
		t.Fatalf("root UUID on the VM %q, want the image's %q", rootUUID, img.UUID)
	}

	script := bundleScript(scriptOptions{Source: BundleSourceCopy, ScratchDir: "/mnt", RunID: "vmtest", BuildKey: buildKey.body})
	image := filepath.Join(t.TempDir(), "image")
	stderr := streamScript(t, m, script, image)
	t.Logf("bundle script:\n%s", stderr)
	if stray := changedOffRoot(stderr); len(stray) > 0 {
		t.Errorf("tar saw files change outside the root file system; it walked into a mount: %q", stray)
	}

	// Nothing is left on the machine.
	if out := vmtest.RunT(t, m, "losetup -a; grep ami-bundle /proc/mounts || true; ls -A /mnt | grep -v lost+found || true"); strings.TrimSpace(out) != "" {
		t.Errorf("left on the machine after the script: %s", out)
	}

	// An image too small for the root: the copy fails with a short
	// report that says why, and cleans up.
	small := bundleScript(scriptOptions{Source: BundleSourceCopy, ScratchDir: "/mnt", RunID: "small", SizeMB: 100})
	var out, errb bytes.Buffer
	err := m.Exec(context.Background(), "root", "sh -s", strings.NewReader(small), &out, &errb)
	if err == nil {
		t.Errorf("the copy into a 100 MiB image succeeded")
	}
	if out.Len() > 0 {
		t.Errorf("the failed copy wrote %d bytes to standard output", out.Len())
	}
	msg := errb.String()
	for _, w := range []string{"bundle: copying / failed", "the image ran out of space; set bundle_size_mb larger than 100"} {
		if !strings.Contains(msg, w) {
			t.Errorf("failed copy's output lacks %q:\n%s", w, msg)
		}
	}
	if n := strings.Count(msg, "\n"); n > 40 {
		t.Errorf("the failed copy wrote %d lines; want a short report:\n%s", n, msg)
	}
	if left := vmtest.RunT(t, m, "losetup -a; grep ami-bundle /proc/mounts || true; ls -A /mnt | grep -v lost+found || true"); strings.TrimSpace(left) != "" {
		t.Errorf("left on the machine after the failed copy: %s", left)
	}

	sb := superblock(t, image)
	if sb["Filesystem volume name"] != img.Label || sb["Filesystem UUID"] != img.UUID {
		t.Errorf("image label %q UUID %q, want the root's %q %q", sb["Filesystem volume name"], sb["Filesystem UUID"], img.Label, img.UUID)
	}
	if sb["Block size"] != "4096" {
		t.Errorf("image block size %s, want the root's 4096", sb["Block size"])
	}
	if free, _ := strconv.Atoi(sb["Free inodes"]); free < manyFiles/4 {
		t.Errorf("image has %s free inodes of %s; sized without regard to the root's inodes", sb["Free inodes"], sb["Inode count"])
	}
	if n := len(debugfsLs(t, image, "/srv/many")); n != manyFiles {
		t.Errorf("/srv/many has %d entries in the image, want %d", n, manyFiles)
	}

	// The root's own /dev nodes are copied; mount points have the modes
	// they have on the root file system and nothing of their mounts.
	dev := debugfsLs(t, image, "/dev")
	if e, ok := dev["null"]; !ok || !strings.HasPrefix(e.mode, "02") {
		t.Errorf("/dev/null in the image: %+v (want a character device, as on the root file system)", e)
	}
	for _, dir := range []string{"/proc", "/sys", "/dev", "/run", "/tmp"} {
		want, got := debugfsStatMode(t, img.Disk, dir), debugfsStatMode(t, image, dir)
		if got != want {
			t.Errorf("%s has mode %s in the image, want the root's %s", dir, got, want)
		}
	}
	for _, dir := range []string{"/proc", "/sys", "/tmp", "/var/tmp", "/mnt"} {
		if ents := debugfsLs(t, image, dir); len(ents) > 0 {
			t.Errorf("%s is not empty in the image: %v", dir, keys(ents))
		}
	}

	// Hygiene.
	for _, p := range []string{"/root/.bash_history", "/etc/ssl/private/app.key"} {
		if _, ok := debugfsLs(t, image, filepath.Dir(p))[filepath.Base(p)]; ok {
			t.Errorf("%s is in the image", p)
		}
	}
	for name := range debugfsLs(t, image, "/etc/ssh") {
		if strings.HasPrefix(name, "ssh_host_") {
			t.Errorf("/etc/ssh/%s is in the image", name)
		}
	}
	if id := debugfsCat(t, image, "/etc/machine-id"); id != "" {
		t.Errorf("/etc/machine-id in the image is %q (the machine's is %q), want empty", id, machineID)
	}
	ak := debugfsCat(t, image, "/home/admin/.ssh/authorized_keys")
	if strings.Contains(ak, buildKey.body) || !strings.Contains(ak, strings.Fields(img.AuthorizedKey())[1]) {
		t.Errorf("/home/admin/.ssh/authorized_keys in the image:\n%s\nwant the harness key and not the build's", ak)
	}
	for _, w := range []string{"left out the SSH host keys", "left out /root/.bash_history", "left out /etc/ssl/private/app.key (a private key)", "removed the build's SSH key from /home/admin/.ssh/authorized_keys", "emptied /etc/machine-id"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("script output lacks %q", w)
		}
	}
}

// changedOffRoot returns the paths of tar's "file changed as we read it"
// messages in out that lie where the root file system only has mount
// points. A file on the root itself may change while it is copied (the
// journal does), but the copy must never see into /proc, /sys, /dev, /run,
// /tmp or the scratch mount.
func changedOffRoot(out string) []string {
	var stray []string
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, ": file changed as we read it")
		if i < 0 {
			continue
		}
		path := line[:i]
		if j := strings.LastIndex(path, " ./"); j >= 0 {
			path = path[j+1:]
		}
		path = strings.TrimPrefix(path, ".")
		for _, m := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/mnt"} {
			if path == m || strings.HasPrefix(path, m+"/") {
				stray = append(stray, path)
				break
			}
		}
	}
	return stray
}

// streamScript runs script as root on m with `sh -s` and writes the image
// it streams to path; it returns the script's standard error.
func streamScript(t *testing.T, m *vmtest.Machine, script, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		err := m.Exec(ctx, "root", "sh -s", strings.NewReader(script), pw, &stderr)
		pw.CloseWithError(err)
		done <- err
	}()
	br := bufio.NewReader(pr)
	size, err := readSizeHeader(br)
	if err != nil {
		io.Copy(io.Discard, br)
		t.Fatalf("read the size line: %v (script: %v)\n%s", err, <-done, stderr.String())
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, zr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("read the image: %v\n%s", err, stderr.String())
	}
	io.Copy(io.Discard, br)
	if err := <-done; err != nil {
		t.Fatalf("bundle script: %v\n%s", err, stderr.String())
	}
	if n != size {
		t.Fatalf("image of %d bytes, the size line said %d", n, size)
	}
	return stderr.String()
}

type buildKey struct{ body, line string }

// newBuildKey makes an SSH key pair as the build's key.
func newBuildKey(t *testing.T) buildKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	body := base64.StdEncoding.EncodeToString(sp.Marshal())
	return buildKey{body: body, line: "ssh-ed25519 " + body + " packer_build"}
}

// superblock returns the fields of `dumpe2fs -h`.
func superblock(t *testing.T, image string) map[string]string {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", image).Output()
	if err != nil {
		t.Fatalf("dumpe2fs %s: %v", image, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

type dirent struct{ mode string }

// debugfsLs lists dir in an ext4 image (without . and ..): name → entry.
func debugfsLs(t *testing.T, image, dir string) map[string]dirent {
	t.Helper()
	out := debugfs(t, image, "ls -p "+dir)
	m := map[string]dirent{}
	for _, l := range strings.Split(out, "\n") {
		// /ino/mode/uid/gid/name/size/
		f := strings.Split(strings.TrimSpace(l), "/")
		if len(f) < 7 || f[5] == "." || f[5] == ".." || f[5] == "" {
			continue
		}
		m[f[5]] = dirent{mode: f[2]}
	}
	return m
}

// debugfsCat returns a file of an ext4 image, trimmed.
func debugfsCat(t *testing.T, image, path string) string {
	t.Helper()
	return strings.TrimSpace(debugfs(t, image, "cat "+path))
}

// debugfsStatMode returns the permission bits of path in an ext4 image, in
// octal.
func debugfsStatMode(t *testing.T, image, path string) string {
	t.Helper()
	out := debugfs(t, image, "stat "+path)
	i := strings.Index(out, "Mode:")
	if i < 0 {
		t.Fatalf("debugfs stat %s: no mode in %q", path, out)
	}
	return strings.Fields(out[i+len("Mode:"):])[0]
}

func debugfs(t *testing.T, image, request string) string {
	t.Helper()
	cmd := exec.Command("debugfs", "-R", request, image)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs -R %q %s: %v\n%s", request, image, err, errb.String())
	}
	if strings.Contains(errb.String(), "File not found") {
		return ""
	}
	return out.String()
}

func keys(m map[string]dirent) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}

func TestChangedOffRoot(t *testing.T) {
	out := strings.Join([]string{
		"bundle: tar: ./var/log/journal/a3/system.journal: file changed as we read it",
		"bundle: tar: ./proc/1/stat: file changed as we read it",
		"tar: ./run/utmp: file changed as we read it",
		"bundle: tar: ./devices.txt: file changed as we read it",
		"bundle: left out /tmp",
	}, "\n")
	got := changedOffRoot(out)
	want := []string{"/proc/1/stat", "/run/utmp"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("changedOffRoot = %q, want %q", got, want)
	}
}
