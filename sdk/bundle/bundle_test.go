package bundle

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
)

func TestRoundTrip(t *testing.T) {
	k := loadKeys(t)
	mixed := append(randomBytes(8<<10, 7), make([]byte, 200<<10)...)
	tests := []struct {
		name      string
		img       []byte
		partSize  int
		wantParts int // 0: don't check
		wantFirst string
		wantLast  string
	}{
		{name: "one byte", img: []byte{42}, wantParts: 1, wantFirst: "img.raw.part.0"},
		{name: "block minus one", img: randomBytes(511, 1), wantParts: 1},
		{name: "one block", img: randomBytes(512, 2), wantParts: 1},
		{name: "one record", img: randomBytes(10240, 3), wantParts: 1},
		{name: "zeros", img: make([]byte, 3<<20), wantParts: 1},
		{name: "9 parts", img: randomBytes(9*1024-600, 4), partSize: 1024, wantParts: 9, wantFirst: "img.raw.part.0", wantLast: "img.raw.part.8"},
		{name: "10 parts", img: randomBytes(9*1024+100, 5), partSize: 1024, wantParts: 10, wantFirst: "img.raw.part.00", wantLast: "img.raw.part.09"},
		{name: "over 100 parts", img: randomBytes(110*1024, 6), partSize: 1024, wantFirst: "img.raw.part.000"},
		{name: "random then zeros", img: mixed, partSize: 512},
		{name: "exact part multiple", img: randomBytes(3*4096-2000, 8), partSize: 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := newMemSink()
			opts := []func(*Options){}
			if tc.partSize != 0 {
				opts = append(opts, withPartSize(tc.partSize))
			}
			out, err := Bundle(context.Background(), bundleInput(k, tc.img, sink), opts...)
			if err != nil {
				t.Fatal(err)
			}
			m := out.Manifest
			if tc.wantParts != 0 && len(m.Parts) != tc.wantParts {
				t.Errorf("%d parts, want %d", len(m.Parts), tc.wantParts)
			}
			if tc.wantFirst != "" && m.Parts[0].Filename != tc.wantFirst {
				t.Errorf("first part %q, want %q", m.Parts[0].Filename, tc.wantFirst)
			}
			if tc.wantLast != "" && m.Parts[len(m.Parts)-1].Filename != tc.wantLast {
				t.Errorf("last part %q, want %q", m.Parts[len(m.Parts)-1].Filename, tc.wantLast)
			}
			checkStored(t, sink, m)
			if out.ManifestName != "img.raw.manifest.xml" {
				t.Errorf("manifest name %q", out.ManifestName)
			}
			// The manifest survives a parse and re-marshal, and verifies.
			pm, err := ParseManifest(out.ManifestBytes)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pm.Marshal(), out.ManifestBytes) {
				t.Error("manifest changes when parsed and marshaled again")
			}
			if err := pm.Verify(k.userCert); err != nil {
				t.Error(err)
			}
			var got bytes.Buffer
			if _, err := Unbundle(context.Background(), &UnbundleInput{
				Manifest: out.ManifestBytes, Source: sink, UserKey: k.userKey, UserCert: k.userCert,
			}, &got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), tc.img) {
				t.Errorf("unbundled %d bytes, differ from the %d-byte image", got.Len(), len(tc.img))
			}
		})
	}
}

// checkStored checks that the sink holds exactly the manifest's parts, with
// their digests, every part but the last full.
func checkStored(t *testing.T, sink *memSink, m *Manifest) {
	t.Helper()
	names := sink.names()
	if len(names) != len(m.Parts) {
		t.Fatalf("sink holds %d parts %v, manifest lists %d", len(names), names, len(m.Parts))
	}
	var total int64
	size := 0
	for i, p := range m.Parts {
		if want := PartName(m.Name, i, len(m.Parts)); p.Filename != want || p.Index != i {
			t.Errorf("part %d named %q, want %q", i, p.Filename, want)
		}
		data, ok := sink.parts[p.Filename]
		if !ok {
			t.Fatalf("part %q not stored", p.Filename)
		}
		if sha1.Sum(data) != p.Digest {
			t.Errorf("part %d digest mismatch", i)
		}
		if i == 0 {
			size = len(data)
		} else if i < len(m.Parts)-1 && len(data) != size {
			t.Errorf("part %d has %d bytes, part 0 has %d", i, len(data), size)
		}
		total += int64(len(data))
	}
	if total != m.BundledSize {
		t.Errorf("parts total %d, bundled_size %d", total, m.BundledSize)
	}
}

func TestBundleDefaultPartSize(t *testing.T) {
	k := loadKeys(t)
	// Incompressible data just over one part yields exactly two parts of
	// the format's size.
	img := randomBytes(PartSize+1000, 11)
	sink := newMemSink()
	out, err := Bundle(context.Background(), bundleInput(k, img, sink))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Manifest.Parts) != 2 || len(sink.parts["img.raw.part.0"]) != PartSize {
		t.Fatalf("parts %v, part 0 has %d bytes", sink.names(), len(sink.parts["img.raw.part.0"]))
	}
	if sink.renames != 0 {
		t.Errorf("%d renames, want none", sink.renames)
	}
}

// TestBundlePartNameEstimate drives the part-name estimate wrong on
// purpose: incompressible data first suggests many parts, then zeros
// compress to almost nothing. The bundler must rename the parts it named
// provisionally, and only those.
func TestBundlePartNameEstimate(t *testing.T) {
	k := loadKeys(t)
	img := append(randomBytes(64<<10, 12), make([]byte, 4<<20)...)
	sink := newMemSink()
	out, err := Bundle(context.Background(), bundleInput(k, img, sink), withPartSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	m := out.Manifest
	if n := len(m.Parts); n < 10 || n > 99 {
		t.Fatalf("%d parts, want 10 to 99 for this image (two digits)", n)
	}
	if sink.renames == 0 || sink.renames == len(m.Parts) {
		t.Errorf("%d of %d parts renamed, want some but not all", sink.renames, len(m.Parts))
	}
	t.Logf("%d parts, %d renamed", len(m.Parts), sink.renames)
	checkStored(t, sink, m)
}

func TestBundleDir(t *testing.T) {
	k := loadKeys(t)
	dir := t.TempDir()
	img := randomBytes(40<<10, 13)
	out, err := Bundle(context.Background(), bundleInput(k, img, Dir(dir)), withPartSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, out.ManifestName), out.ManifestBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(out.Manifest.Parts) + 1; len(entries) != want {
		t.Errorf("%d files in the directory, want %d (no temporary files)", len(entries), want)
	}
	var got bytes.Buffer
	if _, err := Unbundle(context.Background(), &UnbundleInput{Manifest: out.ManifestBytes, Source: Dir(dir), UserKey: k.userKey}, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), img) {
		t.Error("unbundled image differs")
	}
}

func TestBundleRefuses(t *testing.T) {
	k := loadKeys(t)
	other := loadKeys(t)
	other.userKey = k.ec2Key
	tests := []struct {
		name  string
		edit  func(in *BundleInput)
		field string
	}{
		{"empty image", func(in *BundleInput) { in.Image, in.Size = bytes.NewReader(nil), 0 }, "Size"},
		{"negative size", func(in *BundleInput) { in.Size = -1 }, "Size"},
		{"over 10 GiB", func(in *BundleInput) { in.Size = MaxImageSize + 1 }, "Size"},
		{"no image", func(in *BundleInput) { in.Image = nil }, "Image"},
		{"slash in name", func(in *BundleInput) { in.Name = "a/b" }, "Name"},
		{"backslash in name", func(in *BundleInput) { in.Name = `a\b` }, "Name"},
		{"dotdot name", func(in *BundleInput) { in.Name = ".." }, "Name"},
		{"empty name", func(in *BundleInput) { in.Name = "" }, "Name"},
		{"arch", func(in *BundleInput) { in.Architecture = "amd64" }, "Architecture"},
		{"no arch", func(in *BundleInput) { in.Architecture = "" }, "Architecture"},
		{"short account", func(in *BundleInput) { in.User = "12345" }, "User"},
		{"letters in account", func(in *BundleInput) { in.User = "12345678901a" }, "User"},
		{"no user cert", func(in *BundleInput) { in.UserCert = nil }, "UserCert"},
		{"no user key", func(in *BundleInput) { in.UserKey = nil }, "UserKey"},
		{"key not of cert", func(in *BundleInput) { in.UserKey = k.ec2Key }, "UserKey"},
		{"no EC2 cert", func(in *BundleInput) { in.EC2Cert = nil }, "EC2Cert"},
		{"no sink", func(in *BundleInput) { in.Sink = nil }, "Sink"},
		{"type", func(in *BundleInput) { in.Type = "disk" }, "Type"},
		{"duplicate mapping", func(in *BundleInput) {
			in.BlockDeviceMappings = []BlockDeviceMapping{{"root", "sda1"}, {"root", "sdb"}}
		}, "BlockDeviceMappings"},
		{"empty mapping", func(in *BundleInput) { in.BlockDeviceMappings = []BlockDeviceMapping{{"root", ""}} }, "BlockDeviceMappings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := newMemSink()
			in := bundleInput(k, []byte("data"), sink)
			tc.edit(in)
			_, err := Bundle(context.Background(), in)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("err = %v, want *InputError for %s", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
			if len(sink.calls) != 0 {
				t.Errorf("sink called: %v", sink.calls)
			}
		})
	}
}

func TestBundleImageLength(t *testing.T) {
	k := loadKeys(t)
	tests := []struct {
		name string
		data []byte
		size int64
		want string
	}{
		{"short", randomBytes(1000, 1), 2000, "ended after 1000 of 2000 bytes"},
		{"long", randomBytes(3000, 1), 2000, "more than Size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := newMemSink()
			in := bundleInput(k, tc.data, sink)
			in.Size = tc.size
			_, err := Bundle(context.Background(), in, withPartSize(256))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if n := sink.names(); len(n) != 0 {
				t.Errorf("parts left behind: %v", n)
			}
		})
	}
}

func TestBundleSinkFailure(t *testing.T) {
	k := loadKeys(t)
	sink := newMemSink()
	sink.failAt = 3
	_, err := Bundle(context.Background(), bundleInput(k, randomBytes(20<<10, 2), sink), withPartSize(1024))
	var pe *PartError
	if !errors.As(err, &pe) || pe.Index != 3 || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("err = %v, want *PartError for part 3", err)
	}
	if n := sink.names(); len(n) != 0 {
		t.Errorf("parts left behind: %v", n)
	}
}

func TestBundleCancel(t *testing.T) {
	k := loadKeys(t)
	ctx, cancel := context.WithCancel(context.Background())
	sink := newMemSink()
	in := bundleInput(k, randomBytes(4<<20, 3), sink)
	src := in.Image
	in.Image = io.MultiReader(io.LimitReader(src, 2<<20), readerFunc(func(p []byte) (int, error) {
		cancel()
		return src.Read(p)
	}))
	_, err := Bundle(ctx, in, withPartSize(64<<10))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := sink.names(); len(n) != 0 {
		t.Errorf("parts left behind: %v", n)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestBundleProgress(t *testing.T) {
	k := loadKeys(t)
	var calls int
	var last int64
	img := randomBytes(3<<20+5, 4)
	_, err := Bundle(context.Background(), bundleInput(k, img, newMemSink()), func(o *Options) {
		o.Progress = func(done, total int64) {
			calls++
			if done < last || total != int64(len(img)) {
				t.Errorf("progress(%d, %d) after %d", done, total, last)
			}
			last = done
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls < 4 || last != int64(len(img)) {
		t.Errorf("%d progress calls, last %d", calls, last)
	}
}

// TestGoldenBundle bundles a fixed image with deterministic randomness and
// compares the manifest with testdata/golden/bundle.manifest.xml (-update
// rewrites it). It pins the tar stream, gzip output, encryption and the
// manifest serialization together.
func TestGoldenBundle(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	k := loadKeys(t)
	img := append(randomBytes(3000, 21), make([]byte, 5000)...)
	sink := newMemSink()
	in := bundleInput(k, img, sink)
	in.KernelID = "aki-12345678"
	in.BlockDeviceMappings = []BlockDeviceMapping{{"root", "/dev/sda1"}, {"ami", "sda1"}}
	in.ProductCodes = []string{"ABC&<>\"'"}
	in.Ancestry = []string{"ami-0a1b2c3d"}
	out, err := Bundle(context.Background(), in, withPartSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "bundle.manifest.xml", out.ManifestBytes)
	if !bytes.Contains(out.ManifestBytes, []byte("<product_code>ABC&amp;&lt;&gt;&quot;&apos;</product_code>")) {
		t.Error("product code not escaped")
	}
	if !bytes.Contains(out.ManifestBytes, []byte("<mapping><virtual>ami</virtual><device>sda1</device></mapping><mapping><virtual>root</virtual>")) {
		t.Error("mappings not sorted")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readFile(t, path)
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (run with -update if intended):\n got %s\nwant %s", name, got, want)
	}
}

// TestReferencePipeline unbundles our bundle with the shell pipeline the
// original tools use: openssl enc -d | gunzip | tar -x.
func TestReferencePipeline(t *testing.T) {
	for _, tool := range []string{"openssl", "gunzip", "tar", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: %v", tool, err)
		}
	}
	k := loadKeys(t)
	dir := t.TempDir()
	img := append(append(randomBytes(300<<10, 31), make([]byte, 1<<20)...), []byte(strings.Repeat("text ", 20000))...)
	in := bundleInput(k, img, Dir(dir))
	out, err := Bundle(context.Background(), in, withPartSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Manifest.Parts) < 2 {
		t.Fatalf("want several parts, got %d", len(out.Manifest.Parts))
	}
	key, iv, err := out.Manifest.DecryptKey(k.userKey)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range out.Manifest.Parts {
		files = append(files, filepath.Join(dir, p.Filename))
	}
	dst := t.TempDir()
	script := fmt.Sprintf(`cat "$@" | openssl enc -d -aes-128-cbc -K %x -iv %x | gunzip | tar -x -C %s`, key, iv, dst)
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, files...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference pipeline: %v\n%s", err, b)
	}
	got := readFile(t, filepath.Join(dst, in.Name))
	if !bytes.Equal(got, img) {
		t.Errorf("reference pipeline gives %d bytes, differ from the %d-byte image", len(got), len(img))
	}
	// The tar stream the pipeline sees has the manifest's digest.
	cmd = exec.Command("sh", append([]string{"-c", fmt.Sprintf(`cat "$@" | openssl enc -d -aes-128-cbc -K %x -iv %x | gunzip | sha1sum`, key, iv), "sh"}, files...)...)
	b, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x", out.Manifest.Digest); !strings.HasPrefix(string(b), want) {
		t.Errorf("sha1sum of the tar stream %s, manifest digest %s", b, want)
	}
	listing, err := exec.Command("sh", "-c", fmt.Sprintf(`cat %s | openssl enc -d -aes-128-cbc -K %x -iv %x | gunzip | tar -tv`, strings.Join(files, " "), key, iv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(listing), "-rw-r--r-- root/root") {
		t.Errorf("tar listing %q, want one root-owned 0644 entry", listing)
	}
}
