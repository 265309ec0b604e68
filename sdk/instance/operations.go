package instance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// StopInput names the instance Stop stops.
type StopInput struct {
	// InstanceID is the instance. Required.
	InstanceID string
	// Wait bounds the wait for the instance to be stopped.
	Wait WaitOptions
}

// StopOutput is the result of Stop; it carries nothing yet.
type StopOutput struct{}

// Stop stops an instance and waits until it is stopped. On failure or
// timeout the error is a *StateError.
func Stop(ctx context.Context, api StopAPI, in *StopInput, optFns ...func(*Options)) (*StopOutput, error) {
	if err := stop(ctx, api, in.InstanceID, in.Wait, optFns...); err != nil {
		return nil, err
	}
	return &StopOutput{}, nil
}

// TerminateInput names the instances Terminate terminates.
type TerminateInput struct {
	// InstanceIDs are the instances. None is not an error.
	InstanceIDs []string
	// Wait bounds the wait for the instances to be terminated.
	Wait WaitOptions
	// NoWait returns once EC2 has accepted the termination, without
	// waiting for it; Wait with the state terminated waits later for the
	// instances in TerminateOutput.Terminating.
	NoWait bool
}

// TerminateOutput is the result of Terminate: which instances it
// terminated.
type TerminateOutput struct {
	// Terminating are the instances EC2 accepted to terminate: those of
	// the input that still existed. Unless NoWait was set, they are
	// terminated when Terminate returns.
	Terminating []string
}

// Terminate terminates instances and, unless in.NoWait, waits until they
// are terminated. Instances that do not exist (any more) count as
// terminated. On timeout the error is a *StateError.
func Terminate(ctx context.Context, api TerminateAPI, in *TerminateInput, optFns ...func(*Options)) (*TerminateOutput, error) {
	remaining, err := startTerminate(ctx, api, in.InstanceIDs, optFns...)
	if err != nil {
		return nil, err
	}
	if !in.NoWait {
		if err := waitTerminated(ctx, api, remaining, in.Wait); err != nil {
			return nil, err
		}
	}
	return &TerminateOutput{Terminating: remaining}, nil
}

// WaitInput names the instances Wait waits for and the state it waits
// for.
type WaitInput struct {
	// InstanceIDs are the instances. None is not an error.
	InstanceIDs []string
	// State is the state to wait for: running, stopped or terminated. An
	// instance that no longer exists counts as terminated.
	State types.InstanceStateName
	// Wait bounds the wait.
	Wait WaitOptions
}

// WaitOutput is the result of Wait: the instances as it last saw them.
type WaitOutput struct {
	// Instances are the instances in the state waited for; instances that
	// no longer exist are left out.
	Instances []types.Instance
}

// Wait waits until instances reach a state without asking EC2 to change
// it: for example until an instance whose operating system shut down has
// stopped, or until instances Terminate with NoWait began terminating are
// terminated. On failure or timeout the error is a *StateError.
func Wait(ctx context.Context, api DescribeInstancesAPI, in *WaitInput, optFns ...func(*Options)) (*WaitOutput, error) {
	if len(in.InstanceIDs) == 0 {
		return &WaitOutput{}, nil
	}
	switch in.State {
	case types.InstanceStateNameRunning, types.InstanceStateNameStopped, types.InstanceStateNameTerminated:
	default:
		return nil, fmt.Errorf("wait for instance %s: state %q is not running, stopped or terminated", strings.Join(in.InstanceIDs, ","), in.State)
	}
	described, err := waitState(ctx, api, in.InstanceIDs, in.State, in.Wait)
	if err != nil {
		return nil, fmt.Errorf("wait for instance %s in %s to be %s: %w", strings.Join(in.InstanceIDs, ","), awserr.Region(api, ""), in.State, err)
	}
	return &WaitOutput{Instances: described}, nil
}

// DeleteKeyPairInput names the key pair DeleteKeyPair deletes.
type DeleteKeyPairInput struct {
	// KeyName is the key pair's name. Required.
	KeyName string
}

// DeleteKeyPairOutput is the result of DeleteKeyPair; it carries nothing
// yet.
type DeleteKeyPairOutput struct{}

// DeleteKeyPair deletes a key pair by name. A key pair that does not exist
// is not an error.
func DeleteKeyPair(ctx context.Context, api KeyPairAPI, in *DeleteKeyPairInput, optFns ...func(*Options)) (*DeleteKeyPairOutput, error) {
	if err := deleteKeyPair(ctx, api, in.KeyName, optFns...); err != nil {
		return nil, err
	}
	return &DeleteKeyPairOutput{}, nil
}

// DeleteSecurityGroupInput names the security group DeleteSecurityGroup
// deletes.
type DeleteSecurityGroupInput struct {
	// GroupID is the group. Required.
	GroupID string
	// MaxWait bounds the retries while instances still use the group;
	// zero means 5 minutes.
	MaxWait time.Duration
}

// DeleteSecurityGroupOutput is the result of DeleteSecurityGroup; it
// carries nothing yet.
type DeleteSecurityGroupOutput struct{}

// DeleteSecurityGroup deletes a security group. While instances still use
// it (DependencyViolation, common right after terminating them) it retries
// with backoff (Options.RetryDelay, RetryMaxDelay) for up to in.MaxWait. A
// group that does not exist is not an error.
func DeleteSecurityGroup(ctx context.Context, api SecurityGroupAPI, in *DeleteSecurityGroupInput, optFns ...func(*Options)) (*DeleteSecurityGroupOutput, error) {
	if err := deleteSecurityGroup(ctx, api, in.GroupID, in.MaxWait, optFns...); err != nil {
		return nil, err
	}
	return &DeleteSecurityGroupOutput{}, nil
}

// DeleteLaunchTemplateInput names the launch template DeleteLaunchTemplate
// deletes.
type DeleteLaunchTemplateInput struct {
	// LaunchTemplateID is the template's ID. Required.
	LaunchTemplateID string
}

// DeleteLaunchTemplateOutput is the result of DeleteLaunchTemplate; it
// carries nothing yet.
type DeleteLaunchTemplateOutput struct{}

// DeleteLaunchTemplate deletes a launch template by ID. A template that
// does not exist is not an error.
func DeleteLaunchTemplate(ctx context.Context, api LaunchTemplateAPI, in *DeleteLaunchTemplateInput, optFns ...func(*Options)) (*DeleteLaunchTemplateOutput, error) {
	if err := deleteLaunchTemplate(ctx, api, in.LaunchTemplateID, optFns...); err != nil {
		return nil, err
	}
	return &DeleteLaunchTemplateOutput{}, nil
}

// DeleteFleetInput names the EC2 Fleet DeleteFleet deletes.
type DeleteFleetInput struct {
	// FleetID is the fleet. Required.
	FleetID string
}

// DeleteFleetOutput is the result of DeleteFleet; it carries nothing yet.
type DeleteFleetOutput struct{}

// DeleteFleet deletes an EC2 Fleet and terminates its instances (EC2
// requires that for instant fleets), which also cancels its spot requests.
// A fleet that does not exist, or is already deleted, is not an error.
func DeleteFleet(ctx context.Context, api FleetAPI, in *DeleteFleetInput, optFns ...func(*Options)) (*DeleteFleetOutput, error) {
	if err := deleteFleet(ctx, api, in.FleetID, optFns...); err != nil {
		return nil, err
	}
	return &DeleteFleetOutput{}, nil
}
