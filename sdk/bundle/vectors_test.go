package bundle

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"testing"
)

func TestVectorsParseMarshal(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			raw := readFile(t, v.manifestPath())
			m, err := ParseManifest(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Marshal(); !bytes.Equal(got, raw) {
				t.Errorf("Marshal differs from the file:\n got %s\nwant %s", got, raw)
			}
			if got := m.Bytes(); !bytes.Equal(got, raw) {
				t.Errorf("Bytes differs from the file")
			}
			if len(m.Parts) != 1 || m.Parts[0].Filename != PartName(m.Name, 0, 1) {
				t.Errorf("parts = %+v", m.Parts)
			}
		})
	}
}

func TestVectorsFields(t *testing.T) {
	m, err := ParseManifest(readFile(t, vectors[1].manifestPath()))
	if err != nil {
		t.Fatal(err)
	}
	want := []BlockDeviceMapping{{"ami", "sda1"}, {"ephemeral0", "sdb"}, {"root", "/dev/sda1"}, {"swap", "sda3"}}
	checks := []struct {
		name      string
		got, want any
	}{
		{"architecture", m.Architecture, "i386"},
		{"kernel", m.KernelID, "aki-1a2b3c4d"},
		{"ramdisk", m.RamdiskID, "ari-5e6f7a8b"},
		{"product codes", len(m.ProductCodes) == 1 && m.ProductCodes[0] == "ABCDEF12", true},
		{"name", m.Name, "web-2026.11"},
		{"user", m.User, "210987654321"},
		{"type", m.Type, "machine"},
		{"size", m.Size, int64(65536)},
		{"bundled size", m.BundledSize, int64(65744)},
		{"bundler", m.Bundler, Bundler{"ec2-ami-tools", "1.5", "3"}},
		{"mappings", len(m.BlockDeviceMappings), len(want)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for i := range want {
		if i < len(m.BlockDeviceMappings) && m.BlockDeviceMappings[i] != want[i] {
			t.Errorf("mapping %d = %v, want %v", i, m.BlockDeviceMappings[i], want[i])
		}
	}
}

func TestVectorsSignature(t *testing.T) {
	k := loadKeys(t)
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			m := v.parseManifest(t)
			if err := m.Verify(k.userCert); err != nil {
				t.Errorf("user cert: %v", err)
			}
			if err := m.Verify(k.ec2Cert); !errors.Is(err, ErrSignature) {
				t.Errorf("EC2 cert verified the user's signature: %v", err)
			}
		})
	}
}

func TestVectorsKeys(t *testing.T) {
	k := loadKeys(t)
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			m := v.parseManifest(t)
			key, iv, err := m.DecryptKey(k.userKey)
			if err != nil {
				t.Fatal(err)
			}
			// EC2's copies hold the same key and IV.
			ec2 := *m
			ec2.UserEncryptedKey, ec2.UserEncryptedIV = m.EC2EncryptedKey, m.EC2EncryptedIV
			ekey, eiv, err := ec2.DecryptKey(k.ec2Key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key, ekey) || !bytes.Equal(iv, eiv) || len(key) != 16 || len(iv) != 16 {
				t.Errorf("user key/iv %x/%x, EC2 key/iv %x/%x", key, iv, ekey, eiv)
			}
			if _, _, err := m.DecryptKey(k.ec2Key); !errors.Is(err, ErrKeyDecrypt) {
				t.Errorf("EC2 key decrypted the user's copy: %v", err)
			}
		})
	}
}

func TestVectorsPartDigests(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			m := v.parseManifest(t)
			var total int64
			for _, p := range m.Parts {
				data := readFile(t, v.bundleDir()+"/"+p.Filename)
				if sha1.Sum(data) != p.Digest {
					t.Errorf("part %d digest mismatch", p.Index)
				}
				total += int64(len(data))
			}
			if total != m.BundledSize {
				t.Errorf("parts total %d, bundled_size %d", total, m.BundledSize)
			}
		})
	}
}

func TestVectorsUnbundle(t *testing.T) {
	k := loadKeys(t)
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			want := readFile(t, v.imagePath())
			var got bytes.Buffer
			out, err := Unbundle(context.Background(), &UnbundleInput{
				Manifest: readFile(t, v.manifestPath()),
				Source:   Dir(v.bundleDir()),
				UserKey:  k.userKey,
				UserCert: k.userCert,
			}, &got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("image differs: got %d bytes sha1 %x, want %d bytes sha1 %x",
					got.Len(), sha1.Sum(got.Bytes()), len(want), sha1.Sum(want))
			}
			if out.Size != int64(len(want)) || !out.SignatureVerified || out.EntryName != out.Manifest.Name {
				t.Errorf("output = %+v", out)
			}
		})
	}
}

func TestVectorsVerify(t *testing.T) {
	k := loadKeys(t)
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			in := &UnbundleInput{Manifest: readFile(t, v.manifestPath()), Source: Dir(v.bundleDir()), UserKey: k.userKey}
			if _, err := Verify(context.Background(), in); err == nil {
				t.Error("Verify without a certificate succeeded")
			}
			in.UserCert = k.userCert
			out, err := Verify(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if !out.SignatureVerified {
				t.Error("signature not verified")
			}
			in.UserCert = k.ec2Cert
			if _, err := Verify(context.Background(), in); !errors.Is(err, ErrSignature) {
				t.Errorf("wrong certificate: err = %v, want ErrSignature", err)
			}
		})
	}
}

func TestSignedBytesVector(t *testing.T) {
	raw := readFile(t, vectors[0].manifestPath())
	sb, err := SignedBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sb, []byte("<machine_configuration><architecture>x86_64</architecture></machine_configuration><image><name>root.img</name>")) ||
		!bytes.HasSuffix(sb, []byte("</parts></image>")) {
		t.Errorf("signed bytes = %s", sb)
	}
	if bytes.Contains(sb, []byte("<signature>")) || bytes.Contains(sb, []byte("<bundler>")) {
		t.Error("signed bytes include unsigned elements")
	}
}
