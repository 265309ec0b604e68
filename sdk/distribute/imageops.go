package distribute

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// WaitOptions bound waiting for a copy to become available (see
// image.WaitOptions).
type WaitOptions = image.WaitOptions

// ImageStateError reports a copy that failed, disappeared or did not become
// available in time (see image.StateError). Use errors.As.
type ImageStateError = image.StateError

// imageOptions passes logging and retry settings on to package image.
func (o Options) imageOptions(io *image.Options) {
	io.Logf = o.Logf
	io.RetryDelay = o.RetryDelay
}

type imageNotFoundError struct{ id string }

func (e *imageNotFoundError) Error() string        { return "image " + e.id + " not found" }
func (e *imageNotFoundError) ErrorCode() string    { return "InvalidAMIID.NotFound" }
func (e *imageNotFoundError) ErrorMessage() string { return e.Error() }
func (e *imageNotFoundError) ErrorFault() int      { return 0 }

// describeImage returns one image, or an error with code
// InvalidAMIID.NotFound when EC2 does not list it.
func describeImage(ctx context.Context, api DescribeImagesAPI, id string) (types.Image, error) {
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, IncludeDeprecated: aws.Bool(true)})
	if err != nil {
		return types.Image{}, err
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == id {
			return img, nil
		}
	}
	return types.Image{}, &imageNotFoundError{id: id}
}

func snapshotIDs(img types.Image) []string { return image.SnapshotIDs(img) }

// tagImage tags the AMI and its snapshots (image.Tag: tags on both,
// snapshotTags over them on the snapshots); snapshots nil means they are
// looked up.
func (o Options) tagImage(ctx context.Context, api TagAPI, id, region string, tags, snapshotTags map[string]string, snapshots []string) error {
	_, err := image.Tag(ctx, api, &image.TagInput{ImageID: id, Tags: tags, SnapshotTags: snapshotTags, Region: region, SnapshotIDs: snapshots}, o.imageOptions)
	return err
}

// deregisterImage deregisters the AMI and, with deleteSnapshots, deletes
// its snapshots; a missing AMI is not an error. It reports whether the AMI
// is gone and which snapshots were deleted.
func (o Options) deregisterImage(ctx context.Context, api DeregisterAPI, id, region string, deleteSnapshots bool) (gone bool, deleted []string, err error) {
	out, err := image.Deregister(ctx, api, &image.DeregisterInput{ImageID: id, DeleteSnapshots: deleteSnapshots, Region: region}, o.imageOptions)
	if out == nil {
		return false, nil, err
	}
	return true, out.DeletedSnapshotIDs, err
}

// ownImages lists the caller's AMIs (owner "self", deprecated ones
// included) that EC2 returns for filters and that keep accepts: EC2's
// answer is checked again with keep rather than the filters trusted.
func ownImages(ctx context.Context, api DescribeImagesAPI, filters []types.Filter, keep func(types.Image) bool) ([]types.Image, error) {
	var out []types.Image
	pg := ec2.NewDescribeImagesPaginator(api, &ec2.DescribeImagesInput{
		Owners:            []string{"self"},
		Filters:           filters,
		IncludeDeprecated: aws.Bool(true),
	})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, img := range page.Images {
			if keep(img) {
				out = append(out, img)
			}
		}
	}
	return out, nil
}

// hasTag reports whether img carries the tag key with exactly value.
func hasTag(img types.Image, key, value string) bool {
	return slices.ContainsFunc(img.Tags, func(t types.Tag) bool {
		return aws.ToString(t.Key) == key && aws.ToString(t.Value) == value
	})
}
