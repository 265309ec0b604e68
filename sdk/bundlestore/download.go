package bundlestore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// ErrNoManifest means the bundle's manifest object does not exist. Test for
// it with errors.Is.
var ErrNoManifest = errors.New("bundle manifest not found")

// GetManifestInput names the bundle whose manifest GetManifest reads.
type GetManifestInput struct {
	// Location is the bundle's bucket, prefix and name. Required.
	Location Location
}

// GetManifestOutput is the result of GetManifest: the manifest it read.
type GetManifestOutput struct {
	// Manifest is the parsed manifest.
	Manifest *bundle.Manifest
}

// GetManifest reads and parses the manifest of the bundle at in.Location.
// A missing manifest is an error wrapping ErrNoManifest. No option changes
// its behaviour today; optFns is there for the uniform signature.
func GetManifest(ctx context.Context, api GetObjectAPI, in *GetManifestInput, optFns ...func(*Options)) (*GetManifestOutput, error) {
	m, err := getManifest(ctx, api, in.Location)
	if err != nil {
		return nil, err
	}
	return &GetManifestOutput{Manifest: m}, nil
}

func getManifest(ctx context.Context, api GetObjectAPI, loc Location) (*bundle.Manifest, error) {
	key := loc.ManifestKey()
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("bundlestore: get s3://%s/%s: %w: %w", loc.Bucket, key, ErrNoManifest, err)
		}
		return nil, fmt.Errorf("bundlestore: get s3://%s/%s: %w", loc.Bucket, key, err)
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Body, bundle.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("bundlestore: read s3://%s/%s: %w", loc.Bucket, key, err)
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("bundlestore: s3://%s/%s: %w", loc.Bucket, key, err)
	}
	return m, nil
}

// DownloadInput names the bundle to download and where to put it.
type DownloadInput struct {
	// Bucket, Prefix and Name locate the bundle: its manifest is
	// "<prefix>/<name>.manifest.xml". Bucket and Name are required.
	Bucket string
	Prefix string
	Name   string
	// Dir is the directory the manifest and parts are written to; it is
	// created if needed. Required.
	Dir string
}

// DownloadOutput is the result of Download: the downloaded bundle.
type DownloadOutput struct {
	// Manifest is the parsed manifest.
	Manifest *bundle.Manifest
	// ManifestPath is the manifest file in Dir.
	ManifestPath string
	// PartPaths are the part files in Dir, in index order.
	PartPaths []string
	// Bytes is the number of bytes downloaded.
	Bytes int64
}

// Download copies a bundle from S3 into a directory: the manifest, then the
// parts it lists (concurrently, see Options.Concurrency), checking each
// part's SHA-1 against the manifest (a mismatch is a
// *bundle.PartDigestError). The manifest file is written last, so a
// directory with a manifest holds a complete bundle.
//
// Each file is written to a temporary file in in.Dir, created exclusively
// with mode 0600, and renamed to its name (mode 0644) only once it is
// complete and, for a part, its digest matched; on any error the temporary
// file is removed and a file already at the name is left as it was. A part
// is read no further than the largest size the manifest allows
// (bundle.Manifest.MaxPartSize); a larger one is a *bundle.PartError. A
// symbolic link at a file's name is replaced by the file, never followed.
func Download(ctx context.Context, api GetObjectAPI, in *DownloadInput, optFns ...func(*Options)) (*DownloadOutput, error) {
	if in == nil || in.Bucket == "" || in.Name == "" || in.Dir == "" {
		return nil, errors.New("bundlestore: download: bucket, name and directory are required")
	}
	opts := resolveOptions(optFns)
	loc := Location{Bucket: in.Bucket, Prefix: in.Prefix, Name: in.Name}
	m, err := getManifest(ctx, api, loc)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(in.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bundlestore: download: %w", err)
	}
	raw := m.Bytes()
	total := m.BundledSize + int64(len(raw))
	out := &DownloadOutput{Manifest: m, PartPaths: make([]string, len(m.Parts))}

	var mu sync.Mutex
	add := func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		out.Bytes += n
		if opts.Progress != nil {
			opts.Progress(out.Bytes, total)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for i, p := range m.Parts {
		path := filepath.Join(in.Dir, p.Filename)
		out.PartPaths[i] = path
		g.Go(func() error {
			n, err := downloadPart(gctx, api, loc, p, path, m.MaxPartSize())
			if err != nil {
				return err
			}
			add(n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out.ManifestPath = filepath.Join(in.Dir, bundle.ManifestName(m.Name))
	err = bundle.WriteFile(out.ManifestPath, func(f *os.File) error {
		_, err := f.Write(raw)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bundlestore: download: write %s: %w", out.ManifestPath, err)
	}
	add(int64(len(raw)))
	return out, nil
}

// downloadPart downloads part p to path, reading at most limit bytes.
func downloadPart(ctx context.Context, api GetObjectAPI, loc Location, p bundle.PartInfo, path string, limit int64) (int64, error) {
	key := loc.Key(p.Filename)
	obj, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("bundlestore: download s3://%s/%s: %w", loc.Bucket, key, &bundle.PartError{Index: p.Index, Filename: p.Filename, Err: err})
	}
	defer obj.Body.Close()
	var n int64
	err = bundle.WriteFile(path, func(f *os.File) error {
		h := sha1.New()
		var err error
		// One byte more than the limit tells a part that is too large.
		n, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(obj.Body, limit+1))
		if err != nil {
			return err
		}
		if n > limit {
			return &bundle.PartError{Index: p.Index, Filename: p.Filename, Err: fmt.Errorf("larger than %d bytes", limit)}
		}
		if got := h.Sum(nil); string(got) != string(p.Digest[:]) {
			return &bundle.PartDigestError{Index: p.Index, Filename: p.Filename, Want: hex.EncodeToString(p.Digest[:]), Got: hex.EncodeToString(got)}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("bundlestore: download s3://%s/%s to %s: %w", loc.Bucket, key, path, err)
	}
	return n, nil
}

// Source reads a bundle's objects directly from S3, for reading or
// unbundling a bundle without a local copy.
type Source struct {
	api GetObjectAPI
	loc Location
}

var _ bundle.PartSource = (*Source)(nil)

// NewSource returns a Source for the bundle objects in bucket under prefix.
// name is the bundle name (used by Manifest); it may be empty when only
// parts are opened.
func NewSource(api GetObjectAPI, bucket, prefix, name string) *Source {
	return &Source{api: api, loc: Location{Bucket: bucket, Prefix: prefix, Name: name}}
}

// Location returns where the Source reads from.
func (s *Source) Location() Location { return s.loc }

// Manifest reads and parses the bundle's manifest.
func (s *Source) Manifest(ctx context.Context) (*bundle.Manifest, error) {
	return getManifest(ctx, s.api, s.loc)
}

// OpenPart opens the object filename under the Source's prefix. The caller
// closes the returned body.
func (s *Source) OpenPart(ctx context.Context, filename string) (io.ReadCloser, error) {
	if err := checkFilename(filename); err != nil {
		return nil, err
	}
	key := s.loc.Key(filename)
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("bundlestore: get s3://%s/%s: %w", s.loc.Bucket, key, err)
	}
	return out.Body, nil
}
