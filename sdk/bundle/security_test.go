package bundle

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// forgery builds a manifest from a vector signed by the user that keeps the
// original signed text somewhere in the file while the elements an XML
// reader sees say something else.
type forgery struct {
	name string
	// build returns the forged manifest from the parts of the original:
	// head is everything before <machine_configuration>, signed the signed
	// text, evil the attacker's machine_configuration and image, tail the
	// rest from <signature> on.
	build func(head, signed, evil, tail string) string
}

var forgeries = []forgery{
	{"signed text in a comment", func(head, signed, evil, tail string) string {
		return head + "<!--" + signed + "-->" + evil + tail
	}},
	{"signed text in a CDATA section", func(head, signed, evil, tail string) string {
		h := strings.Replace(head, "<release>3</release>", "<release><![CDATA["+signed+"]]></release>", 1)
		return h + evil + tail
	}},
	{"signed text in a processing instruction", func(head, signed, evil, tail string) string {
		return head + "<?x " + signed + "?>" + evil + tail
	}},
	{"signed text in a DOCTYPE", func(head, signed, evil, tail string) string {
		h := strings.Replace(head, "<manifest>", "<!DOCTYPE manifest [<!--"+signed+"-->]><manifest>", 1)
		return h + evil + tail
	}},
	{"signed text in an unknown element", func(head, signed, evil, tail string) string {
		return head + "<x>" + signed + "</x>" + evil + tail
	}},
	{"signed text inside bundler", func(head, signed, evil, tail string) string {
		h := strings.Replace(head, "</bundler>", signed+"</bundler>", 1)
		return h + evil + tail
	}},
	{"duplicate elements after the signed ones", func(head, signed, evil, tail string) string {
		return head + signed + evil + tail
	}},
	{"duplicate image after the signed one", func(head, signed, evil, tail string) string {
		_, im, _ := strings.Cut(evil, "</machine_configuration>")
		return head + signed + im + tail
	}},
	{"signed text after a second root-level manifest child", func(head, signed, evil, tail string) string {
		// The attacker's elements first, the signed text later inside an
		// element the reader ignores.
		return head + evil + "<x>" + signed + "</x>" + tail
	}},
}

// forgeParts splits the v2 vector into the parts forgery.build takes.
func forgeParts(t testing.TB) (head, signed, evil, tail string) {
	t.Helper()
	raw := string(readFile(t, vectors[1].manifestPath()))
	i := strings.Index(raw, "<machine_configuration>")
	j := strings.Index(raw, "<signature>")
	if i < 0 || j < 0 {
		t.Fatal("vector lacks <machine_configuration> or <signature>")
	}
	head, signed, tail = raw[:i], raw[i:j], raw[j:]
	evil = strings.NewReplacer(
		"<architecture>i386</architecture>", "<architecture>x86_64</architecture>",
		"ce798e9285f1a9b55724e683746057792e9910f3", "0000000000000000000000000000000000000bad",
	).Replace(signed)
	if evil == signed {
		t.Fatal("the forged elements equal the signed ones")
	}
	return head, signed, evil, tail
}

// TestForgedManifestNotVerified checks that a manifest whose signed text is
// hidden where an XML reader does not read it is either refused by
// ParseManifest or fails Verify: a verified manifest reports only what was
// signed.
func TestForgedManifestNotVerified(t *testing.T) {
	k := loadKeys(t)
	head, signed, evil, tail := forgeParts(t)
	// The pieces make the original again.
	if orig, err := ParseManifest([]byte(head + signed + tail)); err != nil {
		t.Fatal(err)
	} else if err := orig.Verify(k.userCert); err != nil {
		t.Fatal(err)
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			in := f.build(head, signed, evil, tail)
			m, err := ParseManifest([]byte(in))
			if err != nil {
				var me *ManifestError
				if !errors.As(err, &me) {
					t.Fatalf("err = %v, want *ManifestError", err)
				}
				return
			}
			if err := m.Verify(k.userCert); err == nil {
				t.Fatalf("forged manifest verified: architecture %q, part digest %x", m.Architecture, m.Parts[0].Digest)
			} else if !errors.Is(err, ErrSignature) {
				t.Fatalf("Verify = %v, want ErrSignature", err)
			}
		})
	}
}

// TestParseManifestRefusesMarkup checks the markup a manifest may not
// contain anywhere, also outside the signed elements.
func TestParseManifestRefusesMarkup(t *testing.T) {
	raw := string(readFile(t, vectors[0].manifestPath()))
	insert := func(before, s string) string {
		if !strings.Contains(raw, before) {
			t.Fatalf("vector lacks %s", before)
		}
		return strings.Replace(raw, before, s+before, 1)
	}
	tests := []struct {
		name, in string
	}{
		{"comment before root", insert("<manifest>", "<!-- c -->")},
		{"comment in image", insert("<name>", "<!-- c -->")},
		{"comment after root", raw + "<!-- c -->"},
		{"CDATA in bundler", strings.Replace(raw, "<release>3</release>", "<release><![CDATA[3]]></release>", 1)},
		{"CDATA in image", strings.Replace(raw, "<type>machine</type>", "<type><![CDATA[machine]]></type>", 1)},
		{"processing instruction", insert("<version>", "<?x y?>")},
		{"second XML declaration", insert("<manifest>", "<?xml version='1.0'?>")},
		{"XML declaration not first", " " + raw},
		{"DOCTYPE", insert("<manifest>", "<!DOCTYPE manifest>")},
		{"duplicate machine_configuration", insert("<image>", "<machine_configuration><architecture>x86_64</architecture></machine_configuration>")},
		{"duplicate version", insert("<bundler>", "<version>2007-10-10</version>")},
		{"duplicate signature", strings.Replace(raw, "</manifest>", "<signature>00</signature></manifest>", 1)},
		{"nested machine_configuration", strings.Replace(raw, "</bundler>", "<machine_configuration/></bundler>", 1)},
		{"nested image", strings.Replace(raw, "</architecture>", "</architecture><image/>", 1)},
		{"second root", raw + "<manifest/>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == raw {
				t.Fatal("test input equals the vector")
			}
			_, err := ParseManifest([]byte(tc.in))
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want *ManifestError", err)
			}
			if _, err := SignedBytes([]byte(tc.in)); err == nil {
				t.Error("SignedBytes accepts it")
			}
		})
	}
}

// TestSignedBytesAreParsedElements checks that SignedBytes returns the
// elements the fields are read from, wherever other text looks like them.
func TestSignedBytesAreParsedElements(t *testing.T) {
	head, signed, evil, tail := forgeParts(t)
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			in := []byte(f.build(head, signed, evil, tail))
			m, err := ParseManifest(in)
			if err != nil {
				return // refused, see TestForgedManifestNotVerified
			}
			sb, err := SignedBytes(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := SignedBytes(m.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sb, want) {
				t.Errorf("signed bytes are not the parsed elements:\n got %.200s…\nwant %.200s…", sb, want)
			}
		})
	}
}

func TestVectorsSignedBytesUnchanged(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			raw := readFile(t, v.manifestPath())
			i := bytes.Index(raw, []byte("<machine_configuration>"))
			j := bytes.Index(raw, []byte("<signature>"))
			sb, err := SignedBytes(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sb, raw[i:j]) {
				t.Errorf("signed bytes = %s, want %s", sb, raw[i:j])
			}
		})
	}
}
