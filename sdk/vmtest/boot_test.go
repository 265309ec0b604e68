//go:build linux

package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeImage is an Image whose files exist but hold nothing bootable.
func fakeImage(t *testing.T) *Image {
	t.Helper()
	dir := t.TempDir()
	img := &Image{Dir: dir, Disk: filepath.Join(dir, diskFile), Kernel: filepath.Join(dir, kernelFile), Initrd: filepath.Join(dir, initrdFile), User: User, Label: Label}
	for _, p := range []string{img.Disk, img.Kernel, img.Initrd} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func TestBootOptionsDefaults(t *testing.T) {
	img := &Image{Disk: "/cache/img/disk.raw"}
	tests := []struct {
		name     string
		in       BootOptions
		wantRoot string
		wantBus  Bus
		wantDisk string
		wantCmd  string
	}{
		{"zero value", BootOptions{}, "/dev/vda", BusVirtio, "/cache/img/disk.raw", "console=ttyS0 root=/dev/vda rw panic=-1"},
		{"nvme", BootOptions{Bus: BusNVMe}, "/dev/nvme0n1", BusNVMe, "/cache/img/disk.raw", "console=ttyS0 root=/dev/nvme0n1 rw panic=-1"},
		{"nvme without initrd", BootOptions{Bus: BusNVMe, NoInitrd: true}, "/dev/nvme0n1", BusNVMe, "/cache/img/disk.raw", "console=ttyS0 root=/dev/nvme0n1 rw panic=-1 rootwait"},
		{"root by label", BootOptions{Root: "LABEL=root", KernelArgs: []string{"quiet"}}, "LABEL=root", BusVirtio, "/cache/img/disk.raw", "console=ttyS0 root=LABEL=root rw panic=-1 quiet"},
		{"other disk", BootOptions{Disk: "/tmp/ami.img"}, "/dev/vda", BusVirtio, "/tmp/ami.img", "console=ttyS0 root=/dev/vda rw panic=-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.in.withDefaults(img)
			if err != nil {
				t.Fatal(err)
			}
			if o.Root != tc.wantRoot || o.Bus != tc.wantBus || o.Disk != tc.wantDisk {
				t.Errorf("root %q bus %q disk %q, want %q %q %q", o.Root, o.Bus, o.Disk, tc.wantRoot, tc.wantBus, tc.wantDisk)
			}
			if o.MemoryMiB != DefaultMemoryMiB || o.CPUs != DefaultCPUs || o.Log == nil {
				t.Errorf("memory %d, CPUs %d, log %v: defaults not filled in", o.MemoryMiB, o.CPUs, o.Log)
			}
			if got := kernelCmdline(o); got != tc.wantCmd {
				t.Errorf("kernel command line %q, want %q", got, tc.wantCmd)
			}
		})
	}
}

func TestBootOptionsInvalid(t *testing.T) {
	tests := []struct {
		name    string
		in      BootOptions
		wantErr string
	}{
		{"bus", BootOptions{Bus: "scsi"}, "BootOptions.Bus"},
		{"root with space", BootOptions{Root: "/dev/vda init=/bin/sh"}, "BootOptions.Root"},
		{"extra disk size", BootOptions{ExtraDisksMiB: []int{64, 0}}, "BootOptions.ExtraDisksMiB[1]"},
		{"memory", BootOptions{MemoryMiB: 64}, "BootOptions.MemoryMiB"},
		{"cpus", BootOptions{CPUs: -1}, "BootOptions.CPUs"},
		{"accel", BootOptions{Accel: "hvf"}, "BootOptions.Accel"},
		{"missing disk", BootOptions{Disk: "/nonexistent/disk.raw"}, "disk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := fakeImage(t)
			work := t.TempDir()
			tc.in.WorkDir = work
			m, err := Boot(context.Background(), img, tc.in)
			if err == nil {
				m.Close()
				t.Fatal("Boot succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Boot() = %v, want an error naming %s", err, tc.wantErr)
			}
			if left, _ := os.ReadDir(work); len(left) > 0 {
				t.Errorf("Boot left %v in its work directory", left)
			}
		})
	}
}

func TestQemuArgs(t *testing.T) {
	base := qemuConfig{
		Accel: AccelTCG, MemoryMiB: 1024, CPUs: 2, Kernel: "/c/vmlinuz", Initrd: "/c/initrd.img",
		Cmdline: "console=ttyS0 root=/dev/vda rw panic=-1", Root: "/w/root.qcow2", Bus: BusVirtio,
		Console: "/w/console.log", Port: 2222,
	}
	tests := []struct {
		name    string
		change  func(*qemuConfig)
		want    []string // each a run of adjacent arguments
		notWant []string
	}{
		{"virtio with initrd under TCG", func(*qemuConfig) {}, []string{
			"-machine q35 -accel tcg -cpu max -m 1024 -smp 2",
			"-no-reboot -kernel /c/vmlinuz -initrd /c/initrd.img -append console=ttyS0 root=/dev/vda rw panic=-1",
			"-drive file=/w/root.qcow2,if=none,id=root,format=qcow2,discard=unmap -device virtio-blk-pci,drive=root,serial=root",
			"-device virtio-rng-pci",
			"-netdev user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22 -device virtio-net-pci,netdev=n0",
			"-chardev file,id=con0,path=/w/console.log -serial chardev:con0",
		}, []string{"nvme"}},
		{"nvme without initrd", func(c *qemuConfig) { c.Bus, c.Initrd = BusNVMe, "" }, []string{
			"-device nvme,drive=root,serial=root",
		}, []string{"-initrd", "virtio-blk-pci"}},
		{"kvm", func(c *qemuConfig) { c.Accel = AccelKVM }, []string{"-accel kvm -cpu host"}, []string{"-cpu max"}},
		{"extra disks after the root", func(c *qemuConfig) { c.Extras = []string{"/w/extra1.qcow2", "/w/extra2.qcow2"} }, []string{
			"-device virtio-blk-pci,drive=root,serial=root -drive file=/w/extra1.qcow2,if=none,id=extra1,format=qcow2,discard=unmap -device virtio-blk-pci,drive=extra1,serial=extra1 -drive file=/w/extra2.qcow2,if=none,id=extra2,format=qcow2,discard=unmap -device virtio-blk-pci,drive=extra2,serial=extra2",
		}, nil},
		{"commas in paths", func(c *qemuConfig) { c.Root, c.Console = "/w,x/root.qcow2", "/w,x/console.log" }, []string{
			"file=/w,,x/root.qcow2,if=none", "path=/w,,x/console.log",
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.change(&c)
			args := qemuArgs(c)
			joined := " " + strings.Join(args, " ") + " "
			for _, w := range tc.want {
				if !strings.Contains(joined, " "+w+" ") && !strings.Contains(joined, w) {
					t.Errorf("arguments lack %q:\n%s", w, joined)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(joined, w) {
					t.Errorf("arguments have %q:\n%s", w, joined)
				}
			}
			if i := slices.Index(args, "-append"); i < 0 || args[i+1] != c.Cmdline {
				t.Errorf("the kernel command line is not one argument: %q", args)
			}
		})
	}
}

func TestWithPortRetry(t *testing.T) {
	tests := []struct {
		name      string
		results   []error // start's answers, in order
		wantPorts int
		wantErr   error
	}{
		{"first port", []error{nil}, 1, nil},
		{"taken twice", []error{errPortBusy, fmt.Errorf("qemu: %w", errPortBusy), nil}, 3, nil},
		{"other error is not retried", []error{errors.New("qemu exited")}, 1, nil},
		{"always taken", []error{errPortBusy, errPortBusy, errPortBusy}, 3, errPortBusy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := 40000
			var ports []int
			err := withPortRetry(3, func() (int, error) { next++; return next, nil }, func(port int) error {
				ports = append(ports, port)
				return tc.results[len(ports)-1]
			})
			if len(ports) != tc.wantPorts {
				t.Errorf("started %d times (%v), want %d", len(ports), ports, tc.wantPorts)
			}
			if len(slices.Compact(slices.Clone(ports))) != len(ports) {
				t.Errorf("a port was tried twice: %v", ports)
			}
			want := tc.results[len(ports)-1]
			if tc.wantErr != nil {
				want = tc.wantErr
			}
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Errorf("withPortRetry() = %v, want %v", err, want)
			}
		})
	}
	t.Run("pick fails", func(t *testing.T) {
		err := withPortRetry(3, func() (int, error) { return 0, errors.New("no ports") }, func(int) error { t.Fatal("started"); return nil })
		if err == nil || !strings.Contains(err.Error(), "no ports") {
			t.Errorf("withPortRetry() = %v", err)
		}
	})
}

// The message qemu 7.2 prints when the forwarded port is taken.
func TestIsPortBusy(t *testing.T) {
	const taken = "qemu-system-x86_64: -netdev user,id=n0,hostfwd=tcp:127.0.0.1:55777-:22: Could not set up host forwarding rule 'tcp:127.0.0.1:55777-:22'"
	if !isPortBusy(taken) {
		t.Error("not recognised as a taken port")
	}
	if isPortBusy("qemu-system-x86_64: -drive file=x: Could not open 'x': No such file or directory") {
		t.Error("a missing disk taken for a taken port")
	}
}

func TestParseAccel(t *testing.T) {
	for in, want := range map[string]Accel{"": AccelAuto, "auto": AccelAuto, "tcg": AccelTCG, " KVM ": AccelKVM} {
		if got, err := parseAccel(in); err != nil || got != want {
			t.Errorf("parseAccel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := parseAccel("hvf"); err == nil {
		t.Error("parseAccel(hvf) succeeded")
	}
}

func TestChooseAccel(t *testing.T) {
	img := fakeImage(t) // the probe is never reached
	t.Setenv(EnvAccel, "tcg")
	if a, err := chooseAccel(context.Background(), "/nonexistent/qemu", img, AccelAuto, nil); err != nil || a != AccelTCG {
		t.Errorf("with %s=tcg: %q, %v", EnvAccel, a, err)
	}
	if a, err := chooseAccel(context.Background(), "/nonexistent/qemu", img, AccelKVM, nil); err != nil || a != AccelKVM {
		t.Errorf("BootOptions.Accel kvm over the environment: %q, %v", a, err)
	}
	t.Setenv(EnvAccel, "fast")
	if _, err := chooseAccel(context.Background(), "/nonexistent/qemu", img, AccelAuto, nil); err == nil || !strings.Contains(err.Error(), EnvAccel) {
		t.Errorf("bad %s: %v", EnvAccel, err)
	}
}

func TestReadAccelCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "accel")
	if _, ok := readAccelCache(p, "boot-1"); ok {
		t.Error("answer without a file")
	}
	if err := os.WriteFile(p, []byte("boot-1 kvm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if a, ok := readAccelCache(p, "boot-1"); !ok || a != AccelKVM {
		t.Errorf("same boot: %q, %v", a, ok)
	}
	if _, ok := readAccelCache(p, "boot-2"); ok {
		t.Error("answer of an earlier host boot reused")
	}
}
