package instance

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// Artifact is the result of an ami-instance build: the AMI (as the ami-ebs
// artifact describes it, id "region:ami-…") and the bundle in S3 it was
// registered from. State("image_location") returns the manifest location,
// "<bucket>/<prefix>/<name>.manifest.xml".
type Artifact struct {
	*amibuild.Artifact
	// Bundle is where the bundle is.
	Bundle bundlestore.Location
	// BuildRegion is the region of the AMI registered from Bundle; the AMIs
	// of other regions are its copies (ami_regions).
	BuildRegion string
	// EC2 and S3 return the clients Destroy uses for a region. When nil,
	// Destroy fails.
	EC2 func(region string) bundlestore.DeregisterAPI
	S3  func(region string) bundlestore.DeleteAPI
}

// String describes the artifact for humans.
func (a *Artifact) String() string {
	return a.Artifact.String() + "\nBundle: " + a.Bundle.String()
}

// Destroy deregisters the AMI and deletes its bundle, and nothing else.
func (a *Artifact) Destroy() error {
	if a.EC2 == nil || a.S3 == nil {
		return errors.New("artifact has no AWS access to destroy its AMI")
	}
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	var errs []error
	for _, r := range slices.Sorted(maps.Keys(a.Amis)) {
		if a.BuildRegion != "" && r != a.BuildRegion {
			// A copy: CopyImage made it, with its own storage.
			if _, err := a.EC2(r).DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(a.Amis[r])}); err != nil {
				errs = append(errs, fmt.Errorf("destroy the copy %s in %s: %w", a.Amis[r], r, err))
			}
			continue
		}
		_, err := bundlestore.Deregister(ctx, a.EC2(r), a.S3(r), &bundlestore.DeregisterInput{
			ImageID:       a.Amis[r],
			Region:        r,
			ImageLocation: a.Bundle.ImageLocation(),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("destroy %s and its bundle %s in %s: %w", a.Amis[r], a.Bundle, r, err))
		}
	}
	return errors.Join(errs...)
}
