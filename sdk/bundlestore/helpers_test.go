//go:build unix

package bundlestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

var (
	tmpRoot string // removed after the tests

	keysOnce sync.Once
	userKey  *rsa.PrivateKey
	userCert *x509.Certificate
	keysErr  error

	motoOnce sync.Once
	moto     *awstest.Moto
	motoErr  error
)

func TestMain(m *testing.M) {
	var err error
	tmpRoot, err = os.MkdirTemp("", "bundlestore-test-")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	if moto != nil {
		_ = moto.Stop()
	}
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// testKeys returns an RSA key and a self-signed certificate for it, made
// once per test binary. The same pair stands in for the user's and EC2's.
func testKeys(t testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	if err := makeKeys(); err != nil {
		t.Fatalf("test keys: %v", err)
	}
	return userKey, userCert
}

// makeKeys makes the test key and certificate once.
func makeKeys() error {
	keysOnce.Do(func() {
		userKey, keysErr = rsa.GenerateKey(rand.Reader, 2048)
		if keysErr != nil {
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "bundlestore test"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
		}
		var der []byte
		if der, keysErr = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &userKey.PublicKey, userKey); keysErr != nil {
			return
		}
		userCert, keysErr = x509.ParseCertificate(der)
	})
	return keysErr
}

// testImage returns size pseudo-random (incompressible) bytes.
func testImage(size int, seed uint64) []byte {
	r := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1, 2, 3})
	b := make([]byte, size)
	_, _ = r.Read(b)
	return b
}

// bundleInput returns a BundleInput for image with sink.
func bundleInput(t testing.TB, name string, image []byte, sink bundle.PartSink) *bundle.BundleInput {
	t.Helper()
	key, cert := testKeys(t)
	return &bundle.BundleInput{
		Image:        bytes.NewReader(image),
		Size:         int64(len(image)),
		Name:         name,
		Architecture: bundle.ArchX86_64,
		User:         "123456789012",
		UserCert:     cert,
		UserKey:      key,
		EC2Cert:      cert,
		Sink:         sink,
	}
}

func fastBundle(o *bundle.Options) { o.CompressionLevel = 1 }

// testBundle is a bundle in a directory.
type testBundle struct {
	Dir          string
	Name         string
	ManifestPath string
	Manifest     *bundle.Manifest
	Image        []byte
}

var (
	bundlesMu sync.Mutex
	bundles   = map[int]*testBundle{}
)

// sharedBundle returns a bundle of an incompressible image of size bytes,
// made once per size and test binary. Tests must not change its files; use
// copyBundle for a private copy.
func sharedBundle(t testing.TB, size int) *testBundle {
	t.Helper()
	bundlesMu.Lock()
	defer bundlesMu.Unlock()
	if b, ok := bundles[size]; ok {
		return b
	}
	dir, err := os.MkdirTemp(tmpRoot, "bundle-")
	if err != nil {
		t.Fatal(err)
	}
	b := makeBundle(t, dir, "root.img", testImage(size, uint64(size)))
	bundles[size] = b
	return b
}

// makeBundle bundles image into dir.
func makeBundle(t testing.TB, dir, name string, image []byte) *testBundle {
	t.Helper()
	out, err := bundle.Bundle(context.Background(), bundleInput(t, name, image, bundle.Dir(dir)), fastBundle)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	path := filepath.Join(dir, out.ManifestName)
	if err := os.WriteFile(path, out.ManifestBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return &testBundle{Dir: dir, Name: name, ManifestPath: path, Manifest: out.Manifest, Image: image}
}

// copyBundle copies b into a fresh temporary directory.
func copyBundle(t *testing.T, b *testBundle) *testBundle {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(b.Dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := *b
	c.Dir = dir
	c.ManifestPath = filepath.Join(dir, filepath.Base(b.ManifestPath))
	return &c
}

// partKeys returns the keys of b's parts under prefix.
func (b *testBundle) partKeys(prefix string) []string {
	var keys []string
	for _, p := range b.Manifest.Parts {
		keys = append(keys, Key(prefix, p.Filename))
	}
	return keys
}

// unbundle reads the bundle from src with the test key and returns the image.
func unbundle(t testing.TB, manifest []byte, src bundle.PartSource) []byte {
	t.Helper()
	key, cert := testKeys(t)
	var buf bytes.Buffer
	_, err := bundle.Unbundle(context.Background(), &bundle.UnbundleInput{Manifest: manifest, Source: src, UserKey: key, UserCert: cert}, &buf)
	if err != nil {
		t.Fatalf("unbundle: %v", err)
	}
	return buf.Bytes()
}

// readFile reads path or fails the test.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sharedMoto returns a moto_server shared by the package's tests, started on
// first use and stopped by TestMain. It fails the test when moto cannot
// start.
func sharedMoto(t testing.TB) *awstest.Moto {
	t.Helper()
	m, err := startSharedMoto()
	if err != nil {
		t.Fatalf("moto: %v", err)
	}
	return m
}

func startSharedMoto() (*awstest.Moto, error) {
	motoOnce.Do(func() {
		f := false
		moto, motoErr = awstest.StartMoto(context.Background(), awstest.MotoOptions{LoadDefaultAMIs: &f, Output: io.Discard})
	})
	return moto, motoErr
}
