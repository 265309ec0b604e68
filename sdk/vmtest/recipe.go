//go:build linux

package vmtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// formatVersion changes whenever the layout of the cache or the way an image
// is made changes in a way the recipe's fields and scripts do not show, so
// that an old cached image is not reused.
const formatVersion = 1

// Defaults of a [Recipe]'s zero-valued fields.
const (
	DefaultSuite       = "bookworm"
	DefaultMirror      = "http://deb.debian.org/debian"
	DefaultDiskSizeMiB = 2048
)

// User is the unprivileged login of every image: it has bash, a home with the
// harness key in ~/.ssh/authorized_keys and password-less sudo.
const User = "admin"

// Label is the ext4 label of every image's root file system; its /etc/fstab
// mounts LABEL=root on /.
const Label = "root"

// BasePackages returns the packages every image has besides debootstrap's
// minbase variant: a kernel whose ext4 and NVMe drivers are built in,
// systemd, udev, the OpenSSH server, sudo, kmod and e2fsprogs. A
// [Recipe]'s Packages are installed in addition to these.
func BasePackages() []string {
	return []string{
		"linux-image-cloud-amd64",
		"systemd-sysv",
		"udev",
		"openssh-server",
		"sudo",
		"kmod",
		"e2fsprogs",
	}
}

// Recipe says how to make a Debian image. Every field shapes the image, so
// every field is part of its [Recipe.Key]. The zero value is valid and means
// [DefaultRecipe].
type Recipe struct {
	// Suite is the Debian release given to debootstrap. Default
	// DefaultSuite ("bookworm"). The harness relies on the suite having
	// linux-image-cloud-amd64 and systemd-networkd.
	Suite string
	// Mirror is the Debian archive to install from. Default DefaultMirror.
	Mirror string
	// Packages are installed in addition to [BasePackages], for example
	// "xfsprogs" or "rsync". Order and repetition do not matter.
	Packages []string
	// DiskSizeMiB is the size of the root file system image in MiB. The file
	// is sparse: only the ~170 MiB in use take space on the host. Default
	// DefaultDiskSizeMiB; at least 512.
	DiskSizeMiB int
	// Setup is an optional shell script run with /bin/sh -e in a chroot of
	// the new root after the harness configured it and before documentation,
	// package lists and unneeded kernel modules are removed. The host's
	// network is available; /proc is not mounted. Prefer Packages for
	// installing packages: apt-get needs an apt-get update first here.
	Setup string
}

// DefaultRecipe returns the recipe of the image the test helpers use: Debian
// bookworm from deb.debian.org with only the [BasePackages] and a 2 GiB root.
func DefaultRecipe() Recipe {
	return Recipe{Suite: DefaultSuite, Mirror: DefaultMirror, DiskSizeMiB: DefaultDiskSizeMiB}
}

// normalized returns r with defaults filled in and Packages sorted, without
// duplicates and without the base packages.
func (r Recipe) normalized() Recipe {
	if r.Suite == "" {
		r.Suite = DefaultSuite
	}
	if r.Mirror == "" {
		r.Mirror = DefaultMirror
	}
	if r.DiskSizeMiB == 0 {
		r.DiskSizeMiB = DefaultDiskSizeMiB
	}
	base := BasePackages()
	var pkgs []string
	for _, p := range r.Packages {
		p = strings.TrimSpace(p)
		if p != "" && !slices.Contains(base, p) {
			pkgs = append(pkgs, p)
		}
	}
	slices.Sort(pkgs)
	r.Packages = slices.Compact(pkgs)
	return r
}

// Validate reports the first field of r that debootstrap or mkfs would not
// accept, naming the field and what would be valid.
func (r Recipe) Validate() error {
	r = r.normalized()
	if !validName(r.Suite) {
		return fmt.Errorf("recipe: Suite %q is not a Debian suite name (e.g. %q)", r.Suite, DefaultSuite)
	}
	u, err := url.Parse(r.Mirror)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("recipe: Mirror %q is not an http(s) URL of a Debian archive (e.g. %q)", r.Mirror, DefaultMirror)
	}
	for _, p := range r.Packages {
		if !validName(p) {
			return fmt.Errorf("recipe: Packages: %q is not a Debian package name", p)
		}
	}
	if r.DiskSizeMiB < 512 {
		return fmt.Errorf("recipe: DiskSizeMiB %d is too small: at least 512", r.DiskSizeMiB)
	}
	return nil
}

// validName accepts Debian package and suite names: lower-case letters,
// digits and + - . (package names may not contain commas or spaces, which
// would break debootstrap's --include list).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Key identifies the image r makes: the suite name and a hash of every
// field, the harness's own setup scripts and the cache format version. Two
// recipes with the same key make interchangeable images; the cache stores an
// image under its key.
func (r Recipe) Key() string {
	r = r.normalized()
	b, err := json.Marshal(struct {
		Format      int
		Arch        string
		Suite       string
		Mirror      string
		Base        []string
		Packages    []string
		DiskSizeMiB int
		Setup       string
		Configure   string
		Prune       string
		Label, User string
	}{formatVersion, "amd64", r.Suite, r.Mirror, BasePackages(), r.Packages, r.DiskSizeMiB, r.Setup, configureScript, pruneScript(), Label, User})
	if err != nil {
		panic(err) // only strings and ints
	}
	sum := sha256.Sum256(b)
	return r.Suite + "-" + hex.EncodeToString(sum[:8])
}

// uuidFor returns the fixed file system UUID of the image with the given
// key, so that a recipe always makes the same UUID and different recipes
// different ones.
func uuidFor(key string) string {
	s := sha256.Sum256([]byte("vmtest-uuid:" + key))
	s[6] = s[6]&0x0f | 0x40 // version 4 layout
	s[8] = s[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(s[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
