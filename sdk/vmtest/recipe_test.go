//go:build linux

package vmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestRecipeKey(t *testing.T) {
	base := DefaultRecipe().Key()
	if !strings.HasPrefix(base, "bookworm-") {
		t.Errorf("key %q does not start with the suite", base)
	}
	same := []struct {
		name string
		r    Recipe
	}{
		{"zero value", Recipe{}},
		{"base package listed", Recipe{Packages: []string{"sudo"}}},
		{"blank package", Recipe{Packages: []string{" "}}},
	}
	for _, tc := range same {
		t.Run("same/"+tc.name, func(t *testing.T) {
			if got := tc.r.Key(); got != base {
				t.Errorf("Key() = %q, want the default's %q", got, base)
			}
		})
	}
	if a, b := (Recipe{Packages: []string{"xfsprogs", "rsync", "xfsprogs"}}).Key(), (Recipe{Packages: []string{"rsync", "xfsprogs"}}).Key(); a != b {
		t.Errorf("package order or repetition changes the key: %q != %q", a, b)
	}
	differ := []struct {
		name string
		r    Recipe
	}{
		{"suite", Recipe{Suite: "trixie"}},
		{"mirror", Recipe{Mirror: "http://mirror.example/debian"}},
		{"packages", Recipe{Packages: []string{"xfsprogs"}}},
		{"disk size", Recipe{DiskSizeMiB: 4096}},
		{"setup", Recipe{Setup: "touch /etc/marker"}},
	}
	seen := map[string]string{base: "default"}
	for _, tc := range differ {
		t.Run("differs/"+tc.name, func(t *testing.T) {
			k := tc.r.Key()
			if other, ok := seen[k]; ok {
				t.Errorf("Key() = %q, the same as for %s", k, other)
			}
			seen[k] = tc.name
		})
	}
}

// The harness's own scripts and format version are hashed too: a change to
// them must not reuse an image made by the old ones.
func TestRecipeKeyCoversScripts(t *testing.T) {
	for _, want := range []string{configureScript, pruneScript()} {
		if !strings.Contains(want, "set -eu") {
			t.Fatalf("script without set -eu:\n%s", want)
		}
	}
	old := keepModules
	defer func() { keepModules = old }()
	before := DefaultRecipe().Key()
	keepModules = append(slices.Clone(old), "kernel/fs/btrfs/*")
	if DefaultRecipe().Key() == before {
		t.Error("changing the prune script does not change the key")
	}
}

func TestRecipeValidate(t *testing.T) {
	tests := []struct {
		name    string
		r       Recipe
		wantErr string
	}{
		{"zero value", Recipe{}, ""},
		{"default", DefaultRecipe(), ""},
		{"https mirror", Recipe{Mirror: "https://deb.debian.org/debian"}, ""},
		{"packages", Recipe{Packages: []string{"xfsprogs", "libc6-dev", "g++"}}, ""},
		{"suite with space", Recipe{Suite: "book worm"}, "Suite"},
		{"mirror without scheme", Recipe{Mirror: "deb.debian.org/debian"}, "Mirror"},
		{"ftp mirror", Recipe{Mirror: "ftp://deb.debian.org/debian"}, "Mirror"},
		{"package with comma", Recipe{Packages: []string{"a,b"}}, "Packages"},
		{"package upper case", Recipe{Packages: []string{"Xfsprogs"}}, "Packages"},
		{"small disk", Recipe{DiskSizeMiB: 100}, "DiskSizeMiB"},
		{"negative disk", Recipe{DiskSizeMiB: -1}, "DiskSizeMiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestUUIDFor(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := uuidFor("bookworm-1"), uuidFor("bookworm-2")
	for _, u := range []string{a, b} {
		if !re.MatchString(u) {
			t.Errorf("uuidFor = %q, not a version 4 UUID", u)
		}
	}
	if a == b {
		t.Error("two keys, one UUID")
	}
	if uuidFor("bookworm-1") != a {
		t.Error("uuidFor is not stable")
	}
}

// prune_modules keeps exactly the files keepModules names. An earlier
// version matched directories only and removed virtio_net.ko, which left
// the guest without a network.
func TestPruneModules(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	keep := []string{
		"kernel/drivers/block/loop.ko",
		"kernel/drivers/block/virtio_blk.ko",
		"kernel/drivers/virtio/virtio_pci.ko",
		"kernel/drivers/net/virtio_net.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/net/core/failover.ko",
		"kernel/drivers/char/hw_random/virtio-rng.ko",
		"kernel/fs/xfs/xfs.ko",
		"kernel/lib/libcrc32c.ko",
		"kernel/crypto/crc32c_generic.ko",
		"kernel/arch/x86/crypto/crc32c-intel.ko",
		"kernel/drivers/net/virtio_net.ko.xz",
	}
	drop := []string{
		"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko",
		"kernel/drivers/net/virtio_netx/other.ko",
		"kernel/drivers/net/tun.ko",
		"kernel/net/core/pktgen.ko",
		"kernel/fs/btrfs/btrfs.ko",
		"kernel/sound/core/snd.ko",
		"kernel/drivers/char/tpm/tpm.ko",
		"kernel/arch/x86/kvm/kvm.ko",
	}
	dir := t.TempDir()
	for _, f := range append(slices.Clone(keep), drop...) {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(sh, "-c", pruneModulesFunc()+`prune_modules "$1"`, "sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("prune_modules: %v\n%s", err, out)
	}
	for _, f := range keep {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("removed %s", f)
		}
	}
	for _, f := range drop {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("kept %s", f)
		}
	}
	for _, d := range []string{"kernel/sound", "kernel/fs/btrfs", "kernel/drivers/net/ethernet"} {
		if _, err := os.Stat(filepath.Join(dir, d)); err == nil {
			t.Errorf("kept the empty directory %s", d)
		}
	}
}
