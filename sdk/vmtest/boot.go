//go:build linux

package vmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Bus is how the root disk is attached.
type Bus string

const (
	// BusVirtio attaches the root disk as a virtio block device:
	// /dev/vda. The Debian cloud kernel's virtio_blk is a module, so the
	// kernel needs the initrd to mount a root on it.
	BusVirtio Bus = "virtio"
	// BusNVMe attaches the root disk as an NVMe namespace: /dev/nvme0n1, as
	// on Nitro instances. The kernel's NVMe driver and ext4 are built in, so
	// it mounts the root itself without an initrd (then /proc/mounts names
	// the root /dev/root).
	BusNVMe Bus = "nvme"
)

// BootOptions says what [Boot] boots and how. The zero value boots the
// image's own disk on virtio with the initrd, 1 GiB of memory and 2 CPUs.
type BootOptions struct {
	// Disk is the root disk: a raw image of a bare file system (no
	// partition table), such as an unbundled instance-store AMI. Default:
	// the image's Disk. It is never written: the machine runs on a fresh
	// qcow2 overlay in its own temporary directory. The kernel, initrd and
	// harness key are the image's, so Disk must hold a root they can boot
	// and log in to (one made from the image does).
	Disk string
	// Bus is how Disk is attached. Default BusVirtio.
	Bus Bus
	// NoInitrd boots the kernel without the initrd, so that the kernel
	// mounts the root itself. With the Debian cloud kernel that needs
	// BusNVMe (virtio_blk is a module) and a Root given as a device path
	// (the kernel does not resolve LABEL= or UUID=).
	NoInitrd bool
	// Root is the kernel's root= argument. Default /dev/vda on BusVirtio,
	// /dev/nvme0n1 on BusNVMe. LABEL=root and UUID=... work with the initrd.
	Root string
	// KernelArgs are appended to the kernel command line.
	KernelArgs []string
	// ExtraDisksMiB attaches one blank disk of each size (MiB), after the
	// root, as virtio block devices with serial numbers extra1, extra2, …
	// (/dev/disk/by-id/virtio-extra1, …). With the root on BusVirtio they
	// are /dev/vdb, /dev/vdc, …; with the root on BusNVMe /dev/vda, ….
	// They live in the machine's temporary directory.
	ExtraDisksMiB []int
	// MemoryMiB is the guest's memory. Default 1024.
	MemoryMiB int
	// CPUs is the number of virtual CPUs. Default 2.
	CPUs int
	// Accel is the accelerator. Default AccelAuto: the environment variable
	// AMI_VM_ACCEL (tcg, kvm or auto) or, when it is unset, the KVM probe.
	Accel Accel
	// WorkDir is where the machine's temporary directory (overlay, extra
	// disks, console log) is made. Default os.TempDir(). The directory is
	// removed by [Machine.Close].
	WorkDir string
	// Log receives progress lines (qemu's command line, when SSH answered).
	// Nil discards them.
	Log io.Writer
}

// Defaults of BootOptions.
const (
	DefaultMemoryMiB = 1024
	DefaultCPUs      = 2
)

// withDefaults fills in BootOptions' defaults from img and checks the rest.
func (o BootOptions) withDefaults(img *Image) (BootOptions, error) {
	if o.Disk == "" {
		o.Disk = img.Disk
	}
	abs, err := filepath.Abs(o.Disk)
	if err != nil {
		return o, fmt.Errorf("BootOptions.Disk: %w", err)
	}
	o.Disk = abs
	switch o.Bus {
	case "":
		o.Bus = BusVirtio
	case BusVirtio, BusNVMe:
	default:
		return o, fmt.Errorf("BootOptions.Bus %q: want %q or %q", o.Bus, BusVirtio, BusNVMe)
	}
	if o.Root == "" {
		o.Root = defaultRoot(o.Bus)
	}
	if strings.ContainsAny(o.Root, " \t\n") {
		return o, fmt.Errorf("BootOptions.Root %q: must not contain white space", o.Root)
	}
	for i, mib := range o.ExtraDisksMiB {
		if mib <= 0 {
			return o, fmt.Errorf("BootOptions.ExtraDisksMiB[%d] = %d: want a size in MiB above 0", i, mib)
		}
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = DefaultMemoryMiB
	}
	if o.MemoryMiB < 256 {
		return o, fmt.Errorf("BootOptions.MemoryMiB %d: want at least 256", o.MemoryMiB)
	}
	if o.CPUs == 0 {
		o.CPUs = DefaultCPUs
	}
	if o.CPUs < 1 {
		return o, fmt.Errorf("BootOptions.CPUs %d: want at least 1", o.CPUs)
	}
	if _, err := parseAccel(string(o.Accel)); err != nil {
		return o, fmt.Errorf("BootOptions.Accel: %w", err)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o, nil
}

func defaultRoot(b Bus) string {
	if b == BusNVMe {
		return "/dev/nvme0n1"
	}
	return "/dev/vda"
}

// qemuConfig is everything qemuArgs needs; paths are absolute.
type qemuConfig struct {
	Accel          Accel
	MemoryMiB      int
	CPUs           int
	Kernel, Initrd string // Initrd "" boots without one
	Cmdline        string
	Root           string // the root disk's overlay (qcow2)
	Bus            Bus
	Extras         []string // blank qcow2 disks
	Console        string
	Port           int
}

// kernelCmdline is the kernel's command line: the serial console, the root
// read-write, qemu's exit on a panic (panic=-1 with -no-reboot), and
// rootwait when the kernel mounts the root itself (NVMe namespaces appear
// asynchronously).
func kernelCmdline(o BootOptions) string {
	args := []string{"console=ttyS0", "root=" + o.Root, "rw", "panic=-1"}
	if o.NoInitrd {
		args = append(args, "rootwait")
	}
	return strings.Join(append(args, o.KernelArgs...), " ")
}

// qemuArgs returns qemu-system-x86_64's arguments for c.
func qemuArgs(c qemuConfig) []string {
	cpu := "max" // RDRAND, so the guest's entropy does not stall ssh-keygen
	if c.Accel == AccelKVM {
		cpu = "host"
	}
	a := []string{
		"-machine", "q35", "-accel", string(c.Accel), "-cpu", cpu,
		"-m", strconv.Itoa(c.MemoryMiB), "-smp", strconv.Itoa(c.CPUs),
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
		"-kernel", c.Kernel,
	}
	if c.Initrd != "" {
		a = append(a, "-initrd", c.Initrd)
	}
	a = append(a, "-append", c.Cmdline,
		"-drive", "file="+qemuEscape(c.Root)+",if=none,id=root,format=qcow2,discard=unmap")
	if c.Bus == BusNVMe {
		a = append(a, "-device", "nvme,drive=root,serial=root")
	} else {
		a = append(a, "-device", "virtio-blk-pci,drive=root,serial=root")
	}
	for i, p := range c.Extras {
		id := "extra" + strconv.Itoa(i+1)
		a = append(a, "-drive", "file="+qemuEscape(p)+",if=none,id="+id+",format=qcow2,discard=unmap",
			"-device", "virtio-blk-pci,drive="+id+",serial="+id)
	}
	return append(a,
		"-device", "virtio-rng-pci",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", c.Port),
		"-device", "virtio-net-pci,netdev=n0",
		"-chardev", "file,id=con0,path="+qemuEscape(c.Console),
		"-serial", "chardev:con0",
	)
}

// qemuEscape doubles commas, which qemu's option syntax reads as separators.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// errPortBusy means qemu could not listen on the forwarded SSH port, which
// another process took between pickPort and qemu's start.
var errPortBusy = errors.New("SSH forwarding port taken")

// isPortBusy reports whether qemu's stderr says it could not set up the
// host forwarding rule.
func isPortBusy(stderr string) bool {
	return strings.Contains(stderr, "Could not set up host forwarding rule")
}

// pickPort returns a TCP port on 127.0.0.1 that was free a moment ago. A
// variable so that tests can hand out a taken one.
var pickPort = func() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portAttempts bounds how often Boot picks another port when qemu finds
// its port taken.
const portAttempts = 5

// withPortRetry calls start with a newly picked port until it returns
// something other than errPortBusy, at most attempts times.
func withPortRetry(attempts int, pick func() (int, error), start func(port int) error) error {
	var err error
	for i := 0; i < attempts; i++ {
		port, perr := pick()
		if perr != nil {
			return fmt.Errorf("pick a port for SSH: %w", perr)
		}
		if err = start(port); !errors.Is(err, errPortBusy) {
			return err
		}
	}
	return fmt.Errorf("%d attempts: %w", attempts, err)
}

// qemuTools are the programs Boot runs and their Debian packages.
var qemuTools = [][2]string{{"qemu-system-x86_64", "qemu-system-x86"}, {"qemu-img", "qemu-utils"}}

// Boot starts a machine from img as opts say and waits until its SSH server
// accepts the harness key for root. ctx bounds only the boot; the machine
// runs until [Machine.Close], which every caller must call (it is called
// already when Boot fails). Boot needs qemu-system-x86 and qemu-utils but
// not root. qemu runs with SIGKILL as its parent-death signal, so it does
// not outlive the process that started it.
//
// The SSH port is a free port on 127.0.0.1, forwarded by qemu's user
// network to the guest's port 22; when another process takes it first Boot
// tries another. When qemu exits before SSH answers (a kernel panic, a bad
// disk), Boot fails at once with qemu's error output and the tail of the
// serial console.
func Boot(ctx context.Context, img *Image, opts BootOptions) (*Machine, error) {
	o, err := opts.withDefaults(img)
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}
	if fi, err := os.Stat(o.Disk); err != nil {
		return nil, fmt.Errorf("boot VM: disk: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("boot VM: disk %s is not a regular file", o.Disk)
	}
	tools := map[string]string{}
	for _, t := range qemuTools {
		p, err := lookTool(t[0], t[1])
		if err != nil {
			return nil, fmt.Errorf("boot VM: %w", err)
		}
		tools[t[0]] = p
	}
	accel, err := chooseAccel(ctx, tools["qemu-system-x86_64"], img, o.Accel, o.Log)
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}
	dir, err := os.MkdirTemp(o.WorkDir, "vmtest-")
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}
	m := &Machine{
		Host: "127.0.0.1", Dir: dir, Overlay: filepath.Join(dir, "root.qcow2"),
		image: img, consolePath: filepath.Join(dir, "console.log"), clients: map[string]*ssh.Client{},
	}
	cfg := qemuConfig{
		Accel: accel, MemoryMiB: o.MemoryMiB, CPUs: o.CPUs, Kernel: img.Kernel,
		Cmdline: kernelCmdline(o), Root: m.Overlay, Bus: o.Bus, Console: m.consolePath,
	}
	if !o.NoInitrd {
		cfg.Initrd = img.Initrd
	}
	if err := m.makeDisks(ctx, tools["qemu-img"], o, &cfg); err != nil {
		m.Close()
		return nil, fmt.Errorf("boot VM from %s: %w", o.Disk, err)
	}
	desc := fmt.Sprintf("%s (%s, %s, %s)", o.Disk, o.Bus, map[bool]string{true: "no initrd", false: "initrd"}[o.NoInitrd], accel)
	err = withPortRetry(portAttempts, pickPort, func(port int) error {
		m.Port = port
		cfg.Port = port
		args := qemuArgs(cfg)
		fmt.Fprintf(o.Log, "vmtest: booting %s on %s\nvmtest: %s %s\n", desc, m.Addr(), tools["qemu-system-x86_64"], strings.Join(args, " "))
		start := time.Now()
		if err := m.start(tools["qemu-system-x86_64"], args); err != nil {
			return err
		}
		if err := m.waitSSH(ctx); err != nil {
			m.stop()
			return err
		}
		m.BootTime = time.Since(start)
		return nil
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("boot VM from %s: %w", desc, err)
	}
	fmt.Fprintf(o.Log, "vmtest: SSH answered on %s after %s (pid %d)\n", m.Addr(), m.BootTime.Round(100*time.Millisecond), m.PID())
	return m, nil
}

// makeDisks creates the root's overlay and the blank extra disks.
func (m *Machine) makeDisks(ctx context.Context, qemuImg string, o BootOptions, cfg *qemuConfig) error {
	if err := runTool(ctx, qemuImg, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", o.Disk, m.Overlay); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	for i, mib := range o.ExtraDisksMiB {
		p := filepath.Join(m.Dir, fmt.Sprintf("extra%d.qcow2", i+1))
		if err := runTool(ctx, qemuImg, "create", "-q", "-f", "qcow2", p, strconv.Itoa(mib)+"M"); err != nil {
			return fmt.Errorf("extra disk %d: %w", i+1, err)
		}
		cfg.Extras = append(cfg.Extras, p)
	}
	return nil
}

// runTool runs a short command, with its output in the error.
func runTool(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// start starts qemu and a goroutine that reaps it.
func (m *Machine) start(qemu string, args []string) error {
	cmd := exec.Command(qemu, args...)
	m.stderr = &capBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = m.stderr, m.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	done := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.waitErr = err
		m.mu.Unlock()
		close(done)
	}()
	return nil
}

// stop kills qemu by its PID, if it runs, and waits until it is reaped.
func (m *Machine) stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
	default:
		_ = cmd.Process.Kill()
		<-done
	}
}
