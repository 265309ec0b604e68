package image

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// DefaultPollDelay is the delay between two checks of a wait when
// WaitOptions leave MinDelay and MaxDelay zero: a change is noticed 5
// seconds after it happened in the median and within 10 seconds always,
// for 6 DescribeImages calls a minute.
const DefaultPollDelay = 10 * time.Second

// WaitOptions bound the wait for an image. Zero fields mean the defaults:
// the first check at once, then one every DefaultPollDelay (MinDelay =
// MaxDelay = 10s, no growth), MaxWait 60m.
type WaitOptions struct {
	// MinDelay is the delay after the first check; when MaxDelay is
	// larger, later delays grow exponentially (with jitter) up to it.
	MinDelay time.Duration
	// MaxDelay caps the delay between checks.
	MaxDelay time.Duration
	// MaxWait bounds the whole wait.
	MaxWait time.Duration
	// Progress, when set, is called after each check that finds the image
	// still pending. To fill in Progress.SnapshotPercent, Wait then
	// describes the image's snapshots once per such check, when the client
	// also implements DescribeSnapshotsAPI (*ec2.Client does). nil = no
	// reports and no DescribeSnapshots calls.
	Progress func(Progress)
	// ProgressInterval, when positive, reports (and describes snapshots)
	// only at checks at least this long after the last report, or after
	// the start of the wait for the first. 0 = every check.
	ProgressInterval time.Duration
}

// Progress is what Wait reports of an image that is still pending.
type Progress struct {
	ImageID string
	Region  string
	// State is the image's state at the last check ("pending", ...).
	State string
	// Elapsed is the time since the wait began.
	Elapsed time.Duration
	// SnapshotPercent is the progress (0 to 100) of the image's least
	// complete snapshot, or -1 when unknown: the image lists no snapshots
	// yet, the client cannot describe snapshots, or the answer gave none.
	SnapshotPercent int
}

// DescribeSnapshotsAPI is the optional client behaviour Wait uses for
// Progress.SnapshotPercent.
type DescribeSnapshotsAPI interface {
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

var _ DescribeSnapshotsAPI = (*ec2.Client)(nil)

func (w WaitOptions) withDefaults() WaitOptions {
	s := poll.Schedule{MinDelay: w.MinDelay, MaxDelay: w.MaxDelay, MaxWait: w.MaxWait}.WithDefaults(DefaultPollDelay, 60*time.Minute)
	w.MinDelay, w.MaxDelay, w.MaxWait = s.MinDelay, s.MaxDelay, s.MaxWait
	return w
}

// waiterOptions sets the SDK waiter's delays from w (with defaults
// applied) and its retry decision.
func (w WaitOptions) waiterOptions(retryable func(context.Context, *ec2.DescribeImagesInput, *ec2.DescribeImagesOutput, error) (bool, error)) func(*ec2.ImageAvailableWaiterOptions) {
	return func(o *ec2.ImageAvailableWaiterOptions) {
		o.MinDelay = w.MinDelay
		o.MaxDelay = w.MaxDelay
		o.Retryable = retryable
	}
}

// ErrWaitTimeout is wrapped by an *ImageStateError when the image did not
// reach the wanted state within WaitOptions.MaxWait. It is the same value
// as instance.ErrWaitTimeout.
var ErrWaitTimeout = poll.ErrTimeout

// ImageStateError reports an image that failed, disappeared or did not
// become available in time. Use errors.As to get it from an error.
type ImageStateError struct {
	ImageID string
	Region  string
	// State is the image's last known state ("pending", "failed", ...), or
	// "" when the image no longer exists.
	State string
	// Reason is the state reason AWS gave, if any.
	Reason string
	// Err is ErrWaitTimeout for a timeout, nil when the image reached a
	// state it cannot leave.
	Err error
}

func (e *ImageStateError) Error() string {
	state := e.State
	if state == "" {
		state = "gone"
	}
	msg := fmt.Sprintf("image %s in %s is %s", e.ImageID, e.Region, state)
	if e.Err != nil {
		msg = fmt.Sprintf("image %s in %s: %v waiting to become available; it is %s", e.ImageID, e.Region, e.Err, state)
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

func (e *ImageStateError) Unwrap() error { return e.Err }

// errTerminalState stops the waiter on a state the image cannot leave.
var errTerminalState = errors.New("image reached a terminal state")

// availableRetryable decides, after each check, whether to keep waiting.
// Unlike the SDK's default it also keeps waiting while the new image is not
// yet visible (InvalidAMIID.NotFound) and stops at once on deregistered,
// invalid, error and disabled images instead of waiting for the timeout.
func availableRetryable(ctx context.Context, _ *ec2.DescribeImagesInput, out *ec2.DescribeImagesOutput, err error) (bool, error) {
	if err != nil {
		if awserr.Code(err) == codeAMINotFound {
			return true, nil
		}
		return false, err
	}
	if len(out.Images) == 0 {
		return true, nil
	}
	done := true
	for _, img := range out.Images {
		switch img.State {
		case types.ImageStateAvailable:
		case types.ImageStatePending, types.ImageStateTransient:
			done = false
		default: // failed, deregistered, invalid, error, disabled
			return false, errTerminalState
		}
	}
	return !done, nil
}

// Wait waits until the image is available and returns it. Zero fields of w
// mean the defaults documented on WaitOptions; region is used in messages
// ("" = the client's region). On failure, disappearance or timeout the error
// is an *ImageStateError.
func Wait(ctx context.Context, api DescribeImagesAPI, imageID, region string, w WaitOptions) (types.Image, error) {
	region = awserr.Region(api, region)
	w = w.withDefaults()
	in := &ec2.DescribeImagesInput{ImageIds: []string{imageID}}
	start := time.Now()
	retryable := availableRetryable
	if w.Progress != nil {
		last := start
		retryable = func(ctx context.Context, in *ec2.DescribeImagesInput, out *ec2.DescribeImagesOutput, err error) (bool, error) {
			again, rerr := availableRetryable(ctx, in, out, err)
			if !again || rerr != nil || err != nil {
				return again, rerr
			}
			now := time.Now()
			if w.ProgressInterval > 0 && now.Sub(last) < w.ProgressInterval {
				return again, rerr
			}
			for _, img := range out.Images {
				if aws.ToString(img.ImageId) == imageID {
					last = now
					w.Progress(Progress{
						ImageID: imageID, Region: region, State: string(img.State),
						Elapsed: now.Sub(start), SnapshotPercent: snapshotPercent(ctx, api, img),
					})
				}
			}
			return again, rerr
		}
	}
	waiter := ec2.NewImageAvailableWaiter(api, w.waiterOptions(retryable))
	out, err := waiter.WaitForOutput(ctx, in, w.MaxWait)
	if err == nil {
		for _, img := range out.Images {
			if aws.ToString(img.ImageId) == imageID {
				return img, nil
			}
		}
		return types.Image{}, fmt.Errorf("wait for image %s in %s: not in the answer", imageID, region)
	}
	if ctx.Err() != nil {
		return types.Image{}, fmt.Errorf("wait for image %s in %s: %w", imageID, region, ctx.Err())
	}
	var cause error
	switch {
	case errors.Is(err, errTerminalState):
	case time.Since(start)+w.MinDelay >= w.MaxWait:
		cause = ErrWaitTimeout
	default: // a describe call failed (access denied, network ...)
		return types.Image{}, fmt.Errorf("wait for image %s in %s: %w", imageID, region, err)
	}
	return types.Image{}, stateError(ctx, api, imageID, region, cause)
}

// snapshotPercent returns the progress of img's least complete snapshot
// from one DescribeSnapshots call, or -1 when it cannot be known.
func snapshotPercent(ctx context.Context, api DescribeImagesAPI, img types.Image) int {
	ids := SnapshotIDs(img)
	sapi, ok := api.(DescribeSnapshotsAPI)
	if len(ids) == 0 || !ok {
		return -1
	}
	out, err := sapi.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
	if err != nil || len(out.Snapshots) != len(ids) {
		return -1
	}
	least := 100
	for _, s := range out.Snapshots {
		p, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(aws.ToString(s.Progress), "%")))
		switch {
		case err == nil && p >= 0 && p <= 100:
		case s.State == types.SnapshotStateCompleted:
			p = 100
		default:
			return -1
		}
		least = min(least, p)
	}
	return least
}

// stateError describes the image once and builds the *ImageStateError.
func stateError(ctx context.Context, api DescribeImagesAPI, imageID, region string, cause error) error {
	se := &ImageStateError{ImageID: imageID, Region: region, Err: cause}
	img, err := describeOne(ctx, api, imageID)
	switch {
	case err == nil:
		se.State = string(img.State)
		if img.StateReason != nil {
			se.Reason = aws.ToString(img.StateReason.Message)
			if se.Reason == "" {
				se.Reason = aws.ToString(img.StateReason.Code)
			}
		}
	case isImageGone(err):
		se.Reason = "the image no longer exists"
	default:
		return errors.Join(se, fmt.Errorf("describe image %s in %s: %w", imageID, region, err))
	}
	return se
}
