//go:build unix

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

var execCommand = exec.CommandContext

// bundleBench measures bundling, unbundling and memory with the ami-bundle
// command against the shell pipelines that mirror Amazon's tools.
type bundleBench struct {
	c        *config
	cli      string
	certPath string
	keyPath  string
	key      *rsa.PrivateKey
	img      string // the image of c.sizeMiB
	size     int64
	ours     string // directory of our last bundle
}

func newBundleBench(ctx context.Context, c *config) (*bundleBench, error) {
	b := &bundleBench{c: c, cli: c.cli}
	for _, tool := range []string{"mkfs.ext4", "truncate", "tar", "gzip", "gunzip", "openssl", "split", "sha1sum", "bash", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is needed: %w", tool, err)
		}
	}
	if b.cli == "" {
		b.cli = filepath.Join(c.work, "ami-bundle")
		c.logf("building ami-bundle")
		cmd := execCommand(ctx, "go", "build", "-o", b.cli, "./sdk/cmd/ami-bundle")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./sdk/cmd/ami-bundle (run from the repository root): %v\n%s", err, out)
		}
	}
	b.cli = abs(b.cli)
	var err error
	if b.key, b.certPath, b.keyPath, err = writeKeys(c.work); err != nil {
		return nil, err
	}
	b.img = filepath.Join(c.work, "img")
	c.logf("making a %d MiB ext4 image of %s", c.sizeMiB, c.src)
	if err := makeImage(ctx, b.img, c.sizeMiB, c.src); err != nil {
		return nil, err
	}
	b.size = c.sizeMiB << 20
	// Read it once so that every contender finds it in the page cache.
	if _, err := sh(ctx, c.work, `cat "$1" > /dev/null`, b.img); err != nil {
		return nil, err
	}
	return b, nil
}

// writeKeys makes a throwaway RSA key and self-signed certificate, used
// both as the user's and as the EC2 certificate.
func writeKeys(dir string) (*rsa.PrivateKey, string, string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ami-bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", "", err
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, "", "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, "", "", err
	}
	return key, certPath, keyPath, nil
}

// makeImage makes a sparse ext4 image of sizeMiB holding a copy of src.
func makeImage(ctx context.Context, path string, sizeMiB int64, src string) error {
	_, err := sh(ctx, filepath.Dir(path), `truncate -s "$1"M "$2" && mkfs.ext4 -q -F -d "$3" "$2"`, fmt.Sprint(sizeMiB), path, src)
	return err
}

// proc is the outcome of one run of a command.
type proc struct {
	wall      time.Duration
	user, sys time.Duration
	maxRSS    int64 // bytes
}

// runCLI runs ami-bundle with args and returns its wall time and resource
// use, measured by the kernel for the child alone.
func (b *bundleBench) runCLI(ctx context.Context, args ...string) (proc, error) {
	cmd := execCommand(ctx, b.cli, args...)
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	p := proc{wall: time.Since(start)}
	if err != nil {
		return p, fmt.Errorf("ami-bundle %s: %w\n%s", args[0], err, stderr.Bytes())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		p.maxRSS = ru.Maxrss << 10 // KiB on Linux
		p.user = time.Duration(ru.Utime.Nano())
		p.sys = time.Duration(ru.Stime.Nano())
	}
	return p, nil
}

func (b *bundleBench) bundle(ctx context.Context, img, dir string) (proc, error) {
	if err := os.RemoveAll(dir); err != nil {
		return proc{}, err
	}
	return b.runCLI(ctx, "bundle", "-i", img, "-c", b.certPath, "-k", b.keyPath, "-u", "123456789012",
		"-r", "x86_64", "--ec2cert", b.certPath, "-d", dir, "-p", "img")
}

// refBundle runs the pipeline that mirrors Amazon's ec2-bundle-image: GNU
// tar with -S, SHA-1 of the tar stream beside gzip -9, openssl AES-128-CBC,
// split into 10 MiB parts, then a SHA-1 of every part.
func (b *bundleBench) refBundle(ctx context.Context, dir string) (time.Duration, error) {
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	k := randomHex(16)
	iv := randomHex(16)
	return sh(ctx, filepath.Dir(b.img), `
mkfifo "$2/tar.fifo"
sha1sum < "$2/tar.fifo" > "$2/digest" &
tar -cSf - "$(basename "$1")" | tee "$2/tar.fifo" | gzip -9 | openssl enc -aes-128-cbc -K "$3" -iv "$4" | split -b 10m -a 3 -d - "$2/img.part."
wait
rm "$2/tar.fifo"
sha1sum "$2"/img.part.* > "$2/parts.sha1"`, b.img, dir, k, iv)
}

func randomHex(n int) string {
	p := make([]byte, n)
	rand.Read(p)
	return hex.EncodeToString(p)
}

// floor reads the image once and computes the SHA-1 of its tar stream: the
// part of bundling no pipeline can avoid.
func (b *bundleBench) floor(img string) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(img)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	h := sha1.New()
	cw := &countWriter{w: h}
	tw := tar.NewWriter(cw)
	if err := tw.WriteHeader(&tar.Header{Name: "img", Size: st.Size(), Mode: 0o644, Format: tar.FormatGNU}); err != nil {
		return 0, err
	}
	if _, err := io.CopyBuffer(tw, onlyReader{f}, make([]byte, 1<<20)); err != nil {
		return 0, err
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if pad := (10240 - cw.n%10240) % 10240; pad > 0 {
		h.Write(make([]byte, pad))
	}
	h.Sum(nil)
	return time.Since(start), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

// onlyReader hides io.WriterTo so that copies use the given buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func (b *bundleBench) unbundle(ctx context.Context, dir, out string) (proc, error) {
	if err := os.RemoveAll(out); err != nil {
		return proc{}, err
	}
	return b.runCLI(ctx, "unbundle", "-k", b.keyPath, "-m", filepath.Join(dir, "img.manifest.xml"), "-s", dir, "-d", out)
}

// refUnbundle reads our bundle the way ec2-unbundle does, plus the part
// digests our reader checks too: sha1sum -c of every part, then
// cat | openssl enc -d | gunzip | tar -x with the SHA-1 of the tar stream
// compared with the manifest's digest.
func (b *bundleBench) refUnbundle(ctx context.Context, dir, out string) (time.Duration, error) {
	m, err := readManifest(dir)
	if err != nil {
		return 0, err
	}
	key, iv, err := m.DecryptKey(b.key)
	if err != nil {
		return 0, err
	}
	var sums strings.Builder
	var files []string
	for _, p := range m.Parts {
		fmt.Fprintf(&sums, "%x  %s\n", p.Digest, p.Filename)
		files = append(files, p.Filename)
	}
	if err := os.WriteFile(filepath.Join(dir, "parts.sha1"), []byte(sums.String()), 0o644); err != nil {
		return 0, err
	}
	if err := os.RemoveAll(out); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	d, err := sh(ctx, dir, `
out=$1 key=$2 iv=$3; shift 3
sha1sum -c --quiet parts.sha1
mkfifo "$out/tar.fifo"
sha1sum < "$out/tar.fifo" > "$out/digest" &
cat "$@" | openssl enc -d -aes-128-cbc -K "$key" -iv "$iv" | gunzip | tee "$out/tar.fifo" | tar -xf - -C "$out"
wait`, append([]string{out, hex.EncodeToString(key), hex.EncodeToString(iv)}, files...)...)
	if err != nil {
		return d, err
	}
	got, err := os.ReadFile(filepath.Join(out, "digest"))
	if err != nil {
		return d, err
	}
	if want := hex.EncodeToString(m.Digest[:]); !strings.HasPrefix(string(got), want) {
		return d, fmt.Errorf("reference unbundle: tar stream SHA-1 %s, manifest says %s", got, want)
	}
	return d, nil
}

func readManifest(dir string) (*bundle.Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "img.manifest.xml"))
	if err != nil {
		return nil, err
	}
	return bundle.ParseManifest(raw)
}

// run measures the sections of bundling that c wants (bundle, rss,
// unbundle, upload) and adds their rows to t.
func (b *bundleBench) run(ctx context.Context, t *table) error {
	c := b.c
	oursDir := filepath.Join(c.work, "ours")
	var maxRSS int64
	if c.want("bundle") || c.want("rss") || c.want("unbundle") || c.want("upload") {
		bt, err := b.timeBundles(ctx, oursDir, filepath.Join(c.work, "ref"))
		if err != nil {
			return err
		}
		maxRSS = bt.maxRSS
		if c.want("bundle") {
			bt.addRows(t, c.sizeMiB, b.size)
		}
	}
	if c.want("rss") {
		if err := b.rssRows(ctx, t, maxRSS); err != nil {
			return err
		}
	}
	if c.want("unbundle") {
		if err := b.unbundleRow(ctx, t, oursDir); err != nil {
			return err
		}
	}
	if c.want("upload") {
		if err := b.uploadBench(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// bundleTimes are the best times of the bundle runs.
type bundleTimes struct {
	ours       proc
	ref, floor time.Duration
	maxRSS     int64 // the peak of all our runs
}

// timeBundles bundles the image c.reps times with ami-bundle into oursDir,
// where the last bundle stays for the sections after this one, and, when
// the bundle section is wanted, with the reference pipeline into refDir
// and with the floor. The contenders are interleaved so that load from
// elsewhere hits them alike.
func (b *bundleBench) timeBundles(ctx context.Context, oursDir, refDir string) (bundleTimes, error) {
	c := b.c
	var bt bundleTimes
	for i := range c.reps {
		c.logf("bundle run %d/%d", i+1, c.reps)
		p, err := b.bundle(ctx, b.img, oursDir)
		if err != nil {
			return bt, err
		}
		c.logf("  ours %s (user %s, sys %s, max RSS %s)", secs(p.wall), secs(p.user), secs(p.sys), mib(p.maxRSS))
		if i == 0 || p.wall < bt.ours.wall {
			bt.ours = p
		}
		bt.maxRSS = max(bt.maxRSS, p.maxRSS)
		if !c.want("bundle") {
			break
		}
		d, err := b.refBundle(ctx, refDir)
		if err != nil {
			return bt, err
		}
		c.logf("  reference %s", secs(d))
		if i == 0 || d < bt.ref {
			bt.ref = d
		}
		f, err := b.floor(b.img)
		if err != nil {
			return bt, err
		}
		c.logf("  floor %s", secs(f))
		if i == 0 || f < bt.floor {
			bt.floor = f
		}
	}
	b.ours = oursDir
	os.RemoveAll(refDir)
	return bt, nil
}

// addRows adds the bundle rows of an image of sizeMiB (size bytes) to t:
// speed against the reference, time against the floor and CPU time.
func (bt bundleTimes) addRows(t *table, sizeMiB, size int64) {
	ours := bt.ours
	r := bt.ref.Seconds() / ours.wall.Seconds()
	t.add(row{
		measure:   fmt.Sprintf("bundle %d MiB sparse ext4 image (wall)", sizeMiB),
		ours:      speed(ours.wall, size),
		reference: speed(bt.ref, size),
		ratio:     times(r),
		target:    "≥ 4× reference",
		verdict:   check(r >= 4),
	})
	t.add(row{
		measure:   "bundle vs floor (read image + SHA-1 of tar stream)",
		ours:      secs(ours.wall),
		reference: "floor " + secs(bt.floor),
		ratio:     times(ours.wall.Seconds()/bt.floor.Seconds()) + " floor",
		target:    "report",
		verdict:   info,
	})
	t.add(row{
		measure:   "bundle CPU time (user+sys)",
		ours:      secs(ours.user + ours.sys),
		reference: "",
		ratio:     times((ours.user+ours.sys).Seconds()/ours.wall.Seconds()) + " cores",
		target:    "uses both cores",
		verdict:   info,
	})
}

// rssRows bundles an image of c.bigMiB, the small image's file system
// with a sparse tail, and adds the rows on peak memory: maxRSS, the peak
// bundling the small image, must stay under 64 MiB and not grow with the
// image.
func (b *bundleBench) rssRows(ctx context.Context, t *table, maxRSS int64) error {
	c := b.c
	big := filepath.Join(c.work, "big")
	c.logf("making a %d MiB image (the small image's file system, then a sparse tail)", c.bigMiB)
	if _, err := sh(ctx, c.work, `cp --sparse=always "$1" "$2" && truncate -s "$3"M "$2"`, b.img, big, fmt.Sprint(c.bigMiB)); err != nil {
		return err
	}
	bigDir := filepath.Join(c.work, "bigbundle")
	p, err := b.bundle(ctx, big, bigDir)
	if err != nil {
		return err
	}
	c.logf("  %d MiB: %s (user %s, sys %s), max RSS %s", c.bigMiB, secs(p.wall), secs(p.user), secs(p.sys), mib(p.maxRSS))
	os.RemoveAll(bigDir)
	os.Remove(big)
	const limit = 64 << 20
	t.add(row{
		measure: fmt.Sprintf("peak RSS bundling %d MiB", c.sizeMiB),
		ours:    mib(maxRSS),
		target:  "< 64 MiB",
		verdict: check(maxRSS < limit),
	})
	growth := float64(p.maxRSS) / float64(maxRSS)
	t.add(row{
		measure:   fmt.Sprintf("peak RSS bundling %d MiB", c.bigMiB),
		ours:      mib(p.maxRSS),
		reference: fmt.Sprintf("%d MiB: %s", c.sizeMiB, mib(maxRSS)),
		ratio:     times(growth),
		target:    "< 64 MiB, ≤ 1.10× (no growth)",
		verdict:   check(p.maxRSS < limit && growth <= 1.10),
	})
	return nil
}

// unbundleRow unbundles our bundle in oursDir with ami-bundle and with the
// reference pipeline, interleaved, and adds the row comparing them.
func (b *bundleBench) unbundleRow(ctx context.Context, t *table, oursDir string) error {
	c := b.c
	var ours proc
	var ref time.Duration
	out := filepath.Join(c.work, "unbundled")
	// Our unbundle takes a quarter of the reference's time, so a burst
	// of load from elsewhere costs it proportionally four times as
	// much: one more run than elsewhere, at a small cost.
	reps := max(c.reps, 3)
	for i := range reps {
		c.logf("unbundle run %d/%d", i+1, reps)
		p, err := b.unbundle(ctx, oursDir, out)
		if err != nil {
			return err
		}
		c.logf("  ours %s", secs(p.wall))
		if i == 0 || p.wall < ours.wall {
			ours = p
		}
		d, err := b.refUnbundle(ctx, oursDir, out)
		if err != nil {
			return err
		}
		c.logf("  reference %s", secs(d))
		if i == 0 || d < ref {
			ref = d
		}
	}
	os.RemoveAll(out)
	r := ref.Seconds() / ours.wall.Seconds()
	t.add(row{
		measure:   "unbundle + all digests (same bundle)",
		ours:      speed(ours.wall, b.size),
		reference: speed(ref, b.size),
		ratio:     times(r),
		target:    "≥ 4× reference",
		verdict:   check(r >= 4),
	})
	return nil
}
