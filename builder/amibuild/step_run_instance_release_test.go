//go:build unix

package amibuild

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// TestStepRunInstanceRelease covers StateReleaseInstance: the instance is
// terminated when a later step asks for it, once however often it asks,
// and Cleanup then only waits; when that termination failed, Cleanup
// terminates the instance itself.
func TestStepRunInstanceRelease(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failFirst bool
		wantCalls int
	}{
		{name: "released", wantCalls: 1},
		{name: "release fails, Cleanup terminates", failFirst: true, wantCalls: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			StateSourceImage.Put(e.state, sourceImage(t, e.ec2))
			step := &StepRunInstance{Region: testRegion, Config: &RunConfig{InstanceType: "t3.micro"},
				Ctx: interpolate.Context{Funcs: amiconfig.TemplateFuncs}, Wait: instance.WaitOptions{MinDelay: 1, MaxDelay: 1}}
			e.run(t, step)
			id, _ := StateInstanceID.Get(e.state)
			var n atomic.Int32
			if tc.failFirst {
				e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
					if c.Action == "TerminateInstances" && n.Add(1) == 1 {
						return awstest.ErrorFault("InternalError", http.StatusInternalServerError)
					}
					return nil
				})
			}
			release, ok := StateReleaseInstance.Get(e.state)
			if !ok || release == nil {
				t.Fatal("no StateReleaseInstance after an on-demand launch")
			}
			release()
			release()
			// The termination starts before Cleanup: the release itself
			// calls TerminateInstances before it returns.
			if len(e.proxy.CallsFor("ec2", "TerminateInstances")) == 0 {
				t.Fatal("release() returned before any TerminateInstances call")
			}
			e.state.Put(multistep.StateHalted, true) // as after a later failure
			step.Cleanup(e.state)

			if got := len(e.proxy.CallsFor("ec2", "TerminateInstances")); got != tc.wantCalls {
				t.Errorf("%d TerminateInstances calls, want %d", got, tc.wantCalls)
			}
			out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
			if err != nil {
				t.Fatal(err)
			}
			if st := out.Reservations[0].Instances[0].State.Name; st != types.InstanceStateNameTerminated {
				t.Errorf("instance %s is %s, want terminated", id, st)
			}
			if tc.failFirst && !strings.Contains(e.ui.ErrorMessage, "trying again") {
				t.Errorf("UI error %q does not say the termination is tried again", e.ui.ErrorMessage)
			}
		})
	}
}
