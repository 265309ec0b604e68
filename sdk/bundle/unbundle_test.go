package bundle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// multiPartBundle returns a bundle of several parts in a memSink.
func multiPartBundle(t *testing.T, k keys) (*BundleOutput, *memSink, []byte) {
	t.Helper()
	img := append(randomBytes(20<<10, 41), make([]byte, 30<<10)...)
	sink := newMemSink()
	out, err := Bundle(context.Background(), bundleInput(k, img, sink), withPartSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Manifest.Parts) < 4 {
		t.Fatalf("want at least 4 parts, got %d", len(out.Manifest.Parts))
	}
	return out, sink, img
}

func TestUnbundleFailures(t *testing.T) {
	k := loadKeys(t)
	tests := []struct {
		name string
		// edit changes the stored bundle; it returns the manifest to use.
		edit  func(t *testing.T, m *Manifest, sink *memSink) []byte
		cert  bool
		check func(t *testing.T, m *Manifest, err error)
	}{
		{
			name: "flipped bit in part 2",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				sink.parts[m.Parts[2].Filename][100] ^= 1
				return m.Bytes()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				var pe *PartDigestError
				if !errors.As(err, &pe) || pe.Index != 2 || pe.Filename != "img.raw.part.2" || pe.Want == pe.Got || len(pe.Want) != 40 {
					t.Errorf("err = %v, want *PartDigestError for part 2", err)
				}
			},
		},
		{
			name: "last part truncated",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				n := m.Parts[len(m.Parts)-1].Filename
				sink.parts[n] = sink.parts[n][:len(sink.parts[n])-16]
				return m.Bytes()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				var pe *PartDigestError
				if last := len(m.Parts) - 1; !errors.As(err, &pe) || pe.Index != last || pe.Filename != m.Parts[last].Filename {
					t.Errorf("err = %v, want *PartDigestError for the last part", err)
				}
			},
		},
		{
			name: "part missing",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				delete(sink.parts, m.Parts[1].Filename)
				return m.Bytes()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				var pe *PartError
				if !errors.As(err, &pe) || pe.Index != 1 || !strings.Contains(err.Error(), "img.raw.part.1") {
					t.Errorf("err = %v, want *PartError for part 1", err)
				}
			},
		},
		{
			name: "part larger than the format allows",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				sink.parts[m.Parts[0].Filename] = make([]byte, PartSize+1)
				return m.Bytes()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				var pe *PartError
				if !errors.As(err, &pe) || pe.Index != 0 || !strings.Contains(err.Error(), "larger than") {
					t.Errorf("err = %v, want *PartError for part 0", err)
				}
			},
		},
		{
			name: "parts swapped in manifest",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				m.Parts[0].Filename, m.Parts[1].Filename = m.Parts[1].Filename, m.Parts[0].Filename
				m.Parts[0].Digest, m.Parts[1].Digest = m.Parts[1].Digest, m.Parts[0].Digest
				return m.Marshal()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				if !errors.Is(err, ErrPadding) && !isFormat(err) {
					t.Errorf("err = %v, want a padding or format error", err)
				}
			},
		},
		{
			name: "bundled size wrong",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				m.BundledSize += 16
				return m.Marshal()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				var se *SizeError
				if !errors.As(err, &se) || se.What != "bundled_size" || se.Got != se.Want-16 {
					t.Errorf("err = %v, want *SizeError for bundled_size", err)
				}
			},
		},
		{
			name: "image digest wrong",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				m.Digest[0] ^= 0xff
				return m.Marshal()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				var de *ImageDigestError
				if !errors.As(err, &de) || de.Want == de.Got {
					t.Errorf("err = %v, want *ImageDigestError", err)
				}
			},
		},
		{
			name: "image size wrong",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				m.Size--
				return m.Marshal()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				var se *SizeError
				if !errors.As(err, &se) || se.What != "size" {
					t.Errorf("err = %v, want *SizeError for size", err)
				}
			},
		},
		{
			name: "manifest changed after signing",
			cert: true,
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				return bytes.Replace(m.Bytes(), []byte("<architecture>x86_64<"), []byte("<architecture>arm64<"), 1)
			},
			check: func(t *testing.T, m *Manifest, err error) {
				if !errors.Is(err, ErrSignature) {
					t.Errorf("err = %v, want ErrSignature", err)
				}
			},
		},
		{
			name: "key of another user",
			edit: func(t *testing.T, m *Manifest, sink *memSink) []byte {
				m.UserEncryptedKey = m.EC2EncryptedKey
				return m.Marshal()
			},
			check: func(t *testing.T, m *Manifest, err error) {
				if !errors.Is(err, ErrKeyDecrypt) || !strings.Contains(err.Error(), "user_encrypted_key") {
					t.Errorf("err = %v, want ErrKeyDecrypt naming user_encrypted_key", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, sink, _ := multiPartBundle(t, k)
			m, err := ParseManifest(out.ManifestBytes)
			if err != nil {
				t.Fatal(err)
			}
			in := &UnbundleInput{Manifest: tc.edit(t, m, sink), Source: sink, UserKey: k.userKey}
			if tc.cert {
				in.UserCert = k.userCert
			}
			_, err = Unbundle(context.Background(), in, io.Discard)
			if err == nil {
				t.Fatal("Unbundle succeeded")
			}
			tc.check(t, m, err)
		})
	}
}

func isFormat(err error) bool {
	var fe *FormatError
	return errors.As(err, &fe)
}

func TestUnbundleWrongKey(t *testing.T) {
	k := loadKeys(t)
	out, sink, _ := multiPartBundle(t, k)
	_, err := Unbundle(context.Background(), &UnbundleInput{Manifest: out.ManifestBytes, Source: sink, UserKey: k.ec2Key}, io.Discard)
	if !errors.Is(err, ErrKeyDecrypt) {
		t.Fatalf("err = %v, want ErrKeyDecrypt", err)
	}
}

func TestUnbundleInputs(t *testing.T) {
	k := loadKeys(t)
	raw := readFile(t, vectors[0].manifestPath())
	src := Dir(vectors[0].bundleDir())
	tests := []struct {
		name  string
		in    *UnbundleInput
		field string
	}{
		{"nil", nil, "UnbundleInput"},
		{"no source", &UnbundleInput{Manifest: raw, UserKey: k.userKey}, "Source"},
		{"no key", &UnbundleInput{Manifest: raw, Source: src}, "UserKey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unbundle(context.Background(), tc.in, io.Discard)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Errorf("err = %v, want *InputError for %s", err, tc.field)
			}
		})
	}
}

func TestReaderSmallReads(t *testing.T) {
	k := loadKeys(t)
	out, sink, img := multiPartBundle(t, k)
	r, err := Open(context.Background(), &UnbundleInput{Manifest: out.ManifestBytes, Source: sink, UserKey: k.userKey},
		func(o *Options) { o.Concurrency = 1 })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := readInSteps(t, r, 7)
	if !bytes.Equal(got, img) {
		t.Error("image differs")
	}
	if r.Manifest().Name != "img.raw" || r.EntryName() != "img.raw" {
		t.Errorf("manifest %q entry %q", r.Manifest().Name, r.EntryName())
	}
}

func TestReaderCloseEarly(t *testing.T) {
	k := loadKeys(t)
	out, sink, _ := multiPartBundle(t, k)
	r, err := Open(context.Background(), &UnbundleInput{Manifest: out.ManifestBytes, Source: sink, UserKey: k.userKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 10)); err == nil || err == io.EOF {
		t.Errorf("Read after Close: %v", err)
	}
}

func TestUnbundleCancel(t *testing.T) {
	k := loadKeys(t)
	out, sink, _ := multiPartBundle(t, k)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Unbundle(ctx, &UnbundleInput{Manifest: out.ManifestBytes, Source: sink, UserKey: k.userKey}, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
