package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"errors"
	"io"
	"path/filepath"
	"testing"
)

// manifestSeeds returns the manifests under testdata.
func manifestSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, v := range vectors {
		seeds = append(seeds, readFile(f, v.manifestPath()))
	}
	golden, _ := filepath.Glob("testdata/golden/*.xml")
	for _, g := range golden {
		seeds = append(seeds, readFile(f, g))
	}
	head, signed, evil, tail := forgeParts(f)
	for _, fg := range forgeries {
		seeds = append(seeds, []byte(fg.build(head, signed, evil, tail)))
	}
	return seeds
}

func FuzzParseManifest(f *testing.F) {
	for _, s := range manifestSeeds(f) {
		f.Add(s)
	}
	k := loadKeys(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a *ManifestError", err)
			}
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("Bytes differs from the input")
		}
		if len(m.Parts) < 1 || len(m.Parts) > MaxParts || m.Size < 1 || m.Size > MaxImageSize {
			t.Fatalf("bounds not enforced: %d parts, size %d", len(m.Parts), m.Size)
		}
		for i, p := range m.Parts {
			if p.Index != i || checkFileName(p.Filename) != nil {
				t.Fatalf("part %d: %+v", i, p)
			}
		}
		// What was verified is what was parsed: the signed bytes are the
		// exact form of the parsed fields, as the vectors and seeds are.
		sb, err := SignedBytes(b)
		if err != nil {
			t.Fatalf("parsed, but SignedBytes fails: %v", err)
		}
		if m.Verify(k.userCert) == nil {
			want, err := SignedBytes(m.Marshal())
			if err != nil || !bytes.Equal(sb, want) {
				t.Fatalf("verified bytes are not the parsed fields (%v):\n got %s\nwant %s", err, sb, want)
			}
		}
		// The exact form is stable: it parses again to the same bytes.
		canon := m.Marshal()
		m2, err := ParseManifest(canon)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, canon)
		}
		if again := m2.Marshal(); !bytes.Equal(again, canon) {
			t.Fatalf("Marshal not stable:\n%s\n%s", canon, again)
		}
		if _, err := SignedBytes(canon); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzReader feeds arbitrary plaintext (what should be a gzip-compressed
// tar stream) through encryption, splitting and a matching manifest into
// the Reader, and compares the outcome with a reference decoder built from
// the standard library: the Reader must accept exactly the streams the
// reference accepts and return the same image.
func FuzzReader(f *testing.F) {
	k := loadKeys(f)
	key := bytes.Repeat([]byte{0x11}, 16)
	iv := bytes.Repeat([]byte{0x22}, 16)
	for _, v := range vectors {
		m, err := ParseManifest(readFile(f, v.manifestPath()))
		if err != nil {
			f.Fatal(err)
		}
		vk, viv, err := m.DecryptKey(k.userKey)
		if err != nil {
			f.Fatal(err)
		}
		ct := readFile(f, filepath.Join(v.bundleDir(), m.Parts[0].Filename))
		cipher.NewCBCDecrypter(mustAES(f, vk), viv).CryptBlocks(ct, ct)
		f.Add(ct[:len(ct)-int(ct[len(ct)-1])])
	}
	f.Add([]byte{})
	f.Add([]byte("\x1f\x8b\x08\x00junk"))

	ekey, err := encryptHexSecret(&k.userKey.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	eiv, err := encryptHexSecret(&k.userKey.PublicKey, iv)
	if err != nil {
		f.Fatal(err)
	}
	const partSize = 4096
	f.Fuzz(func(t *testing.T, plain []byte) {
		want, size, ok := referenceDecode(plain, 1<<20)
		if size < 1 {
			size = 1 // the manifest needs a valid size
		}
		// Encrypt and split.
		padded := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(16 - len(plain)%16)}, 16-len(plain)%16)...)
		cipher.NewCBCEncrypter(mustAES(t, key), iv).CryptBlocks(padded, padded)
		m := &Manifest{
			Version: ManifestVersion, Bundler: DefaultBundler, Architecture: ArchX86_64,
			Name: "f", User: "123456789012", Type: TypeMachine, Size: size, BundledSize: int64(len(padded)),
			EC2EncryptedKey: ekey, UserEncryptedKey: ekey, EC2EncryptedIV: eiv, UserEncryptedIV: eiv,
		}
		m.Digest = sha1.Sum(tarStream(plain, 1<<20))
		src := newMemSink()
		n := (len(padded) + partSize - 1) / partSize
		for i := range n {
			data := padded[i*partSize : min(len(padded), (i+1)*partSize)]
			name := PartName("f", i, n)
			src.parts[name] = data
			m.Parts = append(m.Parts, PartInfo{Index: i, Filename: name, Digest: sha1.Sum(data)})
		}
		var got bytes.Buffer
		_, err := Unbundle(context.Background(), &UnbundleInput{Manifest: m.Marshal(), Source: src, UserKey: k.userKey}, &got)
		switch {
		case ok && err != nil:
			t.Fatalf("reference accepts, Reader fails: %v", err)
		case !ok && err == nil:
			t.Fatalf("reference refuses, Reader accepts %d bytes", got.Len())
		case ok && !bytes.Equal(got.Bytes(), want):
			t.Fatal("Reader and reference disagree on the image")
		}
	})
}

func mustAES(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// referenceDecode gunzips plain and reads a single regular tar entry of at
// most limit bytes. ok reports whether the stream is a valid bundle stream.
// size is the entry's size when a header was read.
func referenceDecode(plain []byte, limit int64) (image []byte, size int64, ok bool) {
	tarBytes := tarStream(plain, limit)
	if tarBytes == nil {
		return nil, 0, false
	}
	tr := tar.NewReader(bytes.NewReader(tarBytes))
	hdr, err := tr.Next()
	if err != nil {
		return nil, 0, false
	}
	size = hdr.Size
	if size < 1 || size > limit || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeGNUSparse && hdr.Typeflag != '\x00') {
		return nil, 0, false
	}
	image, err = io.ReadAll(tr)
	if err != nil || int64(len(image)) != size {
		return nil, size, false
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, size, false
	}
	return image, size, true
}

// tarStream returns the gunzipped plain, or nil if it is not valid gzip or
// larger than limit.
func tarStream(plain []byte, limit int64) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(plain))
	if err != nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil || int64(len(b)) > limit {
		return nil
	}
	return b
}
