package image

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// DeregisterInput names an image to deregister.
type DeregisterInput struct {
	// ImageID is the image to deregister. Required.
	ImageID string
	// DeleteSnapshots also deletes the image's EBS snapshots.
	DeleteSnapshots bool
	// KeepSnapshotIDs are snapshots DeleteSnapshots never deletes, even
	// when the image refers to them: snapshots the caller does not own
	// through this image, such as a snapshot an AMI block device mapping
	// was given.
	KeepSnapshotIDs []string
	// Region is used in messages; "" means the client's region.
	Region string
}

// DeregisterOutput is the result of Deregister.
type DeregisterOutput struct {
	// DeletedSnapshotIDs are the snapshots deleted (or found already gone).
	DeletedSnapshotIDs []string
	// KeptSnapshotIDs are the image's snapshots left in place because they
	// are in DeregisterInput.KeepSnapshotIDs.
	KeptSnapshotIDs []string
}

// Deregister deregisters an image and, with DeleteSnapshots, deletes its
// EBS snapshots afterwards, except those in KeepSnapshotIDs. An image that no longer exists is not an error,
// so Deregister can be repeated (as by a ledger undo). Instance-store
// images have no snapshots to delete. Every snapshot is tried; failures are
// joined. A snapshot still reported in use right after deregistration is
// retried with the bounded backoff of Options.
func Deregister(ctx context.Context, api DeregisterAPI, in *DeregisterInput, optFns ...func(*Options)) (*DeregisterOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, in.Region)
	if in.ImageID == "" {
		return nil, fmt.Errorf("deregister image in %s: image ID is required", region)
	}
	out := &DeregisterOutput{}
	var snapshots []string
	if in.DeleteSnapshots {
		img, err := describeOne(ctx, api, in.ImageID)
		switch {
		case isImageGone(err):
			o.logf("image %s in %s is already gone", in.ImageID, region)
			return out, nil
		case err != nil:
			return nil, fmt.Errorf("deregister image %s in %s: describe: %w", in.ImageID, region, err)
		}
		for _, snap := range SnapshotIDs(img) {
			if slices.Contains(in.KeepSnapshotIDs, snap) {
				out.KeptSnapshotIDs = append(out.KeptSnapshotIDs, snap)
				continue
			}
			snapshots = append(snapshots, snap)
		}
	}
	o.logf("deregistering image %s in %s", in.ImageID, region)
	_, err := api.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(in.ImageID)})
	switch {
	case isImageGone(err):
		o.logf("image %s in %s is already gone", in.ImageID, region)
	case err != nil:
		return nil, fmt.Errorf("deregister image %s in %s: %w", in.ImageID, region, err)
	}
	var errs []error
	for _, snap := range out.KeptSnapshotIDs {
		o.logf("keeping snapshot %s of image %s in %s: it is not the image's own", snap, in.ImageID, region)
	}
	for _, snap := range snapshots {
		o.logf("deleting snapshot %s of image %s in %s", snap, in.ImageID, region)
		err := o.retry(ctx, []string{codeSnapshotInUse}, func() error {
			_, err := api.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
			return err
		})
		if err != nil && awserr.Code(err) != codeSnapshotNotFound {
			errs = append(errs, fmt.Errorf("delete snapshot %s of image %s in %s: %w", snap, in.ImageID, region, err))
			continue
		}
		out.DeletedSnapshotIDs = append(out.DeletedSnapshotIDs, snap)
	}
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	return out, nil
}
