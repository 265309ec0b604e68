//go:build linux

package vmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Accel is a qemu accelerator.
type Accel string

const (
	// AccelAuto uses KVM when a probe boot shows that KVM guests run on this
	// host, else TCG. The probe's answer is cached per host boot.
	AccelAuto Accel = ""
	// AccelTCG is qemu's software emulation (-accel tcg -cpu max): slow, but
	// works everywhere.
	AccelTCG Accel = "tcg"
	// AccelKVM is hardware virtualisation (-accel kvm -cpu host).
	AccelKVM Accel = "kvm"
)

// EnvAccel overrides [AccelAuto]: "tcg" or "kvm" (or "auto").
const EnvAccel = "AMI_VM_ACCEL"

// kvmProbeTimeout bounds the probe boot: a kernel under KVM reaches its
// panic for want of a root file system in a second or two; a guest that
// has not after this long is taken as hanging.
const kvmProbeTimeout = 20 * time.Second

// parseAccel accepts the values of EnvAccel.
func parseAccel(s string) (Accel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return AccelAuto, nil
	case "tcg":
		return AccelTCG, nil
	case "kvm":
		return AccelKVM, nil
	}
	return "", fmt.Errorf("accelerator %q: want tcg, kvm or auto", s)
}

// chooseAccel returns the accelerator to boot with: want unless it is
// AccelAuto, else EnvAccel unless it is unset or "auto", else the cached or
// new answer of the KVM probe.
func chooseAccel(ctx context.Context, qemu string, img *Image, want Accel, log io.Writer) (Accel, error) {
	if want != AccelAuto {
		if _, err := parseAccel(string(want)); err != nil {
			return "", fmt.Errorf("BootOptions.Accel: %w", err)
		}
		return want, nil
	}
	env, err := parseAccel(os.Getenv(EnvAccel))
	if err != nil {
		return "", fmt.Errorf("%s: %w", EnvAccel, err)
	}
	if env != AccelAuto {
		return env, nil
	}
	return probeCached(ctx, qemu, img, log)
}

// probeCached returns the KVM probe's answer for this host boot from
// <cache dir>/accel, or probes and stores the answer there (the cache
// directory is the parent of img.Dir).
func probeCached(ctx context.Context, qemu string, img *Image, log io.Writer) (Accel, error) {
	bootID, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("probe KVM: %w", err)
	}
	id := strings.TrimSpace(string(bootID))
	if img.Dir == "" { // an Image not made by Build: nowhere to cache
		a, why, err := probeKVM(ctx, qemu, img.Kernel)
		if err != nil {
			return "", fmt.Errorf("probe KVM: %w", err)
		}
		fmt.Fprintf(log, "vmtest: accelerator %s (%s)\n", a, why)
		return a, nil
	}
	cacheDir := filepath.Dir(img.Dir)
	path := filepath.Join(cacheDir, "accel")
	unlock, err := lockFile(ctx, path+".lock", log)
	if err != nil {
		return "", fmt.Errorf("probe KVM: %w", err)
	}
	defer unlock()
	if a, ok := readAccelCache(path, id); ok {
		return a, nil
	}
	a, why, err := probeKVM(ctx, qemu, img.Kernel)
	if err != nil {
		return "", fmt.Errorf("probe KVM: %w", err)
	}
	fmt.Fprintf(log, "vmtest: accelerator %s (%s); cached in %s until the host reboots\n", a, why, path)
	if err := os.WriteFile(path, []byte(id+" "+string(a)+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("probe KVM: %w", err)
	}
	return a, nil
}

// readAccelCache reads "<boot id> <accel>" from path.
func readAccelCache(path, bootID string) (Accel, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 || f[0] != bootID {
		return "", false
	}
	a, err := parseAccel(f[1])
	if err != nil || a == AccelAuto {
		return "", false
	}
	return a, true
}

// probeKVM boots kernel under KVM without a disk and with panic=-1 and
// -no-reboot: when KVM guests run, the kernel panics for want of a root
// file system and qemu exits within seconds. It returns AccelTCG with the
// reason when /dev/kvm is missing or not usable, qemu fails, or the guest
// does not panic within kvmProbeTimeout (guests that hang in early boot).
func probeKVM(ctx context.Context, qemu, kernel string) (Accel, string, error) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return AccelTCG, "no usable /dev/kvm: " + err.Error(), nil
	}
	f.Close()
	dir, err := os.MkdirTemp("", "vmtest-kvm-probe-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(dir)
	console := filepath.Join(dir, "console.log")
	cmd := exec.Command(qemu,
		"-machine", "q35", "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
		"-kernel", kernel, "-append", "console=ttyS0 panic=-1",
		"-chardev", "file,id=con0,path="+qemuEscape(console), "-serial", "chardev:con0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", "", fmt.Errorf("start %s: %w", qemu, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(kvmProbeTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		out, _ := os.ReadFile(console)
		if err == nil && strings.Contains(string(out), "Kernel panic") {
			return AccelKVM, "a KVM probe boot reached its expected panic", nil
		}
		return AccelTCG, fmt.Sprintf("KVM probe boot failed: %v %s", err, strings.TrimSpace(stderr.String())), nil
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		return AccelTCG, fmt.Sprintf("a KVM guest did not reach its expected panic within %s", kvmProbeTimeout), nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return "", "", errors.Join(ctx.Err(), errors.New("cancelled during the KVM probe boot"))
	}
}
