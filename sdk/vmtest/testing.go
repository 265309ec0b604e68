//go:build linux

package vmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Environment variables the test helpers read.
const (
	// EnvTests turns on tests that boot VMs: "1" runs them (make test-vm
	// sets it); otherwise [SkipUnlessEnabled] skips them.
	EnvTests = "AMI_VM_TESTS"
	// EnvCache is the image cache directory; see [CacheDir].
	EnvCache = "AMI_VM_CACHE"
)

// Bounds of the test helpers' waits.
const (
	// BuildTimeout bounds [BuildT]'s build of an image.
	BuildTimeout = 20 * time.Minute
	// BootTimeout bounds [BootT]'s wait for SSH; an emulated guest on a
	// busy 2-core host answers in 30–100 s.
	BootTimeout = 6 * time.Minute
)

// consoleTailLines is how much of the console BootT prints when a test fails.
const consoleTailLines = 60

// CacheDir returns the image cache: $AMI_VM_CACHE when set, else .cache/vm
// in the root of the Go module that holds the working directory (a test's
// working directory is its package directory), else vmtest in the user's
// cache directory.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return filepath.Abs(d)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("VM cache directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".cache", "vm"), nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	uc, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("VM cache directory: no go.mod above %s and no user cache directory: %w", dir, err)
	}
	return filepath.Join(uc, "vmtest"), nil
}

// SkipUnlessEnabled skips the test unless AMI_VM_TESTS=1, so that a plain
// go test does not boot VMs. With AMI_VM_TESTS=1 nothing is skipped: a
// missing tool fails the test in [BuildT] or [BootT].
func SkipUnlessEnabled(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvTests) != "1" {
		t.Skipf("boots a VM: set %s=1 to run it (make test-vm)", EnvTests)
	}
}

var (
	imagesMu sync.Mutex
	images   = map[string]*Image{}
)

// BuildT returns the image r makes, from the cache ([CacheDir]) or built
// there, once per process. Anything that stops it (not root, a missing
// tool, no mirror) fails the test with the reason; it never skips.
func BuildT(t testing.TB, r Recipe) *Image {
	t.Helper()
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	id := dir + "\x00" + r.Key()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if img := images[id]; img != nil {
		return img
	}
	ctx, cancel := context.WithTimeout(t.Context(), BuildTimeout)
	defer cancel()
	img, err := Build(ctx, dir, r, t.Output())
	if err != nil {
		t.Fatalf("VM image: %v", err)
	}
	images[id] = img
	return img
}

// ImageT is BuildT of [DefaultRecipe].
func ImageT(t testing.TB) *Image {
	t.Helper()
	return BuildT(t, DefaultRecipe())
}

// BootT boots img as opts say, within BootTimeout, and closes the machine
// when the test ends. When the test failed it logs the end of the serial
// console first. A failed boot fails the test. opts.Log defaults to t.Output().
func BootT(t testing.TB, img *Image, opts BootOptions) *Machine {
	t.Helper()
	if opts.Log == nil {
		opts.Log = t.Output()
	}
	ctx, cancel := context.WithTimeout(t.Context(), BootTimeout)
	defer cancel()
	m, err := Boot(ctx, img, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serial console of the VM on %s (last %d lines):\n%s", m.Addr(), consoleTailLines, m.ConsoleTail(consoleTailLines))
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// NewT boots the default image ([ImageT]) as opts say; see [BootT]. In a
// test:
//
//	func TestRootOnNVMe(t *testing.T) {
//		vmtest.SkipUnlessEnabled(t)
//		m := vmtest.NewT(t, vmtest.BootOptions{Bus: vmtest.BusNVMe, NoInitrd: true})
//		if got := vmtest.RunT(t, m, "findmnt -no SOURCE /"); got != "/dev/root\n" {
//			t.Errorf("root is %q", got)
//		}
//	}
func NewT(t testing.TB, opts BootOptions) *Machine {
	t.Helper()
	return BootT(t, ImageT(t), opts)
}

// RunT runs cmd as root on m and returns its standard output, failing the
// test when it fails. ctx is the test's.
func RunT(t testing.TB, m *Machine, cmd string) string {
	t.Helper()
	out, _, err := m.Run(t.Context(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
