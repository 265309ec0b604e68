package instance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ErrWaitTimeout is wrapped by a *StateError when an instance did not reach
// the wanted state within WaitOptions.MaxWait. It is the same value as
// image.ErrWaitTimeout.
var ErrWaitTimeout = poll.ErrTimeout

// StateError reports an instance that reached a state it cannot leave
// (for example terminated while waiting for running) or did not reach the
// wanted state in time. Use errors.As to get it from an error.
type StateError struct {
	InstanceID string
	Region     string
	// Want is the state waited for: "running", "stopped" or "terminated".
	Want string
	// State is the instance's last known state, "" when it no longer exists.
	State string
	// Reason is the state reason AWS gave, if any.
	Reason string
	// Err is ErrWaitTimeout for a timeout, nil otherwise.
	Err error
}

// Error names the instance, its region, the state waited for, its last
// state and the reason.
func (e *StateError) Error() string {
	return poll.StateMessage(fmt.Sprintf("instance %s in %s", e.InstanceID, e.Region), e.Want, e.State, e.Reason, e.Err, true)
}

// Unwrap returns Err: ErrWaitTimeout for a timeout, else nil.
func (e *StateError) Unwrap() error { return e.Err }

// errTerminalState stops a waiter on a state the instance cannot leave
// towards the wanted one.
var errTerminalState = errors.New("instance reached a terminal state")

// instances flattens the reservations of a DescribeInstances answer.
func instances(out *ec2.DescribeInstancesOutput) []types.Instance {
	if out == nil {
		return nil
	}
	var all []types.Instance
	for _, r := range out.Reservations {
		all = append(all, r.Instances...)
	}
	return all
}

func stateName(i types.Instance) types.InstanceStateName {
	if i.State == nil {
		return ""
	}
	return i.State.Name
}

// retryableFor returns the waiter decision for the wanted state. States in
// keep mean "keep waiting"; any other state is terminal. notFoundDone says
// whether InvalidInstanceID.NotFound counts as reaching the state (for
// terminated); otherwise it means "not visible yet" and the wait goes on.
func retryableFor(want types.InstanceStateName, keep []types.InstanceStateName, notFoundDone bool) func(context.Context, *ec2.DescribeInstancesInput, *ec2.DescribeInstancesOutput, error) (bool, error) {
	return func(_ context.Context, _ *ec2.DescribeInstancesInput, out *ec2.DescribeInstancesOutput, err error) (bool, error) {
		if err != nil {
			if awserr.Code(err) == codeInstanceNotFound {
				return !notFoundDone, nil
			}
			return false, err
		}
		all := instances(out)
		if len(all) == 0 {
			return !notFoundDone, nil
		}
		done := true
		for _, i := range all {
			s := stateName(i)
			switch {
			case s == want:
			case containsState(keep, s):
				done = false
			default:
				return false, errTerminalState
			}
		}
		return !done, nil
	}
}

func containsState(list []types.InstanceStateName, s types.InstanceStateName) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var (
	runningRetryable    = retryableFor(types.InstanceStateNameRunning, []types.InstanceStateName{types.InstanceStateNamePending}, false)
	stoppedRetryable    = retryableFor(types.InstanceStateNameStopped, []types.InstanceStateName{types.InstanceStateNamePending, types.InstanceStateNameRunning, types.InstanceStateNameStopping}, false)
	terminatedRetryable = retryableFor(types.InstanceStateNameTerminated, []types.InstanceStateName{types.InstanceStateNamePending, types.InstanceStateNameRunning, types.InstanceStateNameStopping, types.InstanceStateNameStopped, types.InstanceStateNameShuttingDown}, true)
)

// waitState waits with the SDK waiter for want and turns failures into a
// *StateError. It returns the described instances on success.
func waitState(ctx context.Context, api DescribeInstancesAPI, ids []string, want types.InstanceStateName, w WaitOptions) ([]types.Instance, error) {
	region := awserr.Region(api, "")
	w = w.withDefaults()
	in := &ec2.DescribeInstancesInput{InstanceIds: ids}
	start := time.Now()
	var (
		out *ec2.DescribeInstancesOutput
		err error
	)
	switch want {
	case types.InstanceStateNameRunning:
		out, err = ec2.NewInstanceRunningWaiter(api, func(o *ec2.InstanceRunningWaiterOptions) {
			o.MinDelay, o.MaxDelay, o.Retryable = w.MinDelay, w.MaxDelay, runningRetryable
		}).WaitForOutput(ctx, in, w.MaxWait)
	case types.InstanceStateNameStopped:
		out, err = ec2.NewInstanceStoppedWaiter(api, func(o *ec2.InstanceStoppedWaiterOptions) {
			o.MinDelay, o.MaxDelay, o.Retryable = w.MinDelay, w.MaxDelay, stoppedRetryable
		}).WaitForOutput(ctx, in, w.MaxWait)
	case types.InstanceStateNameTerminated:
		out, err = ec2.NewInstanceTerminatedWaiter(api, func(o *ec2.InstanceTerminatedWaiterOptions) {
			o.MinDelay, o.MaxDelay, o.Retryable = w.MinDelay, w.MaxDelay, terminatedRetryable
		}).WaitForOutput(ctx, in, w.MaxWait)
	default:
		return nil, fmt.Errorf("wait for instances %s: unsupported state %q", strings.Join(ids, ","), want)
	}
	if err == nil {
		return instances(out), nil
	}
	what := fmt.Sprintf("wait for instance %s in %s to be %s", strings.Join(ids, ","), region, want)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var cause error
	switch {
	case errors.Is(err, errTerminalState):
	case time.Since(start)+w.MinDelay >= w.MaxWait:
		cause = ErrWaitTimeout
	default: // a describe call failed (access denied, network ...)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return nil, stateError(ctx, api, ids, region, want, cause)
}

// stateError describes the instances once and reports the first that is not
// in the wanted state.
func stateError(ctx context.Context, api DescribeInstancesAPI, ids []string, region string, want types.InstanceStateName, cause error) error {
	se := &StateError{InstanceID: ids[0], Region: region, Want: string(want), Err: cause}
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	switch {
	case awserr.Code(err) == codeInstanceNotFound:
		se.Reason = "the instance no longer exists"
		return se
	case err != nil:
		return errors.Join(se, fmt.Errorf("describe instance %s in %s: %w", strings.Join(ids, ","), region, err))
	}
	for _, i := range instances(out) {
		if stateName(i) == want {
			continue
		}
		se.InstanceID = aws.ToString(i.InstanceId)
		se.State = string(stateName(i))
		if i.StateReason != nil {
			se.Reason = aws.ToString(i.StateReason.Message)
		}
		if se.Reason == "" {
			se.Reason = aws.ToString(i.StateTransitionReason)
		}
		return se
	}
	return se
}
