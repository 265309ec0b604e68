package image

import (
	"context"
	"fmt"
	"maps"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/ec2tag"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TagInput names an image and the tags to put on it and its snapshots.
type TagInput struct {
	// ImageID is the image to tag. Required.
	ImageID string
	// Tags go on the image and on its snapshots.
	Tags map[string]string
	// SnapshotTags go on the snapshots only, overriding Tags with the same key.
	SnapshotTags map[string]string
	// Region is used in messages; "" means the client's region.
	Region string
	// SnapshotIDs are the image's snapshots when the caller already knows
	// them, for example from the DescribeImages that saw the image
	// available. Nil means Tag describes the image to find them; an empty,
	// non-nil slice means the image has none.
	SnapshotIDs []string
}

// Tag puts tags on an image and its EBS snapshots. Because a new image or
// snapshot may not be visible at once, not-found errors are retried with a
// bounded exponential backoff (Options.RetryAttempts, RetryDelay,
// RetryMaxDelay). An image without snapshots (instance store) gets only
// the image tags. When the image and its snapshots get the same tags (no
// SnapshotTags), one CreateTags call tags them all.
func Tag(ctx context.Context, api TagAPI, in *TagInput, optFns ...func(*Options)) (*TagOutput, error) {
	if err := tag(ctx, api, in, newOptions(optFns)); err != nil {
		return nil, err
	}
	return &TagOutput{}, nil
}

// TagOutput is the result of Tag; it carries nothing yet.
type TagOutput struct{}

func tag(ctx context.Context, api TagAPI, in *TagInput, o Options) error {
	region := awserr.Region(api, in.Region)
	snapTags := maps.Clone(in.Tags)
	if snapTags == nil {
		snapTags = map[string]string{}
	}
	maps.Copy(snapTags, in.SnapshotTags)
	if len(in.Tags) == 0 && len(snapTags) == 0 {
		return nil
	}

	snapshots := in.SnapshotIDs
	if snapshots == nil && len(snapTags) > 0 {
		err := o.retry(ctx, []string{codeAMINotFound}, func() error {
			img, err := describeOne(ctx, api, in.ImageID)
			snapshots = SnapshotIDs(img)
			return err
		})
		if err != nil {
			return fmt.Errorf("tag image %s in %s: describe: %w", in.ImageID, region, err)
		}
	}
	if len(in.Tags) > 0 && len(snapshots) > 0 && maps.Equal(in.Tags, snapTags) {
		o.logf("tagging image %s and its snapshots %v in %s", in.ImageID, snapshots, region)
		err := o.retry(ctx, []string{codeAMINotFound, codeSnapshotNotFound}, func() error {
			_, err := api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: append([]string{in.ImageID}, snapshots...), Tags: ec2tag.Tags(in.Tags)})
			return err
		})
		if err != nil {
			return fmt.Errorf("tag image %s and its snapshots %v in %s: %w", in.ImageID, snapshots, region, err)
		}
		return nil
	}
	if len(in.Tags) > 0 {
		o.logf("tagging image %s in %s", in.ImageID, region)
		err := o.retry(ctx, []string{codeAMINotFound}, func() error {
			_, err := api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{in.ImageID}, Tags: ec2tag.Tags(in.Tags)})
			return err
		})
		if err != nil {
			return fmt.Errorf("tag image %s in %s: %w", in.ImageID, region, err)
		}
	}
	if len(snapshots) > 0 && len(snapTags) > 0 {
		o.logf("tagging snapshots %v of image %s in %s", snapshots, in.ImageID, region)
		err := o.retry(ctx, []string{codeSnapshotNotFound}, func() error {
			_, err := api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: snapshots, Tags: ec2tag.Tags(snapTags)})
			return err
		})
		if err != nil {
			return fmt.Errorf("tag snapshots %v of image %s in %s: %w", snapshots, in.ImageID, region, err)
		}
	}
	return nil
}
