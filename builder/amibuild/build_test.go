//go:build unix

package amibuild

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"
)

// funcStep is a step made of a function; Cleanup does nothing.
type funcStep func(multistep.StateBag) multistep.StepAction

func (f funcStep) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	return f(state)
}
func (f funcStep) Cleanup(multistep.StateBag) {}

func TestCleanupContext(t *testing.T) {
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) > amiconfig.CleanupTimeout || time.Until(deadline) < amiconfig.CleanupTimeout-time.Minute {
		t.Errorf("deadline %v (set %t), want about %s from now", deadline, ok, amiconfig.CleanupTimeout)
	}
	if ctx.Err() != nil {
		t.Errorf("fresh cleanup context is done: %v", ctx.Err())
	}
}

func TestBuildRun(t *testing.T) {
	boom := errors.New("boom")
	made := funcStep(func(state multistep.StateBag) multistep.StepAction {
		StateBuildInfo.Put(state, amiconfig.NewBuildInfo("eu-west-1", types.Image{ImageId: aws.String("ami-src")}))
		StateAMIs.Put(state, map[string]string{"eu-west-1": "ami-new"})
		(&packerbuilderdata.GeneratedData{State: state}).Put("SourceAMI", "ami-src")
		return multistep.ActionContinue
	})
	tests := []struct {
		name     string
		steps    []multistep.Step
		wantErr  error
		wantAMIs map[string]string
	}{
		{name: "AMI made", steps: []multistep.Step{made}, wantAMIs: map[string]string{"eu-west-1": "ami-new"}},
		{name: "no AMI", steps: []multistep.Step{funcStep(func(multistep.StateBag) multistep.StepAction { return multistep.ActionContinue })}},
		{name: "halted", steps: []multistep.Step{made, funcStep(func(state multistep.StateBag) multistep.StepAction {
			return Halt(state, UI(state), boom)
		})}, wantErr: boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ui := &packersdk.MockUi{}
			comm := &communicator.Config{Type: "none"}
			var gotData *packerbuilderdata.GeneratedData
			b := Build{BuilderID: "test.builder", UI: ui, Comm: comm}
			state, art, err := b.Run(context.Background(), func(gd *packerbuilderdata.GeneratedData) []multistep.Step {
				gotData = gd
				return tc.steps
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run error = %v, want %v", err, tc.wantErr)
			}
			if u, _ := StateUI.Get(state); u != ui {
				t.Error("UI not in state")
			}
			if c, _ := StateCommConfig.Get(state); c != comm {
				t.Error("communicator configuration not in state")
			}
			if gotData == nil || gotData.State != state {
				t.Error("steps did not get the generated data of the run's state")
			}
			if tc.wantAMIs == nil || tc.wantErr != nil {
				if art != nil {
					t.Errorf("artifact = %v, want none", art)
				}
				return
			}
			if art == nil || !maps.Equal(art.Amis, tc.wantAMIs) || art.BuilderId() != "test.builder" || art.SourceAMI != "ami-src" {
				t.Fatalf("artifact = %+v", art)
			}
			if gd, ok := art.State("generated_data").(map[string]any); !ok || gd["SourceAMI"] != "ami-src" {
				t.Errorf("artifact generated_data = %#v", art.State("generated_data"))
			}
			if gd, ok := StateGeneratedData.Get(state); !ok || gd["SourceAMI"] != "ami-src" {
				t.Errorf("StateGeneratedData = %#v", gd)
			}
		})
	}
}
