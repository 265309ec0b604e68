package bundlestore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// maxDeleteBatch is the most keys one DeleteObjects request takes.
const maxDeleteBatch = 1000

// DeleteInput names the bundle to delete.
type DeleteInput struct {
	// Bucket, Prefix and Name locate the bundle: its manifest is
	// "<prefix>/<name>.manifest.xml". Bucket and Name are required.
	Bucket string
	Prefix string
	Name   string
	// Region is the bucket's region, for messages.
	Region string
	// ByPrefix deletes by listing: every "<name>.part.N" and
	// "<name>.manifest.xml" directly under the prefix, whatever the
	// manifest says. By default the manifest's part list is used, and
	// listing only when the manifest is gone.
	ByPrefix bool
}

// DeleteOutput is the result of Delete: what was deleted of the bundle.
type DeleteOutput struct {
	// Deleted lists the keys deleted, parts first, the manifest last.
	Deleted []string
	// Skipped lists the keys the manifest names as parts that are not
	// parts of the bundle (see Delete); they were left in place.
	Skipped []string
	// FromManifest reports whether the keys came from the manifest (true)
	// or from listing the prefix (false).
	FromManifest bool
}

// Delete removes a bundle from S3: the parts listed in its manifest and
// then the manifest, or, when the manifest is gone or in.ByPrefix is set,
// every "<name>.part.N" and "<name>.manifest.xml" found directly under the
// prefix. Nothing else under the prefix is touched: a manifest is not
// trusted to name only its own parts, so a listed file name is deleted only
// when it is "<name>.part.N" and the manifest's own image name is in.Name;
// any other listed key is left in place, reported in Skipped and logged
// (Options.Logf). Objects are deleted
// with DeleteObjects in batches of at most 1000 keys; keys that are already
// gone count as deleted. A bundle with no objects left is not an error
// (Deleted is empty).
func Delete(ctx context.Context, api DeleteAPI, in *DeleteInput, optFns ...func(*Options)) (*DeleteOutput, error) {
	if in == nil || in.Bucket == "" || in.Name == "" {
		return nil, errors.New("bundlestore: delete: bucket and bundle name are required")
	}
	if err := checkFilename(in.Name); err != nil {
		return nil, err
	}
	opts := resolveOptions(optFns)
	loc := Location{Bucket: in.Bucket, Prefix: in.Prefix, Name: in.Name}
	out := &DeleteOutput{}

	var keys []string
	if !in.ByPrefix {
		m, err := getManifest(ctx, api, loc)
		switch {
		case err == nil:
			keys, out.Skipped = manifestKeys(loc, m)
			out.FromManifest = true
			if len(out.Skipped) > 0 {
				opts.logf("the manifest at %s (image name %q) lists %d objects that are not parts of bundle %q; left in place: %s",
					loc, m.Name, len(out.Skipped), loc.Name, strings.Join(out.Skipped, ", "))
			}
		case errors.Is(err, ErrNoManifest):
			opts.logf("no manifest at %s; deleting the bundle's objects found under the prefix", loc)
		default:
			return nil, err
		}
	}
	if !out.FromManifest {
		var err error
		if keys, err = listBundleKeys(ctx, api, loc, in.Region); err != nil {
			return nil, err
		}
	}
	deleted, err := deleteKeys(ctx, api, in.Bucket, in.Region, keys)
	out.Deleted = deleted
	if err != nil {
		return out, err
	}
	return out, nil
}

// manifestKeys returns the keys of m's parts and then of m itself, and
// separately the keys of the files m lists that are not parts of the bundle
// at loc: names other than "<loc.Name>.part.N", or every name when m's own
// image name is not loc.Name.
func manifestKeys(loc Location, m *bundle.Manifest) (keys, skipped []string) {
	keys = make([]string, 0, len(m.Parts)+1)
	for _, p := range m.Parts {
		if m.Name == loc.Name && bundle.IsPartName(loc.Name, p.Filename) {
			keys = append(keys, loc.Key(p.Filename))
		} else {
			skipped = append(skipped, loc.Key(p.Filename))
		}
	}
	return append(keys, loc.ManifestKey()), skipped
}

// listBundleKeys lists the keys directly under loc's prefix that are
// objects of the bundle loc.Name, parts first and the manifest last.
func listBundleKeys(ctx context.Context, api s3.ListObjectsV2APIClient, loc Location, region string) ([]string, error) {
	dir := loc.Key("")
	var parts []string
	manifest := ""
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{
		Bucket: aws.String(loc.Bucket),
		Prefix: aws.String(dir + loc.Name + "."),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("bundlestore: list s3://%s/%s%s.*%s: %w", loc.Bucket, dir, loc.Name, inRegion(region), err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			switch {
			case key == loc.ManifestKey():
				manifest = key
			case bundle.IsPartName(loc.Name, strings.TrimPrefix(key, dir)):
				parts = append(parts, key)
			}
		}
	}
	if manifest != "" {
		parts = append(parts, manifest)
	}
	return parts, nil
}

// deleteKeys deletes keys in batches and returns those deleted.
func deleteKeys(ctx context.Context, api DeleteObjectsAPI, bucket, region string, keys []string) ([]string, error) {
	var deleted []string
	for start := 0; start < len(keys); start += maxDeleteBatch {
		batch := keys[start:min(start+maxDeleteBatch, len(keys))]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		res, err := api.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return deleted, fmt.Errorf("bundlestore: delete %d objects from bucket %q%s: %w", len(batch), bucket, inRegion(region), err)
		}
		failed := make(map[string]bool, len(res.Errors))
		var errs []error
		for _, e := range res.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			failed[aws.ToString(e.Key)] = true
			errs = append(errs, fmt.Errorf("s3://%s/%s: %s: %s", bucket, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
		for _, k := range batch {
			if !failed[k] {
				deleted = append(deleted, k)
			}
		}
		if len(errs) > 0 {
			return deleted, fmt.Errorf("bundlestore: delete from bucket %q%s: %w", bucket, inRegion(region), errors.Join(errs...))
		}
	}
	return deleted, nil
}

func inRegion(region string) string {
	if region == "" {
		return ""
	}
	return " in " + region
}
