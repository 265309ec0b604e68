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
	smithywaiter "github.com/aws/smithy-go/waiter"
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
	// Since is when the work the wait is for began: just before the
	// CreateImage, RegisterImage or CopyImage call. Wait predicts the end
	// of the image's snapshots from their progress since then. Zero means
	// when Wait is called.
	Since time.Time
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
	// reports (Wait still reads the snapshots' progress at every
	// SnapshotReadEvery-th pending check).
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

// DescribeSnapshotsAPI is the client behaviour Wait needs, optionally, for
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

// ErrWaitTimeout is wrapped by a *StateError when the image did not
// reach the wanted state within WaitOptions.MaxWait. It is the same value
// as instance.ErrWaitTimeout.
var ErrWaitTimeout = poll.ErrTimeout

// StateError reports an image that failed, disappeared or did not
// become available in time. Use errors.As to get it from an error.
type StateError struct {
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

// Error names the image, its region, its last state and the reason.
func (e *StateError) Error() string {
	return poll.StateMessage(fmt.Sprintf("image %s in %s", e.ImageID, e.Region), "available", e.State, e.Reason, e.Err, false)
}

// Unwrap returns Err: ErrWaitTimeout for a timeout, else nil.
func (e *StateError) Unwrap() error { return e.Err }

// errTerminalState stops the wait on a state the image cannot leave.
var errTerminalState = errors.New("image reached a terminal state")

// availableRetryable decides, after each check, whether to keep waiting.
// Unlike the SDK's default it also keeps waiting while the new image is not
// yet visible (InvalidAMIID.NotFound) and stops at once on deregistered,
// invalid, error and disabled images instead of waiting for the timeout.
func availableRetryable(out *ec2.DescribeImagesOutput, err error) (bool, error) {
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

// SnapshotReadEvery is how often a wait reads the progress of a pending
// image's snapshots when no Progress report asks for it: at every sixth
// check after the first that finds the image pending, once a minute with
// the default schedule.
const SnapshotReadEvery = 6

// Wait waits until the image is available and returns it. Zero fields of
// in.Wait mean the defaults documented on WaitOptions. On failure,
// disappearance or timeout the error is a *StateError. No option
// changes its behaviour today; optFns is there for the uniform signature.
//
// The first check is made at once; each later one follows the one before
// by the schedule's delay (MinDelay, growing to MaxDelay with jitter), and
// never sooner than half MinDelay after the previous answer. Every
// SnapshotReadEvery-th check that finds the image pending, and every check
// that reports Progress, also reads its snapshots' progress with one
// DescribeSnapshots call when the client implements DescribeSnapshotsAPI.
// When the readings, taken as linear progress since in.Wait.Since, put the
// latest end of the snapshots between the next check and MinDelay after
// it, that check is moved to that end and the schedule goes on from there.
// A check is only ever moved later, by less than MinDelay, so the
// prediction never adds a check, and a wrong one delays noticing by less
// than MinDelay.
func Wait(ctx context.Context, api DescribeImagesAPI, in *WaitInput, optFns ...func(*Options)) (*WaitOutput, error) {
	img, err := wait(ctx, api, in.ImageID, in.Region, in.Wait)
	if err != nil {
		return nil, err
	}
	return &WaitOutput{Image: img}, nil
}

// WaitInput names the image Wait waits for.
type WaitInput struct {
	// ImageID is the image. Required.
	ImageID string
	// Region is used in messages; "" means the client's region.
	Region string
	// Wait is the schedule and limits of the wait, and its progress
	// reports.
	Wait WaitOptions
}

// WaitOutput is the result of Wait: the image it saw available.
type WaitOutput struct {
	// Image is the image as described when it was available.
	Image types.Image
}

func wait(ctx context.Context, api DescribeImagesAPI, imageID, region string, w WaitOptions) (types.Image, error) {
	iw := &imageWait{api: api, id: imageID, region: awserr.Region(api, region), w: w.withDefaults(), start: time.Now()}
	iw.since = iw.w.Since
	if iw.since.IsZero() {
		iw.since = iw.start
	}
	img, err := iw.run(ctx)
	if err == nil {
		return img, nil
	}
	if ctx.Err() != nil {
		return types.Image{}, fmt.Errorf("wait for image %s in %s: %w", imageID, iw.region, ctx.Err())
	}
	var cause error
	switch {
	case errors.Is(err, errTerminalState):
	case errors.Is(err, ErrWaitTimeout):
		cause = ErrWaitTimeout
	default: // a describe call failed (access denied, network ...)
		return types.Image{}, fmt.Errorf("wait for image %s in %s: %w", imageID, iw.region, err)
	}
	return types.Image{}, stateError(ctx, api, imageID, iw.region, cause)
}

// imageWait is one run of Wait.
type imageWait struct {
	api          DescribeImagesAPI
	id, region   string
	w            WaitOptions
	start, since time.Time
	lastReport   time.Time
	sinceReading int // pending checks since the last reading
	// total is what the readings so far allow for the snapshots' whole
	// duration.
	total durationBounds
}

// run makes the checks. It returns errTerminalState, ErrWaitTimeout, the
// context's error or a describe call's error when the image does not
// become available.
func (iw *imageWait) run(ctx context.Context) (types.Image, error) {
	in := &ec2.DescribeImagesInput{ImageIds: []string{iw.id}}
	deadline := iw.start.Add(iw.w.MaxWait)
	// The check made at once reads nothing: the work has only just begun.
	iw.lastReport, iw.sinceReading = iw.start, -1
	at := iw.start // when the next check is due
	for attempt := int64(1); ; attempt++ {
		if err := poll.SleepUntil(ctx, at); err != nil {
			return types.Image{}, err
		}
		out, err := iw.api.DescribeImages(ctx, in)
		again, rerr := availableRetryable(out, err)
		if rerr != nil {
			return types.Image{}, rerr
		}
		if !again {
			for _, img := range out.Images {
				if aws.ToString(img.ImageId) == iw.id {
					return img, nil
				}
			}
			return types.Image{}, fmt.Errorf("not in the answer")
		}
		now := time.Now()
		if err == nil {
			iw.pending(ctx, out, at, now)
		}
		if deadline.Sub(now) < iw.w.MinDelay {
			return types.Image{}, ErrWaitTimeout
		}
		delay, err := smithywaiter.ComputeDelay(attempt, iw.w.MinDelay, iw.w.MaxDelay, deadline.Sub(at))
		if err != nil {
			return types.Image{}, err
		}
		next := at.Add(delay)
		if floor := now.Add(iw.w.MinDelay / 2); next.Before(floor) {
			next = floor
		}
		if end, ok := iw.predictedEnd(); ok && end.After(next) && end.Before(next.Add(iw.w.MinDelay)) && end.Before(deadline) {
			next = end
		}
		at = next
	}
}

// pending handles a check due at at and answered at now that found the
// image pending: it reads the snapshots' progress when a report is due
// (timed by the checks' schedule, so that reports and readings fall on the
// same checks) or SnapshotReadEvery checks have passed without a reading,
// and reports.
func (iw *imageWait) pending(ctx context.Context, out *ec2.DescribeImagesOutput, at, now time.Time) {
	var img *types.Image
	for i := range out.Images {
		if aws.ToString(out.Images[i].ImageId) == iw.id {
			img = &out.Images[i]
		}
	}
	if img == nil {
		return
	}
	iw.sinceReading++
	report := iw.w.Progress != nil && (iw.w.ProgressInterval <= 0 || at.Sub(iw.lastReport) >= iw.w.ProgressInterval)
	if !report && iw.sinceReading < SnapshotReadEvery {
		return
	}
	pct := snapshotPercent(ctx, iw.api, *img)
	iw.sinceReading = 0
	iw.total.add(now.Sub(iw.since), pct)
	if report {
		iw.lastReport = at
		iw.w.Progress(Progress{
			ImageID: iw.id, Region: iw.region, State: string(img.State),
			Elapsed: now.Sub(iw.start), SnapshotPercent: pct,
		})
	}
}

// predictedEnd is the latest time the snapshots can be complete if their
// progress has been linear since iw.since.
func (iw *imageWait) predictedEnd() (time.Time, bool) {
	if iw.total.hi <= 0 {
		return time.Time{}, false
	}
	return iw.since.Add(iw.total.hi), true
}

// durationBounds are the whole durations of linear work that a series of
// readings allows: more than lo and at most hi (0 = unknown).
type durationBounds struct{ lo, hi time.Duration }

// add narrows the bounds by a reading of pct (a whole percentage, rounded
// down, as EC2 gives it) after elapsed. A reading outside them (the
// progress was not linear) starts the bounds afresh; an unusable one
// (negative percentage, 100 or more, nothing elapsed) is ignored.
func (b *durationBounds) add(elapsed time.Duration, pct int) {
	if pct < 0 || pct >= 100 || elapsed <= 0 {
		return
	}
	lo := time.Duration(float64(elapsed) * 100 / float64(pct+1))
	var hi time.Duration // 0%: no upper bound
	if pct > 0 {
		hi = time.Duration(float64(elapsed) * 100 / float64(pct))
	}
	if (b.hi > 0 && lo >= b.hi) || (hi > 0 && hi <= b.lo) {
		*b = durationBounds{}
	}
	b.lo = max(b.lo, lo)
	if hi > 0 && (b.hi == 0 || hi < b.hi) {
		b.hi = hi
	}
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

// stateError describes the image once and builds the *StateError.
func stateError(ctx context.Context, api DescribeImagesAPI, imageID, region string, cause error) error {
	se := &StateError{ImageID: imageID, Region: region, Err: cause}
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
