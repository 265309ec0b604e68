package distribute

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Options tune every operation of this package. The zero value is ready:
// every zero field means the documented default.
type Options struct {
	// Ledger, when set, records every AMI copy Copy makes (kind "image",
	// with an undo that deregisters it and deletes its snapshots). Copies
	// Copy removes itself after a failure are forgotten again.
	Ledger *ledger.Ledger
	// Logf receives progress messages. nil = silent.
	Logf func(format string, args ...any)
	// Wait bounds waiting for a copy to become available (image.Wait):
	// zero fields = a check at once, then every 10s, for at most 60m. With
	// Logf set, Copy logs each pending copy's progress once a minute.
	Wait WaitOptions
	// ConsistencyTimeout bounds retrying calls that fail with a *.NotFound
	// error right after a resource was made (eventual consistency).
	// 0 = 2 minutes.
	ConsistencyTimeout time.Duration
	// RetryDelay is the first delay between such retries (and those of
	// tagging and snapshot deletion in package image); it doubles up to 15
	// seconds. 0 = 1 second.
	RetryDelay time.Duration
	// CleanupTimeout bounds removing copies after a failure; cleanup runs
	// with a fresh context so that it also runs after cancellation.
	// 0 = 15 minutes.
	CleanupTimeout time.Duration
	// Now returns the current time (deprecation times, retention ages).
	// nil = time.Now.
	Now func() time.Time
	// KMS returns a KMS client for a region. Before an encrypted AMI is
	// shared with other accounts, organizations or OUs, its key is looked
	// up with DescribeKey (kms:DescribeKey) to refuse the AWS-managed key,
	// which AWS does not let anyone share, before anything changes. nil =
	// keys are judged by name: alias/aws/ebs (or its ARN) is AWS-managed,
	// any other key is taken to be customer-managed.
	KMS func(region string) DescribeKeyAPI
	// SSM returns the SSM client of a region of the caller's account, for
	// the parameters of Distribute, Publish and PreflightPublish
	// (DistributeInput.Parameters, PublishInput.Parameters) and those whose
	// AMIs Retain keeps (RetainInput.Parameters). Required only with
	// parameters.
	SSM SSMClientFunc
	// Accounts returns the clients of a target account of Distribute
	// (DistributeInput.Accounts), typically by assuming its role. Required
	// only with accounts.
	Accounts AccountFunc
}

func newOptions(optFns []func(*Options)) Options {
	var o Options
	for _, f := range optFns {
		f(&o)
	}
	if o.ConsistencyTimeout <= 0 {
		o.ConsistencyTimeout = 2 * time.Minute
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o Options) logf(format string, args ...any) {
	opts.Logf(o.Logf, format, args...)
}

// retryNotFound runs fn until it succeeds, fails with an error other than
// *.NotFound, ctx ends or ConsistencyTimeout passes.
func (o Options) retryNotFound(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(o.ConsistencyTimeout)
	delay := o.RetryDelay
	for {
		err := fn()
		if err == nil || !isNotFound(err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		if serr := poll.Sleep(ctx, delay); serr != nil {
			return errors.Join(err, serr)
		}
		delay = min(delay*2, 15*time.Second)
	}
}

func isNotFound(err error) bool {
	c := awserr.Code(err)
	return strings.HasSuffix(c, ".NotFound")
}

// reuse sets another operation's options to o, defaults already applied,
// so that an operation calling another passes its own options on as
// they are.
func (o Options) reuse(dst *Options) { *dst = o }
