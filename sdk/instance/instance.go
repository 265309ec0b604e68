package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Options are optional settings shared by the functions of this package.
type Options struct {
	// Ledger, when set, receives every resource created, with its undo.
	Ledger *ledger.Ledger
	// Logf, when set, receives progress messages. It never receives
	// private keys or user data.
	Logf func(format string, args ...any)
	// RetryDelay is the first delay between attempts at a call that failed
	// with a transient dependency error (deleting a security group still
	// used by a terminating instance). It doubles up to RetryMaxDelay.
	// Zero means 2s.
	RetryDelay time.Duration
	// RetryMaxDelay caps the delay between those attempts. Zero means 15s.
	RetryMaxDelay time.Duration
	// UndoWait bounds the waits made by the undo functions recorded in
	// Ledger (terminating an instance, deleting a security group). Zero
	// means 10 minutes.
	UndoWait time.Duration
}

func newOptions(optFns []func(*Options)) Options {
	o := opts.Apply(optFns)
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = 15 * time.Second
	}
	if o.RetryMaxDelay < o.RetryDelay {
		o.RetryMaxDelay = o.RetryDelay
	}
	if o.UndoWait <= 0 {
		o.UndoWait = 10 * time.Minute
	}
	return o
}

func (o Options) logf(format string, args ...any) {
	opts.Logf(o.Logf, format, args...)
}

// undoOptions are the options for calls made by a ledger undo: same
// logging and delays, no ledger.
func (o Options) undoOptions() func(*Options) {
	return func(u *Options) { *u = o; u.Ledger = nil }
}

func (o Options) record(kind ledger.Kind, id, region string, undo func(context.Context) error) {
	if o.Ledger != nil {
		o.Ledger.Record(ledger.Resource{Kind: kind, ID: id, Region: region}, undo)
	}
}

// undoWait is how an undo waits for an instance it terminates: with the
// delays of w, for up to o.UndoWait.
func (o Options) undoWait(w WaitOptions) WaitOptions {
	return WaitOptions{MinDelay: w.MinDelay, MaxDelay: w.MaxDelay, MaxWait: o.UndoWait}
}

// recordInstance records the instance id in o.Ledger, if set, with an undo
// that terminates it and waits as undoWait(w) says.
func (o Options) recordInstance(api TerminateAPI, id, region string, w WaitOptions) {
	o.record(ledger.KindInstance, id, region, func(ctx context.Context) error {
		return terminate(ctx, api, []string{id}, o.undoWait(w), o.undoOptions())
	})
}

// DefaultPollDelay is the delay between two checks of a wait when
// WaitOptions leave MinDelay and MaxDelay zero: a state change is noticed
// 2.5 seconds after it happened in the median and within 5 seconds always,
// for 12 DescribeInstances calls a minute. Instances change state within
// tens of seconds, so a wait for one is short and its lag counts; EC2
// throttles describe calls per account at a rate far above this.
const DefaultPollDelay = 5 * time.Second

// WaitOptions bound a wait for an instance state. Zero fields mean the
// defaults: the first check at once, then one every DefaultPollDelay
// (MinDelay = MaxDelay = 5s, no growth), MaxWait 20m.
type WaitOptions struct {
	// MinDelay is the delay after the first check; when MaxDelay is
	// larger, later delays grow exponentially (with jitter) up to it.
	MinDelay time.Duration
	// MaxDelay caps the delay between checks.
	MaxDelay time.Duration
	// MaxWait bounds the whole wait.
	MaxWait time.Duration
}

func (w WaitOptions) withDefaults() WaitOptions {
	s := poll.Schedule{MinDelay: w.MinDelay, MaxDelay: w.MaxDelay, MaxWait: w.MaxWait}.WithDefaults(DefaultPollDelay, 20*time.Minute)
	w.MinDelay, w.MaxDelay, w.MaxWait = s.MinDelay, s.MaxDelay, s.MaxWait
	return w
}

// AWS error codes this package reacts to.
const (
	codeInstanceNotFound      = "InvalidInstanceID.NotFound"
	codeGroupNotFound         = "InvalidGroup.NotFound"
	codeKeyPairNotFound       = "InvalidKeyPair.NotFound"
	codeKeyPairDuplicate      = "InvalidKeyPair.Duplicate"
	codeGroupDuplicate        = "InvalidGroup.Duplicate"
	codeDependency            = "DependencyViolation"
	codeDuplicatePermission   = "InvalidPermission.Duplicate"
	codeInvalidParameterValue = "InvalidParameterValue"
)

// randomSuffix returns n random bytes as hex.
func randomSuffix(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
