package distribute

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// bundleDeleter lets retention delete the S3 bundle of an instance-store
// AMI it removes, through package bundlestore.
type bundleDeleter struct {
	sess *awscfg.Session
}

var _ distribute.BundleDeleteAPI = (*bundleDeleter)(nil)

// DeleteBundle deletes the bundle whose manifest is at manifestLocation
// ("bucket/prefix/name.manifest.xml"), with an S3 client for region, the
// region of the AMI (and so of its bucket). AccessDenied, as for a bucket
// of another account, leaves the bundle in place and is reported as a
// warning (distribute.ErrBundleSkipped).
func (b *bundleDeleter) DeleteBundle(ctx context.Context, region, manifestLocation string) error {
	loc, err := bundlestore.ParseImageLocation(manifestLocation)
	if err != nil {
		return fmt.Errorf("delete bundle %s: %w", manifestLocation, err)
	}
	if region == "" {
		region = b.sess.Region()
	}
	_, err = bundlestore.Delete(ctx, b.sess.S3(region), &bundlestore.DeleteInput{
		Bucket: loc.Bucket, Prefix: loc.Prefix, Name: loc.Name, Region: region,
	})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied" {
		return fmt.Errorf("%w: access denied to bucket %s in %s (a bucket of another account, or no s3:DeleteObject permission); delete it yourself: %w",
			distribute.ErrBundleSkipped, loc.Bucket, region, err)
	}
	return err
}
