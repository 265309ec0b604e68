package bundlestore

import (
	"fmt"
	"path"
	"strings"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

const manifestSuffix = ".manifest.xml"

// Location names a bundle in S3: the bucket, the key prefix (a "folder",
// possibly empty) and the bundle name. The manifest is at
// "<prefix>/<name>.manifest.xml" and the parts at "<prefix>/<name>.part.N".
type Location struct {
	Bucket string
	Prefix string
	Name   string
}

// Key returns the object key of filename under prefix: "<prefix>/<filename>",
// or just filename when prefix is empty. Leading and trailing slashes of
// prefix are ignored.
func Key(prefix, filename string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return filename
	}
	return prefix + "/" + filename
}

// Key returns the object key of filename in l's prefix.
func (l Location) Key(filename string) string { return Key(l.Prefix, filename) }

// ManifestKey returns the key of the bundle's manifest.
func (l Location) ManifestKey() string { return l.Key(bundle.ManifestName(l.Name)) }

// ImageLocation returns the manifest location RegisterImage expects:
// "<bucket>/<prefix>/<name>.manifest.xml", without "s3://".
func (l Location) ImageLocation() string { return l.Bucket + "/" + l.ManifestKey() }

// String returns the location as an s3:// URL of the manifest.
func (l Location) String() string { return "s3://" + l.ImageLocation() }

// ParseImageLocation parses a manifest location as RegisterImage takes it
// and DescribeImages reports it: "<bucket>/<prefix>/<name>.manifest.xml".
// A leading "s3://" is accepted.
func ParseImageLocation(s string) (Location, error) {
	t := strings.TrimPrefix(s, "s3://")
	bucket, key, ok := strings.Cut(t, "/")
	if !ok || bucket == "" || key == "" {
		return Location{}, fmt.Errorf("manifest location %q: want <bucket>/<prefix>/<name>%s", s, manifestSuffix)
	}
	dir, file := path.Split(key)
	name, ok := strings.CutSuffix(file, manifestSuffix)
	if !ok || name == "" {
		return Location{}, fmt.Errorf("manifest location %q: the key does not end in <name>%s", s, manifestSuffix)
	}
	return Location{Bucket: bucket, Prefix: strings.TrimSuffix(dir, "/"), Name: name}, nil
}
