package instance_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// instances plays EC2 for a few instances, as TerminateAPI: it knows each
// instance's state, shows a terminating instance shutting down once and
// terminated afterwards, and answers InvalidInstanceID.NotFound for an
// instance it does not know. Any narrow client works with the SDK.
type instances map[string]types.InstanceStateName

func notFound(id string) error {
	return &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: "The instance ID '" + id + "' does not exist"}
}

func (m instances) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	for _, id := range in.InstanceIds {
		if _, ok := m[id]; !ok {
			return nil, notFound(id)
		}
	}
	for _, id := range in.InstanceIds {
		m[id] = types.InstanceStateNameShuttingDown
	}
	return &ec2.TerminateInstancesOutput{}, nil
}

func (m instances) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	var found []types.Instance
	for _, id := range in.InstanceIds {
		state, ok := m[id]
		if !ok {
			return nil, notFound(id)
		}
		found = append(found, types.Instance{InstanceId: aws.String(id), State: &types.InstanceState{Name: state}})
		if state == types.InstanceStateNameShuttingDown {
			m[id] = types.InstanceStateNameTerminated
		}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: found}}}, nil
}

// Terminate the instances of a build and wait until they are terminated;
// an instance that is already gone counts as terminated. A wait for a state
// the instance can no longer reach fails with a *StateError.
func ExampleTerminate() {
	ctx := context.Background()
	client := instances{"i-0123456789abcdef0": types.InstanceStateNameRunning}
	fast := instance.WaitOptions{MinDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxWait: time.Minute}

	out, err := instance.Terminate(ctx, client, &instance.TerminateInput{
		InstanceIDs: []string{"i-0123456789abcdef0", "i-0fedcba9876543210"},
		Wait:        fast,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("terminated:", out.Terminating, client["i-0123456789abcdef0"])

	_, err = instance.Wait(ctx, client, &instance.WaitInput{
		InstanceIDs: []string{"i-0123456789abcdef0"},
		State:       types.InstanceStateNameRunning,
		Wait:        fast,
	})
	var se *instance.StateError
	if errors.As(err, &se) {
		fmt.Println(se.InstanceID, "is", se.State, "and will not be", se.Want)
	} else {
		fmt.Println("error:", err)
	}
	// Output:
	// terminated: [i-0123456789abcdef0] terminated
	// i-0123456789abcdef0 is terminated and will not be running
}
