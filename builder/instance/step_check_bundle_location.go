package instance

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// stepCheckBundleLocation fails the build before the instance is launched
// when a bundle manifest is already where the bundle goes: uploading would
// overwrite the parts and manifest of a bundle that an AMI may still be
// registered from. With force_deregister, the bundle of the AMI of the same
// name that force_deregister deregisters (its image location is this
// manifest) is accepted: this build replaces it, and oldBundles keeps the
// new bundle there. The check is one HeadObject; only when a
// manifest exists and force_deregister is set does it also look the AMIs of
// the name up.
//
// State used: amibuild.StateSession, amibuild.StateUI, stateBucketRegion.
// State produced: stateReplaceBundle (when the bundle there is that of the
// AMI force_deregister replaces).
type stepCheckBundleLocation struct {
	// Region is the build region, where the AMIs are.
	Region string
	// Bucket, Prefix and Name say where the bundle goes.
	Bucket, Prefix, Name string
	// AMIName is the name of the AMI about to be registered.
	AMIName string
	// Force is force_deregister.
	Force bool

	// S3 and EC2 return the clients for a region; nil uses the session's.
	S3  func(region string) bundlestore.HeadObjectAPI
	EC2 func(region string) bundlestore.DescribeImagesAPI
}

// Run implements multistep.Step.
func (s *stepCheckBundleLocation) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := amibuild.UI(state)
	s3c, ec2c := s.S3, s.EC2
	if s3c == nil || ec2c == nil {
		sess, err := amibuild.Session(state)
		if err != nil {
			return amibuild.Halt(state, u, err)
		}
		s3c = func(r string) bundlestore.HeadObjectAPI { return sess.S3(r) }
		ec2c = func(r string) bundlestore.DescribeImagesAPI { return sess.EC2(r) }
	}
	bucketRegion, _ := stateBucketRegion.Get(state)
	if bucketRegion == "" {
		bucketRegion = s.Region
	}
	in := &bundlestore.CheckLocationInput{Bucket: s.Bucket, Prefix: s.Prefix, Name: s.Name, Region: bucketRegion}
	if s.Force {
		in.ReplaceName = s.AMIName
	}
	loc := bundlestore.Location{Bucket: s.Bucket, Prefix: s.Prefix, Name: s.Name}
	u.Sayf("Checking that no bundle is at %s yet...", loc)
	out, err := bundlestore.CheckLocation(ctx, ec2c(s.Region), s3c(bucketRegion), in)
	var inUse *bundlestore.BundleExistsError
	switch {
	case errors.As(err, &inUse):
		return amibuild.Halt(state, u, fmt.Errorf("s3_prefix, bundle_name: %w; choose another s3_prefix or bundle_name "+
			"(the default s3_prefix, the AMI name and the build time, differs for every build), "+
			"or, if no AMI is registered from that bundle any more, delete its manifest and parts (%s and s3://%s/%s.part.*)",
			err, loc, s.Bucket, loc.Key(s.Name)))
	case err != nil:
		return amibuild.Halt(state, u, err)
	case out.Exists:
		u.Sayf("The bundle at %s belongs to %s, which force_deregister replaces; this build's upload overwrites it", loc, out.ReplacedImageID)
		stateReplaceBundle.Put(state, true)
	}
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *stepCheckBundleLocation) Cleanup(multistep.StateBag) {}
