package bundle

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

const vectorsDir = "testdata/vectors"

type keys struct {
	userCert *x509.Certificate
	userKey  *rsa.PrivateKey
	ec2Cert  *x509.Certificate
	ec2Key   *rsa.PrivateKey
}

func loadKeys(t testing.TB) keys {
	t.Helper()
	var k keys
	var err error
	if k.userCert, err = LoadCertificate(filepath.Join(vectorsDir, "user-cert.pem")); err != nil {
		t.Fatal(err)
	}
	if k.userKey, err = LoadPrivateKey(filepath.Join(vectorsDir, "user-key.pem")); err != nil {
		t.Fatal(err)
	}
	if k.ec2Cert, err = LoadCertificate(filepath.Join(vectorsDir, "ec2-cert.pem")); err != nil {
		t.Fatal(err)
	}
	if k.ec2Key, err = LoadPrivateKey(filepath.Join(vectorsDir, "ec2-key.pem")); err != nil {
		t.Fatal(err)
	}
	return k
}

type vector struct {
	name     string // directory
	manifest string // file name
	image    string // file name
}

var vectors = []vector{
	{"v1-simple", "root.img.manifest.xml", "root.img"},
	{"v2-fields", "web-2026.11.manifest.xml", "disk.raw"},
}

func (v vector) bundleDir() string    { return filepath.Join(vectorsDir, v.name, "bundle") }
func (v vector) manifestPath() string { return filepath.Join(v.bundleDir(), v.manifest) }
func (v vector) imagePath() string    { return filepath.Join(vectorsDir, v.name, "image", v.image) }

// parseManifest parses the vector's manifest.
func (v vector) parseManifest(t testing.TB) *Manifest {
	t.Helper()
	m, err := ParseManifest(readFile(t, v.manifestPath()))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readInSteps reads r to its end with reads of size bytes, which may end
// anywhere in the stream.
func readInSteps(t testing.TB, r io.Reader, size int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// randomBytes returns n pseudo-random bytes (deterministic per seed).
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n / 8 * 8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// memSink is an in-memory PartSink that logs its calls.
type memSink struct {
	mu      sync.Mutex
	parts   map[string][]byte
	calls   []string
	failAt  int // fail WritePart of this index, -1 for never
	renames int
}

func newMemSink() *memSink { return &memSink{parts: map[string][]byte{}, failAt: -1} }

func (s *memSink) WritePart(ctx context.Context, p *Part) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "write "+p.Name)
	if p.Index == s.failAt {
		return io.ErrClosedPipe
	}
	s.parts[p.Name] = bytes.Clone(p.Data)
	return nil
}

func (s *memSink) RenamePart(ctx context.Context, from, to string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "rename "+from+" "+to)
	s.renames++
	b, ok := s.parts[from]
	if !ok {
		return os.ErrNotExist
	}
	if _, ok := s.parts[to]; ok {
		return os.ErrExist
	}
	delete(s.parts, from)
	s.parts[to] = b
	return nil
}

func (s *memSink) RemovePart(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "remove "+name)
	delete(s.parts, name)
	return nil
}

func (s *memSink) OpenPart(ctx context.Context, name string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.parts[name]
	if !ok {
		return nil, os.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *memSink) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n []string
	for k := range s.parts {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

var fixedTime = time.Date(2026, 11, 22, 11, 31, 0, 0, time.UTC)

// bundleInput returns a BundleInput for img with the vector keys.
func bundleInput(k keys, img []byte, sink PartSink) *BundleInput {
	return &BundleInput{
		Image:        bytes.NewReader(img),
		Size:         int64(len(img)),
		Name:         "img.raw",
		Architecture: ArchX86_64,
		User:         "1234-5678-9012",
		UserCert:     k.userCert,
		UserKey:      k.userKey,
		EC2Cert:      k.ec2Cert,
		Sink:         sink,
		ModTime:      fixedTime,
	}
}

func withPartSize(n int) func(*Options) { return func(o *Options) { o.partSize = n } }
