package bundle

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// xmlManifest mirrors the manifest elements for encoding/xml; every leaf is
// read as text and validated by ParseManifest.
type xmlManifest struct {
	XMLName xml.Name `xml:"manifest"`
	Version string   `xml:"version"`
	Bundler struct {
		Name    string `xml:"name"`
		Version string `xml:"version"`
		Release string `xml:"release"`
	} `xml:"bundler"`
	Machine *struct {
		Architecture string `xml:"architecture"`
		Mappings     []struct {
			Virtual string `xml:"virtual"`
			Device  string `xml:"device"`
		} `xml:"block_device_mapping>mapping"`
		KernelID     string   `xml:"kernel_id"`
		RamdiskID    string   `xml:"ramdisk_id"`
		ProductCodes []string `xml:"product_codes>product_code"`
	} `xml:"machine_configuration"`
	Image *struct {
		Name             string       `xml:"name"`
		User             string       `xml:"user"`
		Type             string       `xml:"type"`
		Ancestry         []string     `xml:"ancestry>ancestor_ami_id"`
		Digest           xmlAlgorithm `xml:"digest"`
		Size             string       `xml:"size"`
		BundledSize      string       `xml:"bundled_size"`
		EC2EncryptedKey  xmlAlgorithm `xml:"ec2_encrypted_key"`
		UserEncryptedKey xmlAlgorithm `xml:"user_encrypted_key"`
		EC2EncryptedIV   string       `xml:"ec2_encrypted_iv"`
		UserEncryptedIV  string       `xml:"user_encrypted_iv"`
		Parts            *struct {
			Count string `xml:"count,attr"`
			Part  []struct {
				Index    string       `xml:"index,attr"`
				Filename string       `xml:"filename"`
				Digest   xmlAlgorithm `xml:"digest"`
			} `xml:"part"`
		} `xml:"parts"`
	} `xml:"image"`
	Signature string `xml:"signature"`
}

type xmlAlgorithm struct {
	Algorithm string `xml:"algorithm,attr"`
	Value     string `xml:",chardata"`
}

// maxBundledSize bounds <bundled_size>: MaxParts full parts.
const maxBundledSize = int64(MaxParts) * PartSize

// maxRSABytes bounds each encrypted key and the signature: RSA-16384.
const maxRSABytes = 2048

// ParseManifest parses a manifest of version 2007-10-10, as written by the
// original tools or by Marshal, and validates its bounds: sizes, part count
// and indexes, file names (plain names only: no '/', '\\' or ".."),
// hexadecimal digests and keys. It refuses comments, CDATA sections,
// processing instructions other than the XML declaration, DOCTYPE and other
// declarations, and children of <manifest> that appear twice, so that the
// signed bytes (SignedBytes) are the elements the fields are read from. It
// keeps b, so that Bytes returns it unchanged; for a manifest in the format's exact form Marshal returns the
// same bytes. Errors are *ManifestError naming the offending element.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, &ManifestError{Reason: fmt.Sprintf("larger than %d bytes", MaxManifestSize)}
	}
	var x xmlManifest
	sc := newScanner(b)
	if err := xml.NewTokenDecoder(sc).Decode(&x); err != nil {
		return nil, manifestXMLError(err)
	}
	// Only whitespace may follow the root element.
	if err := sc.drain(); err != nil {
		return nil, err
	}
	m, err := fromXML(&x)
	if err != nil {
		return nil, err
	}
	if _, err := sc.signedBytes(); err != nil {
		return nil, err
	}
	m.raw = slices.Clone(b)
	return m, nil
}

func fromXML(x *xmlManifest) (*Manifest, error) {
	if x.Version != ManifestVersion {
		return nil, &ManifestError{Field: "version", Reason: fmt.Sprintf("%q is not supported (want %s)", clip(x.Version), ManifestVersion)}
	}
	if x.Machine == nil {
		return nil, &ManifestError{Field: "machine_configuration", Reason: "missing"}
	}
	if x.Image == nil {
		return nil, &ManifestError{Field: "image", Reason: "missing"}
	}
	mc, im := x.Machine, x.Image
	m := &Manifest{
		Version:      x.Version,
		Bundler:      Bundler{Name: x.Bundler.Name, Version: x.Bundler.Version, Release: x.Bundler.Release},
		Architecture: mc.Architecture,
		KernelID:     mc.KernelID,
		RamdiskID:    mc.RamdiskID,
		ProductCodes: mc.ProductCodes,
		Name:         im.Name,
		User:         im.User,
		Type:         im.Type,
		Ancestry:     im.Ancestry,
	}
	if m.Architecture == "" {
		return nil, &ManifestError{Field: "machine_configuration/architecture", Reason: "missing"}
	}
	for _, bd := range mc.Mappings {
		m.BlockDeviceMappings = append(m.BlockDeviceMappings, BlockDeviceMapping{Virtual: bd.Virtual, Device: bd.Device})
	}
	if err := checkFileName(m.Name); err != nil {
		return nil, &ManifestError{Field: "image/name", Reason: err.Error()}
	}
	if !isAccount(m.User) {
		return nil, &ManifestError{Field: "image/user", Reason: fmt.Sprintf("%q is not a 12-digit account id", clip(m.User))}
	}
	var err error
	if m.Digest, err = parseDigest("image/digest", im.Digest); err != nil {
		return nil, err
	}
	if m.Size, err = parseSize("image/size", im.Size, MaxImageSize); err != nil {
		return nil, err
	}
	if m.BundledSize, err = parseSize("image/bundled_size", im.BundledSize, maxBundledSize); err != nil {
		return nil, err
	}
	for _, k := range []struct {
		field string
		alg   *string
		value string
		dst   *[]byte
	}{
		{"image/ec2_encrypted_key", &im.EC2EncryptedKey.Algorithm, im.EC2EncryptedKey.Value, &m.EC2EncryptedKey},
		{"image/user_encrypted_key", &im.UserEncryptedKey.Algorithm, im.UserEncryptedKey.Value, &m.UserEncryptedKey},
		{"image/ec2_encrypted_iv", nil, im.EC2EncryptedIV, &m.EC2EncryptedIV},
		{"image/user_encrypted_iv", nil, im.UserEncryptedIV, &m.UserEncryptedIV},
	} {
		if k.alg != nil && *k.alg != AlgorithmAES128CBC {
			return nil, &ManifestError{Field: k.field, Reason: fmt.Sprintf("algorithm %q is not supported (want %s)", clip(*k.alg), AlgorithmAES128CBC)}
		}
		if *k.dst, err = parseHex(k.field, k.value, maxRSABytes); err != nil {
			return nil, err
		}
		if len(*k.dst) == 0 {
			return nil, &ManifestError{Field: k.field, Reason: "missing"}
		}
	}
	if m.Parts, err = parseParts(x); err != nil {
		return nil, err
	}
	if m.Signature, err = parseHex("signature", x.Signature, maxRSABytes); err != nil {
		return nil, err
	}
	return m, nil
}

func parseParts(x *xmlManifest) ([]PartInfo, error) {
	ps := x.Image.Parts
	if ps == nil {
		return nil, &ManifestError{Field: "image/parts", Reason: "missing"}
	}
	count, err := strconv.Atoi(ps.Count)
	if err != nil || count < 1 || count > MaxParts {
		return nil, &ManifestError{Field: "image/parts/@count", Reason: fmt.Sprintf("%q is not a count from 1 to %d", clip(ps.Count), MaxParts)}
	}
	if len(ps.Part) != count {
		return nil, &ManifestError{Field: "image/parts", Reason: fmt.Sprintf("count is %d but %d parts are listed", count, len(ps.Part))}
	}
	parts := make([]PartInfo, count)
	seen := make([]bool, count)
	names := make(map[string]bool, count)
	for i, p := range ps.Part {
		field := fmt.Sprintf("image/parts/part[%d]", i)
		idx, err := strconv.Atoi(p.Index)
		if err != nil || idx < 0 || idx >= count {
			return nil, &ManifestError{Field: field + "/@index", Reason: fmt.Sprintf("%q is not an index from 0 to %d", clip(p.Index), count-1)}
		}
		if seen[idx] {
			return nil, &ManifestError{Field: field + "/@index", Reason: fmt.Sprintf("index %d appears twice", idx)}
		}
		seen[idx] = true
		if err := checkFileName(p.Filename); err != nil {
			return nil, &ManifestError{Field: field + "/filename", Reason: err.Error()}
		}
		if names[p.Filename] {
			return nil, &ManifestError{Field: field + "/filename", Reason: fmt.Sprintf("%q appears twice", p.Filename)}
		}
		names[p.Filename] = true
		dg, err := parseDigest(field+"/digest", p.Digest)
		if err != nil {
			return nil, err
		}
		parts[idx] = PartInfo{Index: idx, Filename: p.Filename, Digest: dg}
	}
	return parts, nil
}

func parseDigest(field string, v xmlAlgorithm) ([sha1.Size]byte, error) {
	var d [sha1.Size]byte
	if v.Algorithm != AlgorithmSHA1 {
		return d, &ManifestError{Field: field, Reason: fmt.Sprintf("algorithm %q is not supported (want %s)", clip(v.Algorithm), AlgorithmSHA1)}
	}
	if len(v.Value) != 2*sha1.Size {
		return d, &ManifestError{Field: field, Reason: fmt.Sprintf("%q is not 40 hex digits", clip(v.Value))}
	}
	if _, err := hex.Decode(d[:], []byte(v.Value)); err != nil {
		return d, &ManifestError{Field: field, Reason: "not hexadecimal", Err: err}
	}
	return d, nil
}

func parseSize(field, s string, max int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > max || s[0] == '+' {
		return 0, &ManifestError{Field: field, Reason: fmt.Sprintf("%q is not a size from 1 to %d", clip(s), max)}
	}
	return n, nil
}

func parseHex(field, s string, maxBytes int) ([]byte, error) {
	if len(s) > 2*maxBytes {
		return nil, &ManifestError{Field: field, Reason: fmt.Sprintf("longer than %d hex digits", 2*maxBytes)}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, &ManifestError{Field: field, Reason: "not hexadecimal", Err: err}
	}
	return b, nil
}

// checkFileName accepts plain file names only, so that names from a manifest
// cannot reach outside the bundle's directory or prefix.
func checkFileName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > 255:
		return fmt.Errorf("longer than 255 bytes")
	case strings.ContainsAny(s, "/\\"):
		return fmt.Errorf("%q contains a path separator", s)
	case strings.Contains(s, ".."):
		return fmt.Errorf("%q contains \"..\"", s)
	case s == ".":
		return fmt.Errorf("%q is not a file name", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q contains a control character", s)
		}
	}
	return nil
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens s for error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// SignedBytes returns the bytes a manifest's signature covers: the
// <machine_configuration> element, immediately followed by the <image>
// element, exactly as they stand in raw. These are the elements, children of
// the root <manifest>, whose content ParseManifest reads; text that merely
// looks like them (in a comment, a CDATA section, another element) does not
// count. raw must be a manifest ParseManifest's markup rules allow: no
// comments, CDATA sections, processing instructions other than the XML
// declaration, or DOCTYPE, and each child of <manifest> at most once.
func SignedBytes(raw []byte) ([]byte, error) {
	sc := newScanner(raw)
	if err := sc.drain(); err != nil {
		return nil, err
	}
	return sc.signedBytes()
}

// scanner passes the tokens of a manifest on to an xml.Decoder and refuses
// the markup a manifest may not contain. It records where the elements the
// signature covers start and end, so that the signed bytes are the very
// elements the decoder reads the fields from.
type scanner struct {
	raw   []byte
	d     *xml.Decoder
	depth int
	roots int
	seen  map[string]bool // children of <manifest>
	// mc and im are the [start, end) offsets in raw of <machine_configuration>
	// and <image>; end is 0 until the element is closed.
	mc, im [2]int64
	err    error // markup error, kept so that it is not wrapped as "not valid XML"
}

func newScanner(raw []byte) *scanner {
	return &scanner{raw: raw, d: xml.NewDecoder(bytes.NewReader(raw)), seen: map[string]bool{}}
}

// Token implements xml.TokenReader.
func (s *scanner) Token() (xml.Token, error) {
	if s.err != nil {
		return nil, s.err
	}
	off := s.d.InputOffset()
	tok, err := s.d.Token()
	if err != nil {
		return nil, err
	}
	if err := s.check(tok, off); err != nil {
		s.err = err
		return nil, err
	}
	return xml.CopyToken(tok), nil
}

func (s *scanner) check(tok xml.Token, off int64) error {
	switch t := tok.(type) {
	case xml.StartElement:
		s.depth++
		name := t.Name.Local
		switch s.depth {
		case 1:
			s.roots++
			if s.roots > 1 {
				return &ManifestError{Reason: "content after </manifest>"}
			}
			if name != "manifest" {
				return &ManifestError{Reason: fmt.Sprintf("root element is <%s>, want <manifest>", clip(name))}
			}
		case 2:
			if s.seen[name] {
				return &ManifestError{Field: name, Reason: "appears twice"}
			}
			s.seen[name] = true
			switch name {
			case "machine_configuration":
				s.mc[0] = off
			case "image":
				s.im[0] = off
			}
		default:
			if name == "machine_configuration" || name == "image" || name == "manifest" {
				return &ManifestError{Field: name, Reason: "not a child of <manifest>"}
			}
		}
	case xml.EndElement:
		if s.depth == 2 {
			switch t.Name.Local {
			case "machine_configuration":
				s.mc[1] = s.d.InputOffset()
			case "image":
				s.im[1] = s.d.InputOffset()
			}
		}
		s.depth--
	case xml.CharData:
		// A CDATA section is a token of its own, starting at "<".
		if int(off) < len(s.raw) && s.raw[off] == '<' {
			return &ManifestError{Reason: "contains a CDATA section"}
		}
		if s.depth == 0 && len(bytes.TrimSpace(t)) != 0 {
			return &ManifestError{Reason: "text outside <manifest>"}
		}
	case xml.Comment:
		return &ManifestError{Reason: "contains a comment"}
	case xml.ProcInst:
		if t.Target != "xml" || off != 0 {
			return &ManifestError{Reason: fmt.Sprintf("contains a processing instruction <?%s?> other than the XML declaration at the start", clip(t.Target))}
		}
	case xml.Directive:
		return &ManifestError{Reason: "contains a DOCTYPE or other <!…> declaration"}
	default:
		return &ManifestError{Reason: fmt.Sprintf("unexpected XML token %T", tok)}
	}
	return nil
}

// drain reads and checks the remaining tokens.
func (s *scanner) drain() error {
	for {
		_, err := s.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return manifestXMLError(err)
		}
	}
	if s.roots == 0 {
		return &ManifestError{Reason: "no <manifest> element"}
	}
	return nil
}

// signedBytes returns the recorded elements, once all tokens were read.
func (s *scanner) signedBytes() ([]byte, error) {
	for _, e := range []struct {
		name string
		span [2]int64
	}{{"machine_configuration", s.mc}, {"image", s.im}} {
		if e.span[1] == 0 {
			return nil, &ManifestError{Field: e.name, Reason: "no <" + e.name + "> element to sign"}
		}
	}
	out := make([]byte, 0, (s.mc[1]-s.mc[0])+(s.im[1]-s.im[0]))
	out = append(out, s.raw[s.mc[0]:s.mc[1]]...)
	return append(out, s.raw[s.im[0]:s.im[1]]...), nil
}

// manifestXMLError returns err if it is a *ManifestError, else a
// *ManifestError wrapping it.
func manifestXMLError(err error) error {
	var me *ManifestError
	if errors.As(err, &me) {
		return me
	}
	return &ManifestError{Reason: "not valid XML", Err: err}
}
