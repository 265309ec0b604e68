//go:build linux

package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// The tests in this file boot VMs: they run with AMI_VM_TESTS=1 (make
// test-vm) and then fail, never skip, when the host cannot build or boot.
// They share one cached image and boot as few machines as the assertions
// need.

// TestVM builds (or reuses) the default image and boots it twice: on virtio
// with the initrd and root=LABEL=root, with an extra disk and a taken first
// SSH port; then on NVMe without the initrd. Then a disk that cannot boot.
// The image's disk is the same, byte for byte and by mtime, afterwards.
func TestVM(t *testing.T) {
	SkipUnlessEnabled(t)
	img := ImageT(t)
	t.Logf("image %s: kernel %s", img.Dir, img.KernelVersion)
	before := fingerprint(t, img.Disk)

	var first struct {
		machineID string
		hostKey   ssh.PublicKey
	}
	t.Run("virtio with initrd and root by label", func(t *testing.T) {
		// The first port Boot picks is taken: it must pick another.
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		picked := 0
		orig := pickPort
		pickPort = func() (int, error) {
			if picked++; picked == 1 {
				return taken.Addr().(*net.TCPAddr).Port, nil
			}
			return orig()
		}
		defer func() { pickPort = orig }()

		// The initrd finds the root by its label.
		m := BootT(t, img, BootOptions{Root: "LABEL=" + img.Label, ExtraDisksMiB: []int{64}})
		t.Logf("SSH answered after %s", m.BootTime.Round(100*time.Millisecond))
		if picked < 2 || m.Port == taken.Addr().(*net.TCPAddr).Port {
			t.Errorf("booted on port %d after %d picks; the first (taken) port was %d", m.Port, picked, taken.Addr().(*net.TCPAddr).Port)
		}
		checkHealthy(t, m)
		if got := strings.TrimSpace(RunT(t, m, "findmnt -no SOURCE /")); got != "/dev/vda" {
			t.Errorf("root on %q, want /dev/vda", got)
		}
		checkRootFS(t, m, img, "/dev/vda")

		first.machineID = checkMachineID(t, m)
		first.hostKey = checkHostKey(t, m)

		if got := strings.TrimSpace(RunT(t, m, "whoami")); got != "root" {
			t.Errorf("Run as %q, want root", got)
		}
		out, _, err := m.RunAs(t.Context(), img.User, "whoami && sudo -n true && sudo -n whoami")
		if err != nil || out != "admin\nroot\n" {
			t.Errorf("admin with sudo: %q, %v", out, err)
		}

		// The extra disk: virtio, after the root, with its serial.
		want := strconv.Itoa(64 << 20)
		got := RunT(t, m, "cat /sys/block/vdb/serial; echo; blockdev --getsize64 /dev/vdb; udevadm settle; readlink -f /dev/disk/by-id/virtio-extra1")
		if got != "extra1\n"+want+"\n/dev/vdb\n" {
			t.Errorf("extra disk: got %q, want serial extra1, %s bytes, /dev/disk/by-id/virtio-extra1 -> /dev/vdb", got, want)
		}

		// Pruned, and what the harness needs is still there.
		if got := RunT(t, m, "find /boot /usr/share/doc /var/lib/apt/lists -mindepth 1"); got != "" {
			t.Errorf("not pruned:\n%s", got)
		}
		RunT(t, m, "modinfo -n virtio_net virtio_blk loop xfs virtio-rng >/dev/null")

		// Errors carry the exit status and stderr.
		_, _, err = m.Run(t.Context(), "echo broken >&2; exit 3")
		var exit *ssh.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() != 3 || !strings.Contains(err.Error(), "broken") {
			t.Errorf("failing command: %v", err)
		}
		// Exec streams stdin.
		var stdout bytes.Buffer
		if err := m.Exec(t.Context(), img.User, "wc -c", strings.NewReader("hello"), &stdout, nil); err != nil || strings.TrimSpace(stdout.String()) != "5" {
			t.Errorf("Exec with stdin: %q, %v", stdout.String(), err)
		}
		// Cancelling the context ends a running command: here once it
		// has written its first line.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if err := m.Exec(ctx, "root", "echo started; sleep 600", nil, writerFunc(func(p []byte) (int, error) { cancel(); return len(p), nil }), nil); !errors.Is(err, context.Canceled) {
			t.Errorf("Exec cancelled while running: %v", err)
		}
		if _, _, err := m.Run(ctx, "true"); !errors.Is(err, context.Canceled) {
			t.Errorf("Run with a cancelled context: %v", err)
		}

		// A write in the guest goes to the overlay, not to the image.
		RunT(t, m, "echo changed >/root/marker && echo changed >>/etc/motd && sync")

		pid, dir := m.PID(), m.Dir
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		checkGone(t, pid, m.Overlay)
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Close left %s: %v", dir, err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if !strings.Contains(m.Console(), "Linux version") {
			t.Errorf("the console after Close has no kernel banner:\n%s", m.ConsoleTail(20))
		}
		if _, _, err := m.Run(t.Context(), "true"); err == nil {
			t.Error("Run after Close succeeded")
		}
	})

	t.Run("nvme without initrd", func(t *testing.T) {
		m := BootT(t, img, BootOptions{Bus: BusNVMe, NoInitrd: true})
		t.Logf("SSH answered after %s", m.BootTime.Round(100*time.Millisecond))
		checkHealthy(t, m)
		// The kernel mounted the root itself.
		if got := RunT(t, m, `awk '$2 == "/" { print $1, $3 }' /proc/mounts`); got != "/dev/root ext4\n" {
			t.Errorf("/proc/mounts has / as %q, want /dev/root ext4", got)
		}
		RunT(t, m, "test ! -e /dev/root") // the name has no device node
		checkRootFS(t, m, img, "/dev/nvme0n1")
		// virtio_net came from the pruned root, not from an initrd.
		RunT(t, m, "test -d /sys/module/virtio_net")
		// A fresh overlay of the unchanged image.
		RunT(t, m, "test ! -e /root/marker")
		// Each machine makes its own identity at first boot.
		if id := checkMachineID(t, m); id == first.machineID {
			t.Errorf("both machines have the machine id %s", id)
		}
		if k := checkHostKey(t, m); first.hostKey != nil && bytes.Equal(k.Marshal(), first.hostKey.Marshal()) {
			t.Errorf("both machines have the host key %s", ssh.FingerprintSHA256(k))
		}
	})

	t.Run("qemu exits before SSH", func(t *testing.T) {
		// A disk without a file system: the kernel panics and qemu exits.
		junk := filepath.Join(t.TempDir(), "junk.raw")
		if err := os.WriteFile(junk, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		work := t.TempDir()
		ctx, cancel := context.WithTimeout(t.Context(), BootTimeout)
		defer cancel()
		m, err := Boot(ctx, img, BootOptions{Disk: junk, Bus: BusNVMe, NoInitrd: true, WorkDir: work, Log: t.Output()})
		if err == nil {
			m.Close()
			t.Fatal("booted a disk without a file system")
		}
		for _, want := range []string{"qemu exited", "before SSH answered", "Kernel panic", junk} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
		if left, _ := os.ReadDir(work); len(left) > 0 {
			t.Errorf("the failed boot left %v", left)
		}
	})

	if after := fingerprint(t, img.Disk); after != before {
		t.Errorf("the image's disk changed: %s, was %s", after, before)
	}
}

// qemu does not outlive the process that started it, even when that process
// is killed and cannot run Close: a child test process starts qemu (paused,
// no guest), reports its PID and is killed.
func TestQemuDiesWithItsStarter(t *testing.T) {
	SkipUnlessEnabled(t)
	qemu, err := lookTool("qemu-system-x86_64", "qemu-system-x86")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStartQemu$", "-test.v")
	cmd.Env = append(os.Environ(), "VMTEST_HELPER_QEMU="+qemu)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := 0
	sc := bufio.NewScanner(stdout)
	for pid == 0 && sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "qemu pid "); ok {
			pid, _ = strconv.Atoi(rest)
		}
	}
	if pid == 0 {
		t.Fatalf("the helper did not report a qemu pid: %v", sc.Err())
	}
	if !running(pid) {
		t.Fatalf("qemu (pid %d) is not running while its starter runs", pid)
	}
	t.Logf("qemu pid %d", pid)
	// A pidfd becomes readable when qemu exits: a wait, not a poll.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd of qemu (pid %d): %v", pid, err)
	}
	defer unix.Close(fd)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 60_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("wait for qemu (pid %d): %v", pid, err)
		}
		if n == 0 {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("qemu (pid %d) still runs a minute after its starter was killed", pid)
		}
		return
	}
}

// TestHelperStartQemu is the child of TestQemuDiesWithItsStarter: it starts
// qemu as Boot does, prints its PID and waits to be killed.
func TestHelperStartQemu(t *testing.T) {
	qemu := os.Getenv("VMTEST_HELPER_QEMU")
	if qemu == "" {
		return // only as TestQemuDiesWithItsStarter's child
	}
	m := &Machine{}
	if err := m.start(qemu, []string{"-machine", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-monitor", "none", "-S"}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("qemu pid %d\n", m.PID())
	<-m.Done()
	t.Fatalf("qemu exited: %s", m.stderr.String())
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may contain spaces and parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// checkHealthy waits until the guest finished booting and checks that no
// unit failed.
func checkHealthy(t *testing.T, m *Machine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, _, _ := m.Run(ctx, "systemctl is-system-running --wait")
	if state := strings.TrimSpace(out); state != "running" {
		failed, _, _ := m.Run(t.Context(), "systemctl --failed --no-legend --plain")
		t.Errorf("system state %q, want running; failed units:\n%s", state, failed)
	}
}

// checkRootFS checks the root's label and UUID on dev and that udev found
// it by label.
func checkRootFS(t *testing.T, m *Machine, img *Image, dev string) {
	t.Helper()
	got := RunT(t, m, "blkid -s LABEL -o value "+dev+"; blkid -s UUID -o value "+dev+"; readlink -f /dev/disk/by-label/"+img.Label)
	if want := img.Label + "\n" + img.UUID + "\n" + dev + "\n"; got != want {
		t.Errorf("root file system: got %q, want label, UUID, by-label link %q", got, want)
	}
}

func checkMachineID(t *testing.T, m *Machine) string {
	t.Helper()
	id := strings.TrimSpace(RunT(t, m, "cat /etc/machine-id"))
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("machine id %q", id)
	}
	return id
}

// checkHostKey checks that the host key recorded at boot is the guest's
// Ed25519 host key.
func checkHostKey(t *testing.T, m *Machine) ssh.PublicKey {
	t.Helper()
	k := m.HostKey()
	if k == nil {
		t.Fatal("no host key recorded")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(RunT(t, m, "cat /etc/ssh/ssh_host_ed25519_key.pub")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub.Marshal(), k.Marshal()) {
		t.Errorf("recorded host key %s, the guest's is %s", ssh.FingerprintSHA256(k), ssh.FingerprintSHA256(pub))
	}
	return k
}

// checkGone checks that qemu's process is gone (or the PID belongs to
// another program now).
func checkGone(t *testing.T, pid int, overlay string) {
	t.Helper()
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && bytes.Contains(cmdline, []byte(overlay)) {
		t.Errorf("qemu (pid %d) still runs after Close", pid)
	}
	if _, err := os.Stat(overlay); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left the overlay %s: %v", overlay, err)
	}
}

// fingerprint is a file's size, mtime and SHA-256.
func fingerprint(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d bytes, mtime %s, sha256 %x", fi.Size(), fi.ModTime().Format(time.RFC3339Nano), h.Sum(nil))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
