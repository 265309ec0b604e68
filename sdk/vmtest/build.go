//go:build linux

package vmtest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Image is a cached, bootable Debian root file system with the kernel and
// initrd to boot it. It is read-only: [Boot] runs every machine on a
// copy-on-write overlay, so many machines can boot one Image at once.
type Image struct {
	// Key is the [Recipe.Key] and Dir the cache directory holding the
	// image's files (<cache dir>/<Key>).
	Key, Dir string
	// Recipe is the normalised recipe the image was made from.
	Recipe Recipe
	// Disk is the root file system: a bare, sparse ext4 image without a
	// partition table, as the image of an instance-store AMI is.
	Disk string
	// Kernel and Initrd are the Debian cloud kernel and its initramfs, and
	// KernelVersion their version (e.g. 6.1.0-28-cloud-amd64). The image's
	// /boot is empty: the harness boots the kernel directly.
	Kernel, Initrd, KernelVersion string
	// KeyPath is the harness's private key (OpenSSH format, Ed25519, mode
	// 0600), authorised for root and for User; Signer is the same key.
	KeyPath string
	Signer  ssh.Signer
	// User is the unprivileged login ([User], "admin"), Label the root file
	// system's label ([Label], "root") and UUID its fixed UUID.
	User, Label, UUID string
}

// AuthorizedKey returns the harness key as an authorized_keys line.
func (img *Image) AuthorizedKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(img.Signer.PublicKey())))
}

// imageMeta is image.json in an image's directory.
type imageMeta struct {
	Format        int       `json:"format"`
	Key           string    `json:"key"`
	Recipe        Recipe    `json:"recipe"`
	KernelVersion string    `json:"kernel_version"`
	UUID          string    `json:"uuid"`
	Built         time.Time `json:"built"`
	BuildSeconds  float64   `json:"build_seconds"`
}

// Files in an image's directory.
const (
	diskFile   = "disk.raw"
	kernelFile = "vmlinuz"
	initrdFile = "initrd.img"
	keyFile    = "id_ed25519"
	metaFile   = "image.json"
	buildLog   = "build.log"
)

// MissingToolError says that a program the harness needs is not installed,
// and which Debian package provides it.
type MissingToolError struct {
	Tool, Package string
}

func (e *MissingToolError) Error() string {
	return fmt.Sprintf("%s not found: install the Debian package %s (apt-get install %s)", e.Tool, e.Package, e.Package)
}

// NotRootError says that making an image needs root (debootstrap, chroot,
// device nodes and file ownership in the image).
type NotRootError struct {
	// CacheDir is where the image would have been made.
	CacheDir string
}

func (e *NotRootError) Error() string {
	return fmt.Sprintf("building a VM image needs root (debootstrap, chroot, device nodes); run as root once to fill the cache %s", e.CacheDir)
}

// lookTool finds tool on PATH or in the sbin directories (which a non-root
// PATH often lacks), or returns a *MissingToolError naming pkg.
func lookTool(tool, pkg string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, tool)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &MissingToolError{Tool: tool, Package: pkg}
}

// buildTools are the programs Build runs and their Debian packages.
var buildTools = [][2]string{{"debootstrap", "debootstrap"}, {"mkfs.ext4", "e2fsprogs"}, {"chroot", "coreutils"}}

// Build returns the image r makes, from cacheDir/<r.Key()> when it is there,
// else it makes it (about 2 minutes and 75 MB from the mirror) and stores it
// there. Making an image needs root, an amd64 host, debootstrap and
// e2fsprogs; using a cached one needs neither. The new image is made in a
// temporary directory beside it and renamed into place, so a cache never holds
// half an image; a lock (cacheDir/build.lock) makes concurrent processes
// build one image at a time and reuse each other's. Progress lines go to log
// (nil discards them); the output of debootstrap and the setup scripts goes to
// build.log in the image's directory. ctx bounds the whole build.
func Build(ctx context.Context, cacheDir string, r Recipe, log io.Writer) (*Image, error) {
	if log == nil {
		log = io.Discard
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("build VM image: %w", err)
	}
	r = r.normalized()
	key := r.Key()
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("build VM image %s: %w", key, err)
	}
	dir := filepath.Join(cacheDir, key)
	if img, err := loadImage(dir); err == nil {
		return img, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load VM image %s: %w", dir, err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("build VM image %s: %w", key, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, "build.lock"), log)
	if err != nil {
		return nil, fmt.Errorf("build VM image %s: %w", key, err)
	}
	defer unlock()
	// Another process may have built it while this one waited.
	if img, err := loadImage(dir); err == nil {
		return img, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load VM image %s: %w", dir, err)
	}
	if err := checkBuildHost(cacheDir); err != nil {
		return nil, fmt.Errorf("build VM image %s: %w", key, err)
	}
	removeStale(cacheDir, log)

	start := time.Now()
	fmt.Fprintf(log, "vmtest: building VM image %s (debian %s from %s; about 2 minutes)\n", key, r.Suite, r.Mirror)
	tmp, err := os.MkdirTemp(cacheDir, key+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("build VM image %s: %w", key, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("build VM image %s: %w", key, err)
	}
	b := &builder{recipe: r, key: key, cacheDir: cacheDir, dir: tmp, root: filepath.Join(tmp, "root"), log: log}
	err = b.build(ctx)
	if err == nil {
		err = b.finish(time.Since(start))
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		failed := filepath.Join(cacheDir, key+".failed.log")
		_ = os.Rename(filepath.Join(tmp, buildLog), failed)
		if rmErr := removeTree(tmp); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return nil, fmt.Errorf("build VM image %s (log: %s): %w", key, failed, err)
	}
	fmt.Fprintf(log, "vmtest: built VM image %s in %s\n", dir, time.Since(start).Round(time.Second))
	return loadImage(dir)
}

// checkBuildHost reports what stops this host from making an image.
func checkBuildHost(cacheDir string) error {
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("making an amd64 VM image needs an amd64 host, not %s", runtime.GOARCH)
	}
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, &NotRootError{CacheDir: cacheDir})
	}
	for _, t := range buildTools {
		if _, err := lookTool(t[0], t[1]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// builder makes one image in dir.
type builder struct {
	recipe         Recipe
	key, cacheDir  string
	dir, root      string
	log            io.Writer
	logFile        *os.File
	kernelVersion  string
	signer         ssh.Signer
	authorizedLine []byte
}

func (b *builder) build(ctx context.Context) error {
	f, err := os.Create(filepath.Join(b.dir, buildLog))
	if err != nil {
		return err
	}
	b.logFile = f
	defer f.Close()

	if err := b.makeKey(); err != nil {
		return fmt.Errorf("harness key: %w", err)
	}
	step := func(name string, fn func() error) error {
		fmt.Fprintf(b.log, "vmtest: %s\n", name)
		fmt.Fprintf(b.logFile, "==> %s\n", name)
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w%s", name, err, tailOf(filepath.Join(b.dir, buildLog), 20))
		}
		return nil
	}
	pkgs := append(BasePackages(), b.recipe.Packages...)
	debs := filepath.Join(b.cacheDir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	if err := step("debootstrap "+b.recipe.Suite, func() error {
		return b.run(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(pkgs, ","),
			"--cache-dir="+debs, b.recipe.Suite, b.root, b.recipe.Mirror)
	}); err != nil {
		return err
	}
	if err := step("configure", func() error {
		if err := os.WriteFile(filepath.Join(b.root, harnessKeyInRoot), b.authorizedLine, 0o644); err != nil {
			return err
		}
		return b.chroot(ctx, configureScript)
	}); err != nil {
		return err
	}
	if b.recipe.Setup != "" {
		if err := step("recipe setup script", func() error { return b.chroot(ctx, "set -e\n"+b.recipe.Setup) }); err != nil {
			return err
		}
	}
	if err := step("copy kernel and initrd", b.copyKernel); err != nil {
		return err
	}
	if err := step("prune", func() error { return b.chroot(ctx, pruneScript()) }); err != nil {
		return err
	}
	uuid := uuidFor(b.key)
	if err := step("mkfs.ext4 "+diskFile, func() error {
		return b.run(ctx, "mkfs.ext4", "-q", "-F", "-L", Label, "-U", uuid, "-d", b.root,
			filepath.Join(b.dir, diskFile), strconv.Itoa(b.recipe.DiskSizeMiB)+"M")
	}); err != nil {
		return err
	}
	return removeTree(b.root)
}

// finish writes image.json.
func (b *builder) finish(took time.Duration) error {
	meta := imageMeta{
		Format: formatVersion, Key: b.key, Recipe: b.recipe, KernelVersion: b.kernelVersion,
		UUID: uuidFor(b.key), Built: time.Now().UTC(), BuildSeconds: took.Seconds(),
	}
	data, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.dir, metaFile), append(data, '\n'), 0o644)
}

// makeKey writes the harness key pair into the image directory.
func (b *builder) makeKey() error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "vmtest harness")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.dir, keyFile), pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	if b.signer, err = ssh.NewSignerFromKey(priv); err != nil {
		return err
	}
	line := ssh.MarshalAuthorizedKey(b.signer.PublicKey())
	line = append(line[:len(line)-1], " vmtest-harness\n"...)
	b.authorizedLine = line
	return os.WriteFile(filepath.Join(b.dir, keyFile+".pub"), line, 0o644)
}

// copyKernel copies the one kernel and its initrd out of the root's /boot.
func (b *builder) copyKernel() error {
	kernels, err := filepath.Glob(filepath.Join(b.root, "boot", "vmlinuz-*"))
	if err != nil {
		return err
	}
	if len(kernels) != 1 {
		return fmt.Errorf("want one kernel in /boot, found %d: %v", len(kernels), kernels)
	}
	b.kernelVersion = strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	if err := copyFile(kernels[0], filepath.Join(b.dir, kernelFile)); err != nil {
		return err
	}
	return copyFile(filepath.Join(b.root, "boot", "initrd.img-"+b.kernelVersion), filepath.Join(b.dir, initrdFile))
}

// chroot runs script with /bin/sh in a chroot of the new root.
func (b *builder) chroot(ctx context.Context, script string) error {
	return b.run(ctx, "chroot", b.root, "/bin/sh", "-c", script)
}

// run runs a tool with its output in the build log. A cancelled ctx sends
// SIGTERM to its process group (debootstrap unmounts what it mounted on
// SIGTERM), then SIGKILL after 20 seconds.
func (b *builder) run(ctx context.Context, name string, args ...string) error {
	path, err := lookTool(name, name)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", "DEBIAN_FRONTEND=noninteractive"}
	cmd.Stdout, cmd.Stderr = b.logFile, b.logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (%v)", name, ctx.Err(), err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// loadImage reads the image in dir; an error satisfying
// errors.Is(err, os.ErrNotExist) means there is none.
func loadImage(dir string) (*Image, error) {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var meta imageMeta
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("read %s: %w", metaFile, err)
	}
	img := &Image{
		Key: meta.Key, Dir: dir, Recipe: meta.Recipe,
		Disk: filepath.Join(dir, diskFile), Kernel: filepath.Join(dir, kernelFile), Initrd: filepath.Join(dir, initrdFile),
		KernelVersion: meta.KernelVersion, KeyPath: filepath.Join(dir, keyFile),
		User: User, Label: Label, UUID: meta.UUID,
	}
	for _, p := range []string{img.Disk, img.Kernel, img.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("incomplete image: %w", err)
		}
	}
	pemBytes, err := os.ReadFile(img.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("incomplete image: %w", err)
	}
	if img.Signer, err = ssh.ParsePrivateKey(pemBytes); err != nil {
		return nil, fmt.Errorf("harness key %s: %w", img.KeyPath, err)
	}
	return img, nil
}

// lockFile takes an exclusive flock on path, polling while another process
// holds it until ctx ends. unlock releases it; the file stays.
func lockFile(ctx context.Context, path string, log io.Writer) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if log == nil {
		log = io.Discard
	}
	told := false
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !told {
			fmt.Fprintf(log, "vmtest: waiting for another process holding %s\n", path)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}

// removeStale removes the temporary directories of builds that did not
// finish (a killed process); the caller holds the build lock, so no build is
// running in them.
func removeStale(cacheDir string, log io.Writer) {
	stale, _ := filepath.Glob(filepath.Join(cacheDir, "*.tmp-*"))
	for _, d := range stale {
		if err := removeTree(d); err != nil {
			fmt.Fprintf(log, "vmtest: leaving %s: %v\n", d, err)
		}
	}
}

// removeTree unmounts whatever is mounted below dir (a killed debootstrap can
// leave /proc and /sys mounted in its target), then removes dir. It refuses
// to remove anything while a mount remains.
func removeTree(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if mounts, err = mountsUnder(dir); err != nil || len(mounts) > 0 {
		return fmt.Errorf("remove %s: still mounted below it: %v %v", dir, mounts, err)
	}
	return os.RemoveAll(dir)
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMount decodes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tailOf returns the last n lines of a file, indented, for an error message.
func tailOf(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	return "\n" + indent(lastLines(string(data), n))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
