//go:build linux

package vmtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLookToolMissing(t *testing.T) {
	_, err := lookTool("vmtest-no-such-tool", "vmtest-pkg")
	var missing *MissingToolError
	if !errors.As(err, &missing) || missing.Package != "vmtest-pkg" {
		t.Fatalf("lookTool = %v, want a *MissingToolError", err)
	}
	if !strings.Contains(err.Error(), "apt-get install vmtest-pkg") {
		t.Errorf("error does not say how to install it: %v", err)
	}
	if _, err := lookTool("sh", "dash"); err != nil {
		t.Errorf("lookTool(sh) = %v", err)
	}
}

func TestBuildRejectsBadRecipe(t *testing.T) {
	dir := t.TempDir()
	_, err := Build(context.Background(), dir, Recipe{DiskSizeMiB: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "DiskSizeMiB") {
		t.Fatalf("Build = %v, want an error naming DiskSizeMiB", err)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("Build left %v", left)
	}
}

// A cached image is used as it is: no root, no tools, no lock.
func TestBuildUsesCache(t *testing.T) {
	cache := t.TempDir()
	r := DefaultRecipe()
	img := fakeImage(t)
	dir := filepath.Join(cache, r.Key())
	if err := os.Rename(img.Dir, dir); err != nil {
		t.Fatal(err)
	}
	b := &builder{dir: dir, key: r.Key(), recipe: r.normalized(), kernelVersion: "6.1.0-1-cloud-amd64"}
	if err := b.makeKey(); err != nil {
		t.Fatal(err)
	}
	if err := b.finish(0); err != nil {
		t.Fatal(err)
	}
	got, err := Build(context.Background(), cache, Recipe{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dir != dir || got.KernelVersion != "6.1.0-1-cloud-amd64" || got.UUID != uuidFor(r.Key()) || got.User != User || got.Label != Label {
		t.Errorf("loaded %+v", got)
	}
	if got.AuthorizedKey() != strings.TrimSpace(strings.TrimSuffix(string(b.authorizedLine), " vmtest-harness\n")) {
		t.Errorf("AuthorizedKey() = %q, the key file's is %q", got.AuthorizedKey(), b.authorizedLine)
	}
	if fi, err := os.Stat(got.KeyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key %s: %v %v", got.KeyPath, fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(cache, "build.lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("took the build lock for a cached image: %v", err)
	}
}

func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.lock")
	unlock, err := lockFile(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Another holder waits until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	var log strings.Builder
	cancel()
	if _, err := lockFile(ctx, path, &log); !errors.Is(err, context.Canceled) {
		t.Errorf("second lock while held = %v, want context.Canceled", err)
	}
	if !strings.Contains(log.String(), "waiting for another process") {
		t.Errorf("no word about waiting: %q", log.String())
	}
	unlock()
	unlock2, err := lockFile(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:              "/plain",
		`/with\040space`:      "/with space",
		`/tab\011and\134back`: "/tab\tand\\back",
		`/trailing\04`:        `/trailing\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// removeTree unmounts what a killed debootstrap left mounted in its target
// before removing it, so that nothing outside is removed through a bind
// mount.
func TestRemoveTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "img.tmp-1")
	dev := filepath.Join(dir, "root", "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	keep := filepath.Join(outside, "null")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := syscall.Mount(outside, dev, "", syscall.MS_BIND, ""); err != nil {
			t.Fatalf("bind mount: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(dev, syscall.MNT_DETACH) })
		if m, err := mountsUnder(dir); err != nil || len(m) != 1 || m[0] != dev {
			t.Fatalf("mountsUnder = %v, %v; want [%s]", m, err, dev)
		}
	} else {
		t.Log("not root: no bind mount to remove")
	}
	if err := removeTree(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left: %v", dir, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("removed %s through the bind mount: %v", keep, err)
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv(EnvCache, "/var/cache/vmtest")
	if got, err := CacheDir(); err != nil || got != "/var/cache/vmtest" {
		t.Errorf("with %s: %q, %v", EnvCache, got, err)
	}
	t.Setenv(EnvCache, "")
	got, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	root := filepath.Dir(filepath.Dir(wd)) // sdk/vmtest in the module
	if want := filepath.Join(root, ".cache", "vm"); got != want {
		t.Errorf("CacheDir() = %q, want %q", got, want)
	}
}
