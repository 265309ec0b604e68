package instance

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// stepCheckBucket checks s3_bucket before anything is created: it exists,
// is reachable with the credentials, is in the build region (RegisterImage
// reads the bundle from there), has ACLs enabled (every object gets the
// aws-exec-read ACL) and does not encrypt with SSE-KMS.
//
// State used: amibuild.StateSession, amibuild.StateUI.
// State produced: stateBucketRegion.
type stepCheckBucket struct {
	// Region is the build region.
	Region string
	// Bucket is s3_bucket.
	Bucket string
}

// Run implements multistep.Step.
func (s *stepCheckBucket) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := amibuild.UI(state)
	sess, err := amibuild.Session(state)
	if err != nil {
		return amibuild.Halt(state, u, err)
	}
	u.Sayf("Checking S3 bucket %s for the bundle...", s.Bucket)
	out, err := bundlestore.CheckBucket(ctx, sess.S3(s.Region), &bundlestore.CheckBucketInput{
		Bucket: s.Bucket,
		Region: s.Region,
	})
	if err != nil {
		return amibuild.Halt(state, u, fmt.Errorf("s3_bucket: %w", err))
	}
	stateBucketRegion.Put(state, out.Region)
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *stepCheckBucket) Cleanup(multistep.StateBag) {}
