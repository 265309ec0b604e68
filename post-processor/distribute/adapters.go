package distribute

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// bundleDeleter lets retention delete the S3 bundle of an instance-store
// AMI it removes, through package bundlestore.
type bundleDeleter struct {
	sess *awscfg.Session
}

var _ distribute.BundleDeleter = (*bundleDeleter)(nil)

// DeleteBundle deletes the bundle whose manifest is at manifestLocation
// ("bucket/prefix/name.manifest.xml").
func (b *bundleDeleter) DeleteBundle(ctx context.Context, manifestLocation string) error {
	loc, err := bundlestore.ParseImageLocation(manifestLocation)
	if err != nil {
		return fmt.Errorf("delete bundle %s: %w", manifestLocation, err)
	}
	region := b.sess.Region()
	_, err = bundlestore.Delete(ctx, b.sess.S3(region), &bundlestore.DeleteInput{
		Bucket: loc.Bucket, Prefix: loc.Prefix, Name: loc.Name, Region: region,
	})
	return err
}

func disableProtectionInput(imageID string) *ec2.DisableImageDeregistrationProtectionInput {
	return &ec2.DisableImageDeregistrationProtectionInput{ImageId: aws.String(imageID)}
}
