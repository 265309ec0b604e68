package image

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/lost"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// CreateInput describes an image to create from an instance.
type CreateInput struct {
	// InstanceID is the source instance. Required.
	InstanceID string
	// Name is the image name. Required.
	Name string
	// Description is optional.
	Description string
	// BlockDeviceMappings adjust the instance's volumes in the image.
	BlockDeviceMappings []types.BlockDeviceMapping
	// NoReboot creates the image without stopping the instance first.
	NoReboot bool
	// TagSpecifications tag the image and its snapshots at creation.
	TagSpecifications []types.TagSpecification
	// KeepSnapshotIDs are snapshots that removing the image (its ledger
	// undo, or removing a duplicate a retried call made) never deletes:
	// the snapshots that BlockDeviceMappings name, which the image refers
	// to but the caller owns apart from it. Create adds the snapshot IDs of
	// BlockDeviceMappings itself; list here any others, such as those of
	// the instance's launch mappings.
	KeepSnapshotIDs []string
	// Wait bounds the wait until the image is available.
	Wait WaitOptions
	// Region is used in messages and the ledger; "" means the client's region.
	Region string
}

// CreateOutput is the result of Create.
type CreateOutput struct {
	ImageID string
	// Image is the available image.
	Image types.Image
	// SnapshotIDs are the image's EBS snapshots.
	SnapshotIDs []string
}

// Create creates an image from an instance and waits until it is
// available. With Options.Ledger set, the image is recorded as soon as AWS
// returns its ID, with an undo that deregisters it and deletes its
// snapshots; the snapshots are covered by the image's entry, so forgetting
// the image keeps them too. When the image fails or the wait times out, the
// error is a *StateError naming the image, which is left in place (and
// in the ledger) for the caller to remove.
//
// A CreateImage call may take effect although its answer is lost; the SDK
// then retries it, and EC2 answers InvalidAMIName.Duplicate (or, in
// services that allow duplicate names, makes a second image). An image
// owned by the account with exactly Name and made from InstanceID is made
// by this call, since the instance belongs to the caller: when the call
// fails, such an image is used as the call's result, or, when ctx is done,
// deregistered with its snapshots (recorded in Options.Ledger if that
// fails too); when the call succeeded after retries, any other such image
// is a duplicate and is deregistered.
func Create(ctx context.Context, api CreateAPI, in *CreateInput, optFns ...func(*Options)) (*CreateOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, in.Region)
	if in.InstanceID == "" || in.Name == "" {
		return nil, fmt.Errorf("create image %q in %s: instance ID and name are required", in.Name, region)
	}
	req := &ec2.CreateImageInput{
		InstanceId:          aws.String(in.InstanceID),
		Name:                aws.String(in.Name),
		BlockDeviceMappings: in.BlockDeviceMappings,
		TagSpecifications:   in.TagSpecifications,
	}
	if in.Description != "" {
		req.Description = aws.String(in.Description)
	}
	if in.NoReboot {
		req.NoReboot = aws.Bool(true)
	}
	keep := keptSnapshots(in)
	o.logf("creating image %q from %s in %s", in.Name, in.InstanceID, region)
	var id string
	waitOpts := in.Wait
	if waitOpts.Since.IsZero() {
		waitOpts.Since = time.Now()
	}
	made := o.madeImages(api, in, region, keep)
	out, err := api.CreateImage(ctx, req)
	switch {
	case err != nil:
		err = fmt.Errorf("create image %q from %s in %s: %w", in.Name, in.InstanceID, region, err)
		if id, err = made.Recover(ctx, err); err != nil {
			return nil, err
		}
	default:
		id = aws.ToString(out.ImageId)
		if lost.Retried(out.ResultMetadata) {
			// An attempt whose answer was lost may have made an image too.
			if err := made.RemoveDuplicates(ctx, id); err != nil {
				return nil, fmt.Errorf("create image %q from %s in %s: remove duplicates made by retries: %w", in.Name, in.InstanceID, region, err)
			}
		}
	}
	o.record(api, id, region, keep)
	o.logf("waiting for image %s in %s to become available", id, region)
	img, err := wait(ctx, api, id, region, waitOpts)
	if err != nil {
		return nil, fmt.Errorf("create image %q from %s in %s: %w", in.Name, in.InstanceID, region, err)
	}
	return &CreateOutput{ImageID: id, Image: img, SnapshotIDs: SnapshotIDs(img)}, nil
}

// keptSnapshots returns in.KeepSnapshotIDs and the snapshots in.BlockDeviceMappings name.
func keptSnapshots(in *CreateInput) []string {
	keep := slices.Clone(in.KeepSnapshotIDs)
	for _, m := range in.BlockDeviceMappings {
		if m.Ebs != nil && aws.ToString(m.Ebs.SnapshotId) != "" {
			keep = append(keep, aws.ToString(m.Ebs.SnapshotId))
		}
	}
	return keep
}

// record puts the image in o.Ledger, if set, with an undo that deregisters
// it and deletes its snapshots, except those in keep.
func (o Options) record(api CreateAPI, id, region string, keep []string) {
	if o.Ledger == nil {
		return
	}
	o.Ledger.Record(ledger.Resource{Kind: ledger.KindImage, ID: id, Region: region}, func(ctx context.Context) error {
		_, err := Deregister(ctx, api, &DeregisterInput{ImageID: id, DeleteSnapshots: true, KeepSnapshotIDs: keep, Region: region}, func(u *Options) { *u = o; u.Ledger = nil })
		return err
	})
}

// madeImages tells the images a CreateImage call for in made from older
// ones, and says how to remove and record them: an image owned by the
// account with exactly in.Name and made from in.InstanceID is made by the
// call, since the instance belongs to the caller. Removing one deregisters
// it with its snapshots except those in keep; one that cannot be removed
// goes to o.Ledger, if set.
func (o Options) madeImages(api CreateAPI, in *CreateInput, region string, keep []string) lost.Made {
	return lost.Made{
		Find: func(ctx context.Context) ([]string, error) { return imagesFrom(ctx, api, in.Name, in.InstanceID) },
		Remove: func(ctx context.Context, id string) error {
			o.logf("image %s in %s was made by a create call whose answer was lost; deregistering it", id, region)
			if _, err := Deregister(ctx, api, &DeregisterInput{ImageID: id, DeleteSnapshots: true, KeepSnapshotIDs: keep, Region: region}, func(u *Options) { *u = o; u.Ledger = nil }); err != nil {
				o.record(api, id, region, keep)
				return fmt.Errorf("image %s was made by a create call whose answer was lost and could not be removed: %w", id, err)
			}
			return nil
		},
		Record: func(id string) { o.record(api, id, region, keep) },
		Adopted: func(id string) {
			o.logf("the answer to creating image %q in %s was lost; using %s, which the call made", in.Name, region, id)
		},
		LookFailed: func(err error) error {
			return fmt.Errorf("look for an image the failed call may have made; deregister it by hand if it exists: %w", err)
		},
		RemovedAll: func(callErr error, id string) error {
			return fmt.Errorf("%w (the image %s it made anyway was deregistered)", callErr, id)
		},
	}
}

// imagesFrom returns the IDs of the images owned by the account named
// exactly name and made from instanceID, oldest first.
func imagesFrom(ctx context.Context, api DescribeImagesAPI, name, instanceID string) ([]string, error) {
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"},
		Filters: []types.Filter{
			{Name: aws.String("name"), Values: []string{name}},
			{Name: aws.String("source-instance-id"), Values: []string{instanceID}},
		},
		IncludeDeprecated: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	imgs := slices.DeleteFunc(out.Images, func(img types.Image) bool {
		return aws.ToString(img.Name) != name || img.State == types.ImageStateDeregistered ||
			img.SourceInstanceId != nil && aws.ToString(img.SourceInstanceId) != instanceID
	})
	slices.SortFunc(imgs, compareCreation)
	ids := make([]string, 0, len(imgs))
	for _, img := range imgs {
		ids = append(ids, aws.ToString(img.ImageId))
	}
	return ids, nil
}
