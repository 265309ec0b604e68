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

// stepDeregisterExisting deregisters the AMIs we own that have the name the
// new AMI will get, when force_deregister (or packer build -force) is set,
// and deletes the bundle of each when it is in s3_bucket. A bundle in
// another bucket, or one whose location EC2 does not report, is left in
// place with a warning; so is a bundle at the location this build just
// uploaded to. It runs after the new bundle is uploaded and just before the
// new AMI is registered, so a build that fails earlier leaves the old AMI in
// place. Deregistration cannot be undone, so Cleanup does nothing.
//
// State used: StateSession, StateUI, stateBucketRegion, stateBundle.
// State produced: none.
type stepDeregisterExisting struct {
	// Region is the build region.
	Region string
	// AMIName is the name of the AMI about to be registered.
	AMIName string
	// Force enables the step.
	Force bool
	// Bucket is s3_bucket: only bundles in it are deleted.
	Bucket string

	// EC2 and S3 return the clients for a region; nil uses the session's.
	EC2 func(region string) image.DeregisterAPI
	S3  func(region string) bundlestore.DeleteAPI
}

// Run implements multistep.Step.
func (s *stepDeregisterExisting) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if !s.Force {
		return multistep.ActionContinue
	}
	u := amibuild.UI(state)
	ec2c, s3c := s.EC2, s.S3
	if ec2c == nil || s3c == nil {
		sess, err := amibuild.Session(state)
		if err != nil {
			return amibuild.Halt(state, u, err)
		}
		ec2c = func(r string) image.DeregisterAPI { return sess.EC2(r) }
		s3c = func(r string) bundlestore.DeleteAPI { return sess.S3(r) }
	}
	api := ec2c(s.Region)
	bucketRegion, _ := stateBucketRegion.Get(state)
	if bucketRegion == "" {
		bucketRegion = s.Region
	}
	var current *bundlestore.Location
	if b, ok := stateBundle.Get(state); ok && b != nil {
		current = &b.Location
	}

	found, err := image.FindByName(ctx, api, &image.FindByNameInput{Name: s.AMIName})
	if err != nil {
		return amibuild.Halt(state, u, fmt.Errorf("look up AMIs named %q in %s: %w", s.AMIName, s.Region, err))
	}
	imgs := found.Images
	for _, img := range imgs {
		id := aws.ToString(img.ImageId)
		u.Sayf("Deregistering existing AMI %s named %q (force_deregister)...", id, s.AMIName)
		loc, keep := s.oldBundle(u, img, current)
		if keep {
			if _, err := image.Deregister(ctx, api, &image.DeregisterInput{ImageID: id, Region: s.Region}); err != nil {
				return amibuild.Halt(state, u, fmt.Errorf("deregister existing AMI %s in %s: %w", id, s.Region, err))
			}
			continue
		}
		out, err := bundlestore.Deregister(ctx, api, s3c(bucketRegion), &bundlestore.DeregisterInput{
			ImageID:       id,
			Region:        s.Region,
			ImageLocation: loc.ImageLocation(),
		})
		if err != nil {
			if out == nil {
				return amibuild.Halt(state, u, fmt.Errorf("deregister existing AMI %s in %s: %w", id, s.Region, err))
			}
			// The AMI is gone; the new one can be registered. Say what is left.
			u.Error(fmt.Sprintf("Warning: deregistered existing AMI %s, but its bundle %s could not be deleted; delete it by hand: %v", id, loc, err))
			continue
		}
		u.Sayf("Deleted the bundle %s of %s", loc, id)
	}
	return multistep.ActionContinue
}

// oldBundle returns where the bundle of an old AMI is, and whether to keep
// it (telling the user why when it is not plainly ours to delete).
func (s *stepDeregisterExisting) oldBundle(u packersdk.Ui, img types.Image, current *bundlestore.Location) (bundlestore.Location, bool) {
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
	case loc.Bucket != s.Bucket:
		u.Error(fmt.Sprintf("Warning: the bundle of existing AMI %s is in bucket %s, not in s3_bucket %s; it is left in place", id, loc.Bucket, s.Bucket))
		return loc, true
	case current != nil && loc.Prefix == current.Prefix && loc.Name == current.Name:
		u.Sayf("The bundle of existing AMI %s was replaced by this build's upload to %s; it is kept", id, loc)
		return loc, true
	}
	return loc, false
}

// Cleanup implements multistep.Step; deregistration cannot be undone.
func (s *stepDeregisterExisting) Cleanup(multistep.StateBag) {}
