package instance

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// oldBundles removes, for force_deregister, an old AMI of the build region
// with its bundle when the bundle is in s3_bucket
// (amibuild.StepDeregisterExisting.RemoveInBuildRegion). A bundle in
// another bucket, or one whose location EC2 does not report, is left in
// place with a warning; so is a bundle at the location this build just
// uploaded to. The step runs after the new bundle is uploaded and just
// before the new AMI is registered, so a build that fails earlier leaves
// the old AMI in place.
//
// State used: StateSession, StateUI, stateBucketRegion, stateBundle.
type oldBundles struct {
	// Region is the build region.
	Region string
	// Bucket is s3_bucket: only bundles in it are deleted.
	Bucket string
	// S3 returns the client for a region; nil uses the session's.
	S3 func(region string) bundlestore.DeleteAPI
}

// remove deregisters img and deletes its bundle when it is ours to delete.
func (o *oldBundles) remove(ctx context.Context, state multistep.StateBag, api image.DeregisterAPI, img types.Image) error {
	u := amibuild.UI(state)
	id := aws.ToString(img.ImageId)
	var current *bundlestore.Location
	if b, ok := stateBundle.Get(state); ok && b != nil {
		current = &b.Location
	}
	loc, keep := o.oldBundle(u, img, current)
	if keep {
		if _, err := image.Deregister(ctx, api, &image.DeregisterInput{ImageID: id, Region: o.Region}); err != nil {
			return fmt.Errorf("deregister existing AMI %s in %s: %w", id, o.Region, err)
		}
		return nil
	}
	s3c, err := o.s3(state)
	if err != nil {
		return err
	}
	out, err := bundlestore.Deregister(ctx, api, s3c, &bundlestore.DeregisterInput{
		ImageID:       id,
		Region:        o.Region,
		ImageLocation: loc.ImageLocation(),
	})
	if err != nil {
		if out == nil {
			return fmt.Errorf("deregister existing AMI %s in %s: %w", id, o.Region, err)
		}
		// The AMI is gone; the new one can be registered. Say what is left.
		u.Error(fmt.Sprintf("Warning: deregistered existing AMI %s, but its bundle %s could not be deleted; delete it by hand: %v", id, loc, err))
		return nil
	}
	u.Sayf("Deleted the bundle %s of %s", loc, id)
	return nil
}

// s3 returns the S3 client of the bucket's region.
func (o *oldBundles) s3(state multistep.StateBag) (bundlestore.DeleteAPI, error) {
	region, _ := stateBucketRegion.Get(state)
	if region == "" {
		region = o.Region
	}
	if o.S3 != nil {
		return o.S3(region), nil
	}
	sess, err := amibuild.Session(state)
	if err != nil {
		return nil, err
	}
	return sess.S3(region), nil
}

// oldBundle returns where the bundle of an old AMI is, and whether to keep
// it (telling the user why when it is not plainly ours to delete).
func (o *oldBundles) oldBundle(u packersdk.Ui, img types.Image, current *bundlestore.Location) (bundlestore.Location, bool) {
	id := aws.ToString(img.ImageId)
	if img.RootDeviceType == types.DeviceTypeEbs {
		u.Sayf("Existing AMI %s is EBS-backed: deregistering it, its snapshots are kept", id)
		return bundlestore.Location{}, true
	}
	raw := aws.ToString(img.ImageLocation)
	loc, err := bundlestore.ParseImageLocation(raw)
	switch {
	case raw == "" || err != nil:
		u.Error(fmt.Sprintf("Warning: EC2 does not report where the bundle of existing AMI %s is (image location %q); it is left in S3: delete it by hand if it is still there", id, raw))
		return loc, true
	case loc.Bucket != o.Bucket:
		u.Error(fmt.Sprintf("Warning: the bundle of existing AMI %s is in bucket %s, not in s3_bucket %s; it is left in place", id, loc.Bucket, o.Bucket))
		return loc, true
	case current != nil && loc.Prefix == current.Prefix && loc.Name == current.Name:
		u.Sayf("The bundle of existing AMI %s was replaced by this build's upload to %s; it is kept", id, loc)
		return loc, true
	}
	return loc, false
}
