package image

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// WaitOptions bound the wait for an image. Zero fields mean the defaults:
// MinDelay 2s, MaxDelay 30s, MaxWait 60m.
type WaitOptions struct {
	// MinDelay is the delay after the first check; later delays grow
	// exponentially (with jitter) up to MaxDelay.
	MinDelay time.Duration
	// MaxDelay caps the delay between checks.
	MaxDelay time.Duration
	// MaxWait bounds the whole wait.
	MaxWait time.Duration
}

func (w WaitOptions) withDefaults() WaitOptions {
	if w.MinDelay <= 0 {
		w.MinDelay = 2 * time.Second
	}
	if w.MaxDelay <= 0 {
		w.MaxDelay = 30 * time.Second
	}
	if w.MaxDelay < w.MinDelay {
		w.MaxDelay = w.MinDelay
	}
	if w.MaxWait <= 0 {
		w.MaxWait = 60 * time.Minute
	}
	return w
}

// ErrWaitTimeout is wrapped by an *ImageStateError when the image did not
// reach the wanted state within WaitOptions.MaxWait.
var ErrWaitTimeout = errors.New("timed out")

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
		if apiCode(err) == codeAMINotFound {
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
	region = regionOf(api, region)
	w = w.withDefaults()
	in := &ec2.DescribeImagesInput{ImageIds: []string{imageID}}
	waiter := ec2.NewImageAvailableWaiter(api, func(o *ec2.ImageAvailableWaiterOptions) {
		o.MinDelay = w.MinDelay
		o.MaxDelay = w.MaxDelay
		o.Retryable = availableRetryable
	})
	start := time.Now()
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
