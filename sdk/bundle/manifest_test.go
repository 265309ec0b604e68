package bundle

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPartName(t *testing.T) {
	tests := []struct {
		index, count int
		want         string
	}{
		{0, 1, "n.part.0"},
		{8, 9, "n.part.8"},
		{0, 10, "n.part.00"},
		{9, 10, "n.part.09"},
		{99, 100, "n.part.099"},
		{5, 100, "n.part.005"},
		{1024, 1025, "n.part.1024"},
		{7, 1025, "n.part.0007"},
	}
	for _, tc := range tests {
		if got := PartName("n", tc.index, tc.count); got != tc.want {
			t.Errorf("PartName(n, %d, %d) = %q, want %q", tc.index, tc.count, got, tc.want)
		}
	}
}

func TestIsPartName(t *testing.T) {
	tests := []struct {
		name, file string
		want       bool
	}{
		{"root.img", "root.img.part.0", true},
		{"root.img", "root.img.part.017", true},
		{"root.img", "root.img.part.", false},
		{"root.img", "root.img.part.0.bak", false},
		{"root.img", "root.img.part.-1", false},
		{"root.img", "root.img.partx", false},
		{"root.img", "root.img2.part.0", false},
		{"root.img", "root.img.manifest.xml", false},
		{"root.img", "sub/root.img.part.0", false},
		{"root.img", "other.part.0", false},
		{"", ".part.0", false},
	}
	for _, tc := range tests {
		if got := IsPartName(tc.name, tc.file); got != tc.want {
			t.Errorf("IsPartName(%q, %q) = %v, want %v", tc.name, tc.file, got, tc.want)
		}
	}
}

// sampleManifest is a manifest built in code with every optional field.
func sampleManifest() *Manifest {
	m := &Manifest{
		Version:             ManifestVersion,
		Bundler:             Bundler{"ec2-ami-tools", "1.5", "3"},
		Architecture:        ArchARM64,
		BlockDeviceMappings: []BlockDeviceMapping{{"swap", "sda3"}, {"ami", "sda1"}, {"ephemeral0", "sdb"}},
		KernelID:            "aki-1a2b3c4d",
		RamdiskID:           "ari-5e6f7a8b",
		ProductCodes:        []string{"A&B", "<c>"},
		Name:                "it's",
		User:                "123456789012",
		Type:                TypeMachine,
		Ancestry:            []string{"ami-11111111", "ami-22222222"},
		Size:                1 << 30,
		BundledSize:         3*PartSize + 5,
		EC2EncryptedKey:     []byte{1, 2},
		UserEncryptedKey:    []byte{3, 4},
		EC2EncryptedIV:      []byte{5, 6},
		UserEncryptedIV:     []byte{7, 8},
		Signature:           []byte{0xab, 0xcd},
	}
	m.Digest = sha1.Sum([]byte("tar"))
	for i := range 4 {
		m.Parts = append(m.Parts, PartInfo{Index: i, Filename: PartName(m.Name, i, 4), Digest: sha1.Sum([]byte{byte(i)})})
	}
	return m
}

func TestMarshalGolden(t *testing.T) {
	k := loadKeys(t)
	m := sampleManifest()
	if err := m.Sign(k.userKey); err != nil {
		t.Fatal(err)
	}
	b := m.Marshal()
	golden(t, "sample.manifest.xml", b)
	if bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 0 {
		t.Error("manifest is not one line without a trailing newline")
	}
	if bytes.ContainsRune(b, '"') {
		t.Error("manifest contains a double quote")
	}
	if err := m.Verify(k.userCert); err != nil {
		t.Error(err)
	}
	p, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Marshal(), b) {
		t.Error("parse and marshal changed the bytes")
	}
	if err := p.Verify(k.userCert); err != nil {
		t.Error(err)
	}
	if p.Name != "it's" || p.ProductCodes[0] != "A&B" || p.ProductCodes[1] != "<c>" {
		t.Errorf("unescaped fields: %q %q", p.Name, p.ProductCodes)
	}
}

func TestMarshalOmitsOptional(t *testing.T) {
	m := sampleManifest()
	m.BlockDeviceMappings, m.KernelID, m.RamdiskID, m.ProductCodes, m.Ancestry = nil, "", "", nil, nil
	b := string(m.Marshal())
	for _, e := range []string{"block_device_mapping", "kernel_id", "ramdisk_id", "product_codes", "ancestry"} {
		if strings.Contains(b, e) {
			t.Errorf("empty %s written", e)
		}
	}
	if !strings.Contains(b, "<machine_configuration><architecture>arm64</architecture></machine_configuration><image>") {
		t.Errorf("machine configuration: %s", b)
	}
}

// TestParseLenient parses forms the exact serialization would not produce
// but XML allows: double quotes, whitespace, uppercase hex. The raw bytes
// are kept, so the signature is checked over them as they stand.
func TestParseLenient(t *testing.T) {
	k := loadKeys(t)
	m := sampleManifest()
	if err := m.Sign(k.userKey); err != nil {
		t.Fatal(err)
	}
	canon := m.Marshal()
	loose := strings.NewReplacer("'", `"`, "><", ">\n  <").Replace(string(canon))
	loose = strings.Replace(loose, `<?xml version="1.0"?>`, `<?xml version="1.0" encoding="UTF-8"?>`, 1) + "\n"
	p, err := ParseManifest([]byte(loose))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Bytes(), []byte(loose)) {
		t.Error("Bytes does not return the parsed bytes")
	}
	if p.Name != m.Name || p.Size != m.Size || len(p.Parts) != 4 || p.Parts[3].Digest != m.Parts[3].Digest {
		t.Errorf("parsed %+v", p)
	}
	// The signed bytes changed (quotes, whitespace), as for the original tools.
	if err := p.Verify(k.userCert); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify = %v, want ErrSignature", err)
	}
	if !bytes.Equal(p.Marshal(), canon) {
		t.Error("Marshal of the loose form is not the exact form")
	}
}

func TestParseManifestErrors(t *testing.T) {
	valid := string(sampleManifest().Marshal())
	replace := func(old, new string) string {
		if !strings.Contains(valid, old) {
			panic("sample lacks " + old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	// cut replaces n bytes after the first occurrence of after with repl.
	cut := func(after string, n int, repl string) string {
		i := strings.Index(valid, after) + len(after)
		return valid[:i] + repl + valid[i+n:]
	}
	// between replaces the first element from start to end (inclusive).
	between := func(start, end, repl string) string {
		i, j := strings.Index(valid, start), strings.Index(valid, end)+len(end)
		return valid[:i] + repl + valid[j:]
	}
	part := func(i int) string { return fmt.Sprintf("<filename>it&apos;s.part.%d</filename>", i) }
	manyParts := func(n int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "<parts count='%d'>", n)
		for i := range n {
			fmt.Fprintf(&b, "<part index='%d'><filename>x.part.%d</filename><digest algorithm='SHA1'>%040x</digest></part>", i, i, i)
		}
		b.WriteString("</parts>")
		start := strings.Index(valid, "<parts ")
		end := strings.Index(valid, "</parts>") + len("</parts>")
		return valid[:start] + b.String() + valid[end:]
	}
	tests := []struct {
		name, in, field string
	}{
		{"not xml", "hello", ""},
		{"empty", "", ""},
		{"too large", valid + strings.Repeat(" ", MaxManifestSize), ""},
		{"other root", "<?xml version='1.0'?><other/>", ""},
		{"trailing element", valid + "<x/>", ""},
		{"version", replace("2007-10-10", "2020-01-01"), "version"},
		{"no machine configuration", between("<machine_configuration>", "</machine_configuration>", ""), "machine_configuration"},
		{"no architecture", replace("<architecture>arm64</architecture>", ""), "machine_configuration/architecture"},
		{"slash in name", replace("<name>it&apos;s</name>", "<name>a/b</name>"), "image/name"},
		{"user", replace("<user>123456789012</user>", "<user>1234</user>"), "image/user"},
		{"negative size", replace("<size>1073741824</size>", "<size>-5</size>"), "image/size"},
		{"zero size", replace("<size>1073741824</size>", "<size>0</size>"), "image/size"},
		{"huge size", replace("<size>1073741824</size>", "<size>99999999999999999999999</size>"), "image/size"},
		{"size over 10 GiB", replace("<size>1073741824</size>", "<size>10737418241</size>"), "image/size"},
		{"plus size", replace("<size>1073741824</size>", "<size>+5</size>"), "image/size"},
		{"huge bundled size", replace("<bundled_size>31457285</bundled_size>", "<bundled_size>999999999999</bundled_size>"), "image/bundled_size"},
		{"digest algorithm", replace("<digest algorithm='SHA1'>", "<digest algorithm='MD5'>"), "image/digest"},
		{"digest short", replace("<digest algorithm='SHA1'>", "<digest algorithm='SHA1'>0"), "image/digest"},
		{"digest not hex", cut("<digest algorithm='SHA1'>", 2, "zz"), "image/digest"},
		{"key algorithm", replace("<ec2_encrypted_key algorithm='AES-128-CBC'>", "<ec2_encrypted_key algorithm='AES-256-CBC'>"), "image/ec2_encrypted_key"},
		{"key not hex", replace("<user_encrypted_key algorithm='AES-128-CBC'>0304", "<user_encrypted_key algorithm='AES-128-CBC'>03g4"), "image/user_encrypted_key"},
		{"iv odd hex", replace("<user_encrypted_iv>0708", "<user_encrypted_iv>070"), "image/user_encrypted_iv"},
		{"iv missing", replace("<ec2_encrypted_iv>0506</ec2_encrypted_iv>", ""), "image/ec2_encrypted_iv"},
		{"signature not hex", replace("<signature>", "<signature>x"), "signature"},
		{"no parts", between("<parts ", "</parts>", ""), "image/parts"},
		{"count absurd", replace("<parts count='4'>", "<parts count='100000000'>"), "image/parts/@count"},
		{"count negative", replace("<parts count='4'>", "<parts count='-1'>"), "image/parts/@count"},
		{"count mismatch", replace("<parts count='4'>", "<parts count='5'>"), "image/parts"},
		{"too many parts", manyParts(MaxParts + 1), "image/parts/@count"},
		{"index out of range", replace("<part index='3'>", "<part index='4'>"), "image/parts/part[3]/@index"},
		{"index twice", replace("<part index='3'>", "<part index='2'>"), "image/parts/part[3]/@index"},
		{"index not a number", replace("<part index='3'>", "<part index='x'>"), "image/parts/part[3]/@index"},
		{"filename slash", replace(part(2), "<filename>../etc/passwd</filename>"), "image/parts/part[2]/filename"},
		{"filename backslash", replace(part(2), `<filename>a\b</filename>`), "image/parts/part[2]/filename"},
		{"filename dotdot", replace(part(2), "<filename>..</filename>"), "image/parts/part[2]/filename"},
		{"filename empty", replace(part(2), "<filename></filename>"), "image/parts/part[2]/filename"},
		{"filename control", replace(part(2), "<filename>a&#9;b</filename>"), "image/parts/part[2]/filename"},
		{"filename twice", replace(part(2), part(1)), "image/parts/part[2]/filename"},
		{"part digest", replace("</filename><digest algorithm='SHA1'>", "</filename><digest algorithm='SHA1'>00"), "image/parts/part[0]/digest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.in))
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v (manifest %v), want *ManifestError", err, m != nil)
			}
			if me.Field != tc.field {
				t.Errorf("field %q, want %q (err: %v)", me.Field, tc.field, err)
			}
		})
	}
	// The bound of part counts still admits a full 10 GiB image.
	if _, err := ParseManifest([]byte(manyParts(1025))); err != nil {
		var me *ManifestError
		if !errors.As(err, &me) || strings.HasPrefix(me.Field, "image/parts") {
			t.Errorf("1025 parts refused: %v", err)
		}
	}
}

func TestSignedBytesErrors(t *testing.T) {
	for _, in := range []string{"", "<image></image>", "<machine_configuration></machine_configuration>", "<machine_configuration><image></image>"} {
		if _, err := SignedBytes([]byte(in)); err == nil {
			t.Errorf("SignedBytes(%q) succeeded", in)
		}
	}
}

func TestParseBlockDeviceMappings(t *testing.T) {
	tests := []struct {
		in      string
		want    []BlockDeviceMapping
		wantErr bool
	}{
		{"", nil, false},
		{"ami=sda1", []BlockDeviceMapping{{"ami", "sda1"}}, false},
		{"ami=sda1, root=/dev/sda1,swap=sda3", []BlockDeviceMapping{{"ami", "sda1"}, {"root", "/dev/sda1"}, {"swap", "sda3"}}, false},
		{"ami", nil, true},
		{"ami=", nil, true},
		{"=sda1", nil, true},
		{"ami=sda1,,root=sda2", nil, true},
		{"ami=sda1,ami=sda2", nil, true},
	}
	for _, tc := range tests {
		got, err := ParseBlockDeviceMappings(tc.in)
		if (err != nil) != tc.wantErr || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseBlockDeviceMappings(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
