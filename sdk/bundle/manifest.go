package bundle

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// Format constants of manifest version 2007-10-10.
const (
	// ManifestVersion is the only manifest version this package reads and writes.
	ManifestVersion = "2007-10-10"

	// PartSize is the size of every part but the last: 10 MiB.
	PartSize = 10 << 20

	// MaxImageSize is the largest image the format allows: 10 GiB.
	MaxImageSize = 10 << 30

	// MaxParts is the largest part count ParseManifest accepts. A 10 GiB
	// image needs 1024 parts of 10 MiB; tar headers, gzip framing of
	// incompressible data and the cipher padding add at most a few more.
	// The margin up to 1100 keeps bundles of other tools readable while
	// refusing absurd counts.
	MaxParts = 1100

	// MaxManifestSize is the largest manifest ParseManifest accepts. A
	// manifest with MaxParts parts is about 150 KB.
	MaxManifestSize = 1 << 20

	// AlgorithmSHA1 and AlgorithmAES128CBC are the algorithm names the
	// manifest records for digests and for the encrypted key.
	AlgorithmSHA1      = "SHA1"
	AlgorithmAES128CBC = "AES-128-CBC"
)

// Architectures the bundler accepts.
const (
	ArchI386   = "i386"
	ArchX86_64 = "x86_64"
	ArchARM64  = "arm64"
)

// Image types of the <type> element.
const (
	TypeMachine = "machine"
	TypeKernel  = "kernel"
	TypeRamdisk = "ramdisk"
)

// Bundler names the program that made a bundle.
type Bundler struct {
	Name    string
	Version string
	Release string
}

// DefaultBundler is written into manifests made by this package.
var DefaultBundler = Bundler{Name: "packer-plugin-ami", Version: "1.0", Release: "0"}

// BlockDeviceMapping maps a virtual name (ami, root, swap, ephemeralN) to a
// device name (sda1, /dev/sda1, …).
type BlockDeviceMapping struct {
	Virtual string
	Device  string
}

// PartInfo describes one part of a bundle as listed in the manifest.
type PartInfo struct {
	Index    int
	Filename string
	// Digest is the SHA-1 of the part's encrypted bytes.
	Digest [sha1.Size]byte
}

// Manifest is a bundle manifest, version 2007-10-10.
//
// A Manifest returned by ParseManifest remembers the bytes it was parsed
// from (see Bytes); a Manifest built in code is serialized by Marshal.
type Manifest struct {
	Version string // ManifestVersion
	Bundler Bundler

	// Machine configuration.
	Architecture string
	// BlockDeviceMappings are written sorted by virtual name (byte order).
	BlockDeviceMappings []BlockDeviceMapping
	KernelID            string // optional
	RamdiskID           string // optional
	ProductCodes        []string

	// Image.
	Name string // bundle name: tar entry, part and manifest prefix
	User string // AWS account id, 12 digits
	Type string // TypeMachine, TypeKernel or TypeRamdisk
	// Ancestry lists ancestor AMI ids (optional).
	Ancestry []string
	// Digest is the SHA-1 of the uncompressed tar stream.
	Digest [sha1.Size]byte
	// Size is the image size in bytes.
	Size int64
	// BundledSize is the sum of the part sizes.
	BundledSize int64
	// The AES key and IV, each as a 32-character lowercase hex string,
	// encrypted with RSA PKCS #1 v1.5 for EC2's and for the user's
	// certificate.
	EC2EncryptedKey  []byte
	UserEncryptedKey []byte
	EC2EncryptedIV   []byte
	UserEncryptedIV  []byte
	Parts            []PartInfo

	// Signature is the RSASSA-PKCS1-v1_5 SHA-1 signature over SignedBytes.
	Signature []byte

	raw []byte // bytes ParseManifest read; nil when built in code or changed by Sign
}

// ManifestName returns the file name of the manifest of the bundle name.
func ManifestName(name string) string { return name + ".manifest.xml" }

// PartName returns the file name of part index of a bundle with count parts:
// "<name>.part.<index>", the index zero-padded to the number of decimal
// digits of count.
func PartName(name string, index, count int) string {
	return name + ".part." + padIndex(index, digits(count))
}

// IsPartName reports whether filename is the name of a part of the bundle
// name: "<name>.part.<N>", N one or more decimal digits. Readers that act on
// the file names a manifest lists (deleting them, for one) use it to tell
// the bundle's own parts from anything else a manifest may name.
func IsPartName(name, filename string) bool {
	idx, ok := strings.CutPrefix(filename, name+".part.")
	if !ok || idx == "" || name == "" {
		return false
	}
	for i := 0; i < len(idx); i++ {
		if idx[i] < '0' || idx[i] > '9' {
			return false
		}
	}
	return true
}

func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

func padIndex(index, width int) string {
	s := strconv.Itoa(index)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// MaxPartSize returns the largest size a part of m can have: PartSize, or
// the bundled size when that is smaller. Readers stop reading a part that
// goes beyond it.
func (m *Manifest) MaxPartSize() int64 { return min(m.BundledSize, PartSize) }

// Bytes returns the manifest's bytes: those it was parsed from, if it came
// from ParseManifest and was not signed again since, else Marshal's. The
// signature covers these bytes.
func (m *Manifest) Bytes() []byte {
	if m.raw != nil {
		return slices.Clone(m.raw)
	}
	return m.Marshal()
}

// Marshal serializes m in the exact form of the format: one line, no
// trailing newline, attributes in single quotes, optional elements omitted.
// Marshal does not validate m.
func (m *Manifest) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(3072 + 160*len(m.Parts))
	b.WriteString("<?xml version='1.0'?><manifest>")
	elem(&b, "version", m.Version)
	b.WriteString("<bundler>")
	elem(&b, "name", m.Bundler.Name)
	elem(&b, "version", m.Bundler.Version)
	elem(&b, "release", m.Bundler.Release)
	b.WriteString("</bundler>")
	m.writeMachineConfiguration(&b)
	m.writeImage(&b)
	elem(&b, "signature", hex.EncodeToString(m.Signature))
	b.WriteString("</manifest>")
	return b.Bytes()
}

func (m *Manifest) writeMachineConfiguration(b *bytes.Buffer) {
	b.WriteString("<machine_configuration>")
	elem(b, "architecture", m.Architecture)
	if len(m.BlockDeviceMappings) > 0 {
		bdm := slices.Clone(m.BlockDeviceMappings)
		slices.SortStableFunc(bdm, func(a, b BlockDeviceMapping) int { return strings.Compare(a.Virtual, b.Virtual) })
		b.WriteString("<block_device_mapping>")
		for _, x := range bdm {
			b.WriteString("<mapping>")
			elem(b, "virtual", x.Virtual)
			elem(b, "device", x.Device)
			b.WriteString("</mapping>")
		}
		b.WriteString("</block_device_mapping>")
	}
	optElem(b, "kernel_id", m.KernelID)
	optElem(b, "ramdisk_id", m.RamdiskID)
	listElem(b, "product_codes", "product_code", m.ProductCodes)
	b.WriteString("</machine_configuration>")
}

func (m *Manifest) writeImage(b *bytes.Buffer) {
	b.WriteString("<image>")
	elem(b, "name", m.Name)
	elem(b, "user", m.User)
	elem(b, "type", m.Type)
	listElem(b, "ancestry", "ancestor_ami_id", m.Ancestry)
	b.WriteString("<digest algorithm='SHA1'>")
	b.WriteString(hex.EncodeToString(m.Digest[:]))
	b.WriteString("</digest>")
	elem(b, "size", strconv.FormatInt(m.Size, 10))
	elem(b, "bundled_size", strconv.FormatInt(m.BundledSize, 10))
	b.WriteString("<ec2_encrypted_key algorithm='AES-128-CBC'>")
	b.WriteString(hex.EncodeToString(m.EC2EncryptedKey))
	b.WriteString("</ec2_encrypted_key><user_encrypted_key algorithm='AES-128-CBC'>")
	b.WriteString(hex.EncodeToString(m.UserEncryptedKey))
	b.WriteString("</user_encrypted_key>")
	elem(b, "ec2_encrypted_iv", hex.EncodeToString(m.EC2EncryptedIV))
	elem(b, "user_encrypted_iv", hex.EncodeToString(m.UserEncryptedIV))
	b.WriteString("<parts count='")
	b.WriteString(strconv.Itoa(len(m.Parts)))
	b.WriteString("'>")
	for _, p := range m.Parts {
		b.WriteString("<part index='")
		b.WriteString(strconv.Itoa(p.Index))
		b.WriteString("'>")
		elem(b, "filename", p.Filename)
		b.WriteString("<digest algorithm='SHA1'>")
		b.WriteString(hex.EncodeToString(p.Digest[:]))
		b.WriteString("</digest></part>")
	}
	b.WriteString("</parts></image>")
}

func elem(b *bytes.Buffer, name, text string) {
	b.WriteByte('<')
	b.WriteString(name)
	b.WriteByte('>')
	escapeText(b, text)
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
}

func optElem(b *bytes.Buffer, name, text string) {
	if text != "" {
		elem(b, name, text)
	}
}

// listElem writes the element name holding one element item per text; an
// empty list is left out of the manifest altogether.
func listElem(b *bytes.Buffer, name, item string, texts []string) {
	if len(texts) == 0 {
		return
	}
	b.WriteByte('<')
	b.WriteString(name)
	b.WriteByte('>')
	for _, t := range texts {
		elem(b, item, t)
	}
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
}

// escapeText writes s with the five XML special characters escaped the way
// the original tools escape them.
func escapeText(b *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		case '\'':
			esc = "&apos;"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(esc)
		last = i + 1
	}
	b.WriteString(s[last:])
}
