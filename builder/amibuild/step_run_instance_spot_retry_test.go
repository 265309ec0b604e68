//go:build unix

package amibuild

import (
	"context"
	"errors"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

func TestLaunchWhileProfileNotReady(t *testing.T) {
	notReady := &instance.FleetLaunchError{Errors: []instance.FleetLaunchFailure{{Code: "InvalidParameterValue", Message: "Invalid IAM Instance Profile name"}}}
	capacity := &instance.FleetLaunchError{Errors: []instance.FleetLaunchFailure{{Code: "InsufficientInstanceCapacity"}}}
	ok := &instance.RunSpotOutput{FleetID: "fleet-1"}
	tests := []struct {
		name      string
		answers   []error
		wait      time.Duration
		wantCalls int
		wantErr   error
	}{
		{"launched at once", []error{nil}, time.Minute, 1, nil},
		{"profile known on the third try", []error{notReady, notReady, nil}, time.Minute, 3, nil},
		{"other failures are not retried", []error{capacity}, time.Minute, 1, capacity},
		{"no wait, no retry", []error{notReady}, 0, 1, notReady},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			out, err := launchWhileProfileNotReady(context.Background(), packersdk.TestUi(t), tc.wait, time.Millisecond, func() (*instance.RunSpotOutput, error) {
				err := tc.answers[calls]
				calls++
				if err != nil {
					return nil, err
				}
				return ok, nil
			})
			if calls != tc.wantCalls {
				t.Errorf("launches = %d, want %d", calls, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) || (err == nil && out != ok) {
				t.Errorf("out %v, err %v; want err %v", out, err, tc.wantErr)
			}
		})
	}
	// Cancelled while waiting to try again.
	ctx, cancel := context.WithCancel(context.Background())
	_, err := launchWhileProfileNotReady(ctx, packersdk.TestUi(t), 2*time.Hour, time.Hour, func() (*instance.RunSpotOutput, error) {
		cancel()
		return nil, notReady
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
