package amibuild

import (
	"context"
	"errors"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
)

// Build is one run of a builder's steps; the builders' Run methods go
// through it.
type Build struct {
	// BuilderID is the ID of the artifacts the builder makes.
	BuilderID string
	// UI and Hook are the ones Packer passed to the builder's Run.
	UI   packersdk.Ui
	Hook packersdk.Hook
	// Access and AppID open the build's AWS session; without Access the
	// steps run with none (tests of steps that make no AWS call).
	Access *amiconfig.AccessConfig
	AppID  string
	// Comm is the communicator configuration, exposed to provisioners.
	Comm *communicator.Config
	// Packer is the builder's Packer configuration (debug, on-error).
	Packer common.PackerConfig
}

// Run opens the AWS session, puts the UI, hook, session and communicator
// configuration in a fresh state, runs the steps that steps returns (given
// the build's generated data) with Packer's runner, and returns the final
// state. The error is the one that halted the run, or one saying the run
// was cancelled.
//
// The artifact is nil when the run made no AMI; otherwise it has the AMIs
// (StateAMIs), the builder ID, the source AMI and the generated data as
// state "generated_data", and deregisters them with the session's clients
// when it is destroyed.
func (b Build) Run(ctx context.Context, steps func(*packerbuilderdata.GeneratedData) []multistep.Step) (multistep.StateBag, *Artifact, error) {
	var sess *awscfg.Session
	if b.Access != nil {
		var err error
		if sess, err = b.Access.Session(ctx, b.AppID); err != nil {
			return nil, nil, err
		}
	}
	state := new(multistep.BasicStateBag)
	StateUI.Put(state, b.UI)
	StateHook.Put(state, b.Hook)
	StateSession.Put(state, sess)
	StateCommConfig.Put(state, b.Comm)
	generatedData := &packerbuilderdata.GeneratedData{State: state}

	commonsteps.NewRunner(steps(generatedData), b.Packer, b.UI).Run(ctx, state)

	if err, ok := StateError.Get(state); ok && err != nil {
		return state, nil, err
	}
	if _, cancelled := state.GetOk(multistep.StateCancelled); cancelled {
		return state, nil, errors.New("build was cancelled")
	}
	amis, ok := StateAMIs.Get(state)
	if !ok || len(amis) == 0 {
		return state, nil, nil
	}
	art := &Artifact{
		Amis:           amis,
		BuilderIdValue: b.BuilderID,
		StateData:      map[string]any{},
	}
	if gd, ok := StateGeneratedData.Get(state); ok {
		art.StateData[StateGeneratedData.Name()] = gd
	}
	if src, _ := StateBuildInfo.Get(state); src != nil {
		art.SourceAMI = src.SourceAMI
	}
	if sess != nil {
		art.EC2 = amiconfig.EC2Deregister(sess.EC2)
	}
	return state, art, nil
}

// Prepared is a builder's Prepare result from its configuration's: the
// generated data names the build exposes, the warnings and the error.
func Prepared(warnings []string, err error) ([]string, []string, error) {
	if err != nil {
		return nil, warnings, err
	}
	return append([]string(nil), amiconfig.GeneratedDataNames...), warnings, nil
}
