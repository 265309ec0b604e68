package bundle

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
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
// hexadecimal digests and keys. It keeps b, so that Bytes returns it
// unchanged; for a manifest in the format's exact form Marshal returns the
// same bytes. Errors are *ManifestError naming the offending element.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, &ManifestError{Reason: fmt.Sprintf("larger than %d bytes", MaxManifestSize)}
	}
	var x xmlManifest
	d := xml.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&x); err != nil {
		return nil, &ManifestError{Reason: "not valid XML", Err: err}
	}
	// Only whitespace may follow the root element.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &ManifestError{Reason: "not valid XML after </manifest>", Err: err}
		}
		if cd, ok := tok.(xml.CharData); ok && len(bytes.TrimSpace(cd)) == 0 {
			continue
		}
		if _, ok := tok.(xml.Comment); ok {
			continue
		}
		return nil, &ManifestError{Reason: "content after </manifest>"}
	}
	m, err := fromXML(&x)
	if err != nil {
		return nil, err
	}
	if _, err := SignedBytes(b); err != nil {
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

// SignedBytes returns the bytes a manifest's signature covers: from the
// first "<machine_configuration>" to its closing tag, immediately followed by
// the bytes from the first "<image>" to its closing tag, exactly as they
// stand in raw.
func SignedBytes(raw []byte) ([]byte, error) {
	mc, err := span(raw, "machine_configuration")
	if err != nil {
		return nil, err
	}
	im, err := span(raw, "image")
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(mc)+len(im))
	return append(append(out, mc...), im...), nil
}

func span(raw []byte, name string) ([]byte, error) {
	open, closing := "<"+name+">", "</"+name+">"
	i := bytes.Index(raw, []byte(open))
	if i < 0 {
		return nil, &ManifestError{Field: name, Reason: "no " + open + " element to sign"}
	}
	j := bytes.Index(raw[i:], []byte(closing))
	if j < 0 {
		return nil, &ManifestError{Field: name, Reason: "no " + closing + " after " + open}
	}
	return raw[i : i+j+len(closing)], nil
}
