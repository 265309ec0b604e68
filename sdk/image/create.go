package image

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

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
// error is an *ImageStateError naming the image, which is left in place (and
// in the ledger) for the caller to remove.
func Create(ctx context.Context, api CreateAPI, in *CreateInput, optFns ...func(*Options)) (*CreateOutput, error) {
	o := newOptions(optFns)
	region := regionOf(api, in.Region)
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
	o.logf("creating image %q from %s in %s", in.Name, in.InstanceID, region)
	out, err := api.CreateImage(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create image %q from %s in %s: %w", in.Name, in.InstanceID, region, err)
	}
	id := aws.ToString(out.ImageId)
	if o.Ledger != nil {
		o.Ledger.Record(ledger.Resource{Kind: ledger.KindImage, ID: id, Region: region}, func(ctx context.Context) error {
			_, err := Deregister(ctx, api, &DeregisterInput{ImageID: id, DeleteSnapshots: true, Region: region}, func(u *Options) { *u = o; u.Ledger = nil })
			return err
		})
	}
	o.logf("waiting for image %s in %s to become available", id, region)
	img, err := Wait(ctx, api, id, region, in.Wait)
	if err != nil {
		return nil, fmt.Errorf("create image %q from %s in %s: %w", in.Name, in.InstanceID, region, err)
	}
	return &CreateOutput{ImageID: id, Image: img, SnapshotIDs: SnapshotIDs(img)}, nil
}
