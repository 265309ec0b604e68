package instance

import (
	"context"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// CreateTokenTag is the tag key under which CreateKeyPair and
// CreateSecurityGroup put a random token on what they create. When a create
// call fails, the call may still have taken effect in AWS (the response was
// lost, or the context was cancelled while the request was in flight);
// a resource with the requested name that carries the call's token was made
// by that call, while one without it existed before and is never touched.
const CreateTokenTag = "ami-build:create-token"

// recoveryTimeout bounds the calls that look for, and remove, what a failed
// create may have made when the caller's context is already done.
const recoveryTimeout = 2 * time.Minute

// withToken returns tags plus the create token.
func withToken(tags map[string]string, token string) map[string]string {
	m := maps.Clone(tags)
	if m == nil {
		m = map[string]string{}
	}
	m[CreateTokenTag] = token
	return m
}

// hasToken reports whether tags carry the create token.
func hasToken(tags []types.Tag, token string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == CreateTokenTag && aws.ToString(t.Value) == token {
			return true
		}
	}
	return false
}

// recoveryContext returns ctx, or, when ctx is already done (the caller
// gave up while a create was in flight), a context that is not cancelled
// with it and ends after recoveryTimeout, so that what the create made can
// still be found and removed.
func recoveryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), recoveryTimeout)
}

// settleDelay is how long a lookup after a create whose caller gave up
// waits before looking a second time: the abandoned request may still be on
// its way to AWS when the first lookup finds nothing.
const settleDelay = 2 * time.Second

// lookAgain calls find and, when callerDone and find found nothing, once
// more after settleDelay.
func lookAgain[T any](ctx context.Context, callerDone bool, find func() ([]T, error)) ([]T, error) {
	got, err := find()
	if err != nil || len(got) > 0 || !callerDone {
		return got, err
	}
	t := time.NewTimer(settleDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, nil
	case <-t.C:
	}
	return find()
}
