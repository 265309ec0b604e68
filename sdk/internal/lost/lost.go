// Package lost holds how the SDK recovers from a create call whose answer
// was lost: the call may have taken effect although it failed (the answer
// never arrived, or the caller's context ended while the request was in
// flight), or a retried call may have taken effect once per attempt. The
// packages that create things find what such a call made by marks only
// that call could have put on it (a client token, a token tag, a name and
// a source), and then use it as the call's result or remove it.
package lost

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/middleware"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"
)

// Timeout bounds the calls that look for, and remove, what a failed create
// made when the caller's context is already done.
const Timeout = 2 * time.Minute

// SettleDelay is how long a lookup after a create whose caller gave up
// waits before looking a second time: the abandoned request may still be on
// its way to AWS when the first lookup finds nothing.
const SettleDelay = 2 * time.Second

// Context returns ctx, or, when ctx is already done (the caller gave up
// while a create was in flight), a context that is not cancelled with it
// and ends after Timeout, so that what the create made can still be found
// and removed.
func Context(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), Timeout)
}

// Find calls find and, when callerDone and find found nothing, once more
// after SettleDelay. When ctx ends during that delay, it reports that
// nothing was found.
func Find[T any](ctx context.Context, callerDone bool, find func() ([]T, error)) ([]T, error) {
	return lookAgain(ctx, callerDone, find, func(got []T) bool { return len(got) > 0 })
}

// FindOne is Find for a lookup that finds at most one thing, and returns
// nil when there is none.
func FindOne[T any](ctx context.Context, callerDone bool, find func() (*T, error)) (*T, error) {
	return lookAgain(ctx, callerDone, find, func(got *T) bool { return got != nil })
}

// lookAgain is Find for any result of which found tells whether it names
// something.
func lookAgain[T any](ctx context.Context, callerDone bool, find func() (T, error), found func(T) bool) (T, error) {
	got, err := find()
	if err != nil || found(got) || !callerDone {
		return got, err
	}
	if poll.Sleep(ctx, SettleDelay) != nil {
		var none T
		return none, nil
	}
	return find()
}

// Retried reports whether the answer described by md came after more than
// one attempt: an earlier attempt whose answer was lost may have taken
// effect as well.
func Retried(md middleware.Metadata) bool {
	attempts, ok := retry.GetAttemptResults(md)
	return ok && len(attempts.Results) > 1
}

// Made recovers from a create call that may have made several resources
// (one per attempt, where the service ignores idempotency tokens) and whose
// resources are told apart from older ones by a lookup. The functions say
// how to find, remove and record those resources, and how to describe what
// happened; all are required.
type Made struct {
	// Find returns the IDs of the resources the call made, oldest first.
	Find func(ctx context.Context) ([]string, error)
	// Remove removes one resource the call made that the caller does not
	// use, and records it for a later undo when it cannot.
	Remove func(ctx context.Context, id string) error
	// Record records id, the resource used as the call's result, for the
	// caller's undo; it is called when the others cannot be removed, since
	// the caller then returns an error without recording it itself.
	Record func(id string)
	// Adopted tells of id being used as the call's result, before the
	// other resources the call made are removed.
	Adopted func(id string)
	// LookFailed returns the error of a lookup (err) that failed, so that
	// the caller cannot tell whether the call made anything.
	LookFailed func(err error) error
	// RemovedAll returns callErr noting that id, the oldest resource the
	// call made, was removed with any others because the caller gave up.
	RemovedAll func(callErr error, id string) error
}

// Recover looks for what a create call that failed with callErr made
// anyway. When the caller is still there, it returns the oldest such
// resource as the call's result and removes the others. When ctx is done,
// it removes all of them, within Context, and returns the error that says
// so. When the call made nothing, it returns callErr.
func (m Made) Recover(ctx context.Context, callErr error) (string, error) {
	rctx, cancel := Context(ctx)
	defer cancel()
	made, err := Find(rctx, ctx.Err() != nil, func() ([]string, error) { return m.Find(rctx) })
	if err != nil {
		return "", errors.Join(callErr, m.LookFailed(err))
	}
	if len(made) == 0 {
		return "", callErr
	}
	if ctx.Err() != nil {
		if err := m.removeAll(rctx, made); err != nil {
			return "", errors.Join(callErr, err)
		}
		return "", m.RemovedAll(callErr, made[0])
	}
	id := made[0]
	m.Adopted(id)
	if err := m.removeAll(ctx, made[1:]); err != nil {
		m.Record(id)
		return "", err
	}
	return id, nil
}

// RemoveDuplicates removes what a create call made besides id, the resource
// its answer named; call it when the answer came after retries (Retried).
// When that fails, id is recorded and the error returned.
func (m Made) RemoveDuplicates(ctx context.Context, id string) error {
	made, err := m.Find(ctx)
	if err == nil {
		err = m.removeAll(ctx, slices.DeleteFunc(made, func(m string) bool { return m == id }))
	}
	if err != nil {
		m.Record(id)
	}
	return err
}

// removeAll removes every one of ids, going on past failures, and returns
// the failures joined.
func (m Made) removeAll(ctx context.Context, ids []string) error {
	var errs []error
	for _, id := range ids {
		if err := m.Remove(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
