package image

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// DescribeImagesAPI is the client behaviour Find, FindByName and Wait
// need.
type DescribeImagesAPI interface {
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
}

// CreateAPI is the client behaviour Create needs.
type CreateAPI interface {
	DescribeImagesAPI
	CreateImage(ctx context.Context, in *ec2.CreateImageInput, optFns ...func(*ec2.Options)) (*ec2.CreateImageOutput, error)
	// DeregisterImage and DeleteSnapshot are used by the undo recorded in
	// Options.Ledger.
	DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
	DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
}

// TagAPI is the client behaviour Tag needs.
type TagAPI interface {
	DescribeImagesAPI
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
}

// DeregisterAPI is the client behaviour Deregister needs.
type DeregisterAPI interface {
	DescribeImagesAPI
	DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
	DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
}

var (
	_ DescribeImagesAPI           = (*ec2.Client)(nil)
	_ CreateAPI                   = (*ec2.Client)(nil)
	_ TagAPI                      = (*ec2.Client)(nil)
	_ DeregisterAPI               = (*ec2.Client)(nil)
	_ ec2.DescribeImagesAPIClient = DescribeImagesAPI(nil)
)

// Options are optional settings shared by the functions of this package.
type Options struct {
	// Ledger, when set, receives every image Create makes, with an undo
	// that deregisters the image and deletes its snapshots.
	Ledger *ledger.Ledger
	// Logf, when set, receives progress messages. It never receives secrets.
	Logf func(format string, args ...any)
	// RetryAttempts bounds the attempts at calls that can fail with a
	// not-found error while AWS is eventually consistent (tagging a new
	// image or snapshot) or with a snapshot still in use right after
	// deregistration. Zero means 8.
	RetryAttempts int
	// RetryDelay is the first delay between those attempts; it doubles
	// after each attempt, up to RetryMaxDelay. Zero means 1s.
	RetryDelay time.Duration
	// RetryMaxDelay caps the delay between attempts. Zero means 15s.
	RetryMaxDelay time.Duration
}

func newOptions(optFns []func(*Options)) Options {
	o := opts.Apply(optFns)
	if o.RetryAttempts <= 0 {
		o.RetryAttempts = 8
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = 15 * time.Second
	}
	if o.RetryMaxDelay < o.RetryDelay {
		o.RetryMaxDelay = o.RetryDelay
	}
	return o
}

func (o Options) logf(format string, args ...any) {
	opts.Logf(o.Logf, format, args...)
}

// retry calls fn until it succeeds, fails with an error whose API code is
// not in codes, the attempts are used up or ctx is done.
func (o Options) retry(ctx context.Context, codes []string, fn func() error) error {
	delay := o.RetryDelay
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= o.RetryAttempts || !slices.Contains(codes, awserr.Code(err)) {
			return err
		}
		if serr := poll.Sleep(ctx, delay); serr != nil {
			return errors.Join(err, serr)
		}
		delay = min(2*delay, o.RetryMaxDelay)
	}
}

// AWS error codes this package reacts to.
const (
	codeAMINotFound      = "InvalidAMIID.NotFound"
	codeAMIUnavailable   = "InvalidAMIID.Unavailable"
	codeSnapshotNotFound = "InvalidSnapshot.NotFound"
	codeSnapshotInUse    = "InvalidSnapshot.InUse"
)

// SnapshotIDs returns the EBS snapshot IDs of img's block device mappings,
// in mapping order, without duplicates. Instance-store images have none.
func SnapshotIDs(img types.Image) []string {
	var ids []string
	for _, bdm := range img.BlockDeviceMappings {
		if bdm.Ebs == nil {
			continue
		}
		if id := aws.ToString(bdm.Ebs.SnapshotId); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// describeOne returns the image with the given ID. A missing image yields
// an error with API code InvalidAMIID.NotFound, also when AWS answers with
// an empty list.
func describeOne(ctx context.Context, api DescribeImagesAPI, imageID string) (types.Image, error) {
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{
		ImageIds:          []string{imageID},
		IncludeDeprecated: aws.Bool(true),
		IncludeDisabled:   aws.Bool(true),
	})
	if err != nil {
		return types.Image{}, err
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == imageID {
			return img, nil
		}
	}
	return types.Image{}, &smithy.GenericAPIError{
		Code:    codeAMINotFound,
		Message: fmt.Sprintf("image %s is not in the DescribeImages answer", imageID),
		Fault:   smithy.FaultClient,
	}
}

func isImageGone(err error) bool { return awserr.Code(err) == codeAMINotFound }
