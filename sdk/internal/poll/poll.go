// Package poll holds what the SDK's waits share: their timeout error and
// the text of their state errors, how a schedule's zero fields take their
// defaults, and sleeping that a cancelled context cuts short.
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimeout is the one timeout error of every wait in the SDK
// (image.ErrWaitTimeout and instance.ErrWaitTimeout are this value), so
// that errors.Is against either matches a timeout of any wait.
var ErrTimeout = errors.New("timed out")

// Schedule is when a wait checks and how long it may last.
type Schedule struct {
	// MinDelay is the delay after the first check; when MaxDelay is
	// larger, later delays grow exponentially (with jitter) up to it.
	MinDelay time.Duration
	// MaxDelay caps the delay between checks.
	MaxDelay time.Duration
	// MaxWait bounds the whole wait.
	MaxWait time.Duration
}

// WithDefaults returns s with zero or negative delays set to delay, a
// MaxDelay below MinDelay raised to it, and a zero or negative MaxWait set
// to maxWait.
func (s Schedule) WithDefaults(delay, maxWait time.Duration) Schedule {
	if s.MinDelay <= 0 {
		s.MinDelay = delay
	}
	if s.MaxDelay <= 0 {
		s.MaxDelay = delay
	}
	if s.MaxDelay < s.MinDelay {
		s.MaxDelay = s.MinDelay
	}
	if s.MaxWait <= 0 {
		s.MaxWait = maxWait
	}
	return s
}

// Sleep waits d, or until ctx is done, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SleepUntil waits until t, or until ctx is done.
func SleepUntil(ctx context.Context, t time.Time) error {
	return Sleep(ctx, time.Until(t))
}

// StateMessage is the text of a wait's state error: subject (such as
// "image ami-… in eu-west-1") is state, or "gone" when state is ""; after
// a timeout (err set) it says it timed out waiting to become want; reason,
// when AWS gave one, follows a colon. notWant adds ", not <want>" to a
// state reached instead of want.
func StateMessage(subject, want, state, reason string, err error, notWant bool) string {
	if state == "" {
		state = "gone"
	}
	var msg string
	switch {
	case err != nil:
		msg = fmt.Sprintf("%s: %v waiting to become %s; it is %s", subject, err, want, state)
	case notWant:
		msg = fmt.Sprintf("%s is %s, not %s", subject, state, want)
	default:
		msg = fmt.Sprintf("%s is %s", subject, state)
	}
	if reason != "" {
		msg += ": " + reason
	}
	return msg
}
