package distribute

// Image helpers: describe, wait, tag and deregister one AMI. They follow the
// sdk/image contract (Wait, Tag, Deregister, SnapshotIDs) so that they can
// be replaced by that package's functions one for one.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// WaitOptions bound waiting for an AMI: the first poll delay, the longest
// delay (delays double in between) and the longest total wait.
type WaitOptions struct {
	MinDelay, MaxDelay, MaxWait time.Duration
}

// ImageStateError reports an AMI that ended in a state other than
// available, or did not reach it in time. Use errors.As.
type ImageStateError struct {
	ImageID, Region, State, Reason string
}

func (e *ImageStateError) Error() string {
	msg := fmt.Sprintf("image %s%s is %s", e.ImageID, regionSuffix(e.Region), e.State)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// errImageNotFound is returned by describeImage when the ID is unknown.
type imageNotFoundError struct{ id string }

func (e *imageNotFoundError) Error() string        { return "image " + e.id + " not found" }
func (e *imageNotFoundError) ErrorCode() string    { return "InvalidAMIID.NotFound" }
func (e *imageNotFoundError) ErrorMessage() string { return e.Error() }
func (e *imageNotFoundError) ErrorFault() int      { return 0 }

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

func snapshotIDs(img types.Image) []string {
	var ids []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && aws.ToString(m.Ebs.SnapshotId) != "" {
			ids = append(ids, aws.ToString(m.Ebs.SnapshotId))
		}
	}
	return ids
}

// waitImage polls until the AMI is available, with delays doubling from
// MinDelay to MaxDelay. NotFound right after a copy is treated as pending.
func waitImage(ctx context.Context, api DescribeImagesAPI, id, region string, w WaitOptions) (types.Image, error) {
	deadline := time.Now().Add(w.MaxWait)
	delay := w.MinDelay
	state := "pending"
	for {
		img, err := describeImage(ctx, api, id)
		switch {
		case err == nil:
			state = string(img.State)
			switch img.State {
			case types.ImageStateAvailable:
				return img, nil
			case types.ImageStatePending, types.ImageStateTransient:
			default:
				reason := ""
				if img.StateReason != nil {
					reason = aws.ToString(img.StateReason.Message)
				}
				return img, &ImageStateError{ImageID: id, Region: region, State: state, Reason: reason}
			}
		case !isNotFound(err):
			return types.Image{}, fmt.Errorf("wait for %s%s: %w", id, regionSuffix(region), err)
		}
		if time.Now().Add(delay).After(deadline) {
			return img, &ImageStateError{ImageID: id, Region: region, State: state, Reason: fmt.Sprintf("not available after %s", w.MaxWait)}
		}
		if err := sleep(ctx, delay); err != nil {
			return img, fmt.Errorf("wait for %s%s: %w", id, regionSuffix(region), err)
		}
		delay = min(delay*2, w.MaxDelay)
	}
}

// tagImage tags the AMI with tags and each of its snapshots with
// snapshotTags (or tags when snapshotTags is nil).
func (o Options) tagImage(ctx context.Context, api CreateTagsAPI, id string, snaps []string, tags, snapshotTags map[string]string) error {
	if snapshotTags == nil {
		snapshotTags = tags
	}
	put := func(ids []string, m map[string]string) error {
		if len(ids) == 0 || len(m) == 0 {
			return nil
		}
		var t []types.Tag
		for _, k := range slices.Sorted(maps.Keys(m)) {
			t = append(t, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
		}
		return o.retryNotFound(ctx, func() error {
			_, err := api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: t})
			return err
		})
	}
	if err := put([]string{id}, tags); err != nil {
		return fmt.Errorf("tag %s: %w", id, err)
	}
	if err := put(snaps, snapshotTags); err != nil {
		return fmt.Errorf("tag snapshots %v of %s: %w", snaps, id, err)
	}
	return nil
}

// deregisterImage deregisters the AMI and deletes its snapshots. A missing
// AMI is not an error (nothing to do). Snapshot IDs come from knownSnaps
// when non-nil, else from DescribeImages. It reports whether the AMI is
// gone and which snapshots were deleted.
func (o Options) deregisterImage(ctx context.Context, api DeregisterAPI, id, region string, knownSnaps []string) (gone bool, deleted []string, err error) {
	snaps := knownSnaps
	if snaps == nil {
		img, err := describeImage(ctx, api, id)
		switch {
		case err == nil:
			snaps = snapshotIDs(img)
		case isNotFound(err):
		default:
			return false, nil, fmt.Errorf("deregister %s%s: describe: %w", id, regionSuffix(region), err)
		}
	}
	if _, err := api.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)}); err != nil && !isNotFound(err) {
		return false, nil, fmt.Errorf("deregister %s%s: %w", id, regionSuffix(region), err)
	}
	var errs []error
	for _, s := range snaps {
		// A snapshot stays "in use" for a moment after its AMI is gone.
		delay := o.RetryDelay
		deadline := time.Now().Add(o.ConsistencyTimeout)
		for {
			_, err := api.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s)})
			if err == nil || isNotFound(err) {
				deleted = append(deleted, s)
				break
			}
			if errorCode(err) != "InvalidSnapshot.InUse" || time.Now().Add(delay).After(deadline) {
				errs = append(errs, fmt.Errorf("delete snapshot %s of %s%s: %w", s, id, regionSuffix(region), err))
				break
			}
			if serr := sleep(ctx, delay); serr != nil {
				errs = append(errs, fmt.Errorf("delete snapshot %s of %s%s: %w", s, id, regionSuffix(region), errors.Join(err, serr)))
				break
			}
			delay = min(delay*2, 15*time.Second)
		}
	}
	return true, deleted, errors.Join(errs...)
}
