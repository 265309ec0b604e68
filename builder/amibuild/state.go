package amibuild

import (
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// Key is a typed state bag key: Put and Get check the value's type, so no
// step asserts a type on a raw state value.
type Key[T any] struct{ name string }

// NewKey returns the typed key for the state bag entry name. Builders use
// it for their own state; the keys both builders share are below.
func NewKey[T any](name string) Key[T] { return Key[T]{name} }

// Name returns the state bag key.
func (k Key[T]) Name() string { return k.name }

// Put stores v under the key.
func (k Key[T]) Put(state multistep.StateBag, v T) { state.Put(k.name, v) }

// Get returns the value under the key and whether it is present with the
// right type.
func (k Key[T]) Get(state multistep.StateBag) (T, bool) {
	v, ok := state.GetOk(k.name)
	if !ok {
		var zero T
		return zero, false
	}
	t, ok := v.(T)
	return t, ok
}

// Remove deletes the key.
func (k Key[T]) Remove(state multistep.StateBag) { state.Remove(k.name) }

// State keys. The first group is fixed by Packer and its SDK; the others
// are the builders' own.
var (
	// StateUI is the Packer UI ("ui"); set by the builder's Run.
	StateUI = Key[packersdk.Ui]{"ui"}
	// StateHook is the Packer hook ("hook"); set by the builder's Run.
	StateHook = Key[packersdk.Hook]{"hook"}
	// StateError is the error that halted the run ("error").
	StateError = Key[error]{"error"}
	// StateInstanceID is the build instance's ID ("instance_id"), which
	// Packer exposes to provisioners as the build ID.
	StateInstanceID = Key[string]{"instance_id"}
	// StateCommConfig is the communicator configuration
	// ("communicator_config") that Packer exposes to provisioners.
	StateCommConfig = Key[*communicator.Config]{"communicator_config"}

	// StateGeneratedData is the data the build exposes to provisioners and
	// post-processors ("generated_data", fixed by Packer's
	// packerbuilderdata), by the names in GeneratedDataNames.
	StateGeneratedData = Key[map[string]any]{"generated_data"}

	// StateSession is the AWS session of the build.
	StateSession = Key[*awscfg.Session]{"ami_session"}
	// StateAccountID is the AWS account the build runs in, when known.
	StateAccountID = Key[string]{"ami_account_id"}
	// StateSourceImage is the source AMI.
	StateSourceImage = Key[types.Image]{"ami_source_image"}
	// StateBuildInfo is the data build-time templates are rendered with.
	StateBuildInfo = Key[*amiconfig.BuildInfo]{"ami_build_info"}
	// StateNetwork is where the build instance runs: VPC, subnet and zone
	// (empty fields mean AWS's defaults).
	StateNetwork = Key[instance.SelectNetworkOutput]{"ami_network"}
	// StateKeyPairName is the EC2 key pair the instance is launched with.
	StateKeyPairName = Key[string]{"ami_key_pair_name"}
	// StateSecurityGroupIDs are the security groups of the instance.
	StateSecurityGroupIDs = Key[[]string]{"ami_security_group_ids"}
	// StateInstance is the build instance as last described.
	StateInstance = Key[types.Instance]{"ami_instance"}
	// StateReleaseInstance, put by StepRunInstance for an on-demand
	// instance, starts terminating the build instance before the build
	// ends, for a builder that no longer needs it; the instance's Cleanup
	// then waits for that termination instead of starting one.
	StateReleaseInstance = Key[func()]{"ami_release_instance"}
	// StateImageID is the ID of the AMI the build created.
	StateImageID = Key[string]{"ami_image_id"}
	// StateImage is the AMI the build created as described when it became
	// available, when the step that made it has that description.
	StateImage = Key[types.Image]{"ami_image"}
	// StateSnapshotIDs are the snapshots of the AMI the build created.
	StateSnapshotIDs = Key[[]string]{"ami_snapshot_ids"}
	// StateAMIs maps each region to the AMI the build made there.
	StateAMIs = Key[map[string]string]{"ami_amis"}
	// StateSessionManagerPlugin is the path of session-manager-plugin.
	StateSessionManagerPlugin = Key[string]{"ami_session_manager_plugin"}
	// StateSessionPort is the local port of the Session Manager session
	// that leads to the build instance.
	StateSessionPort = Key[int]{"ami_session_port"}
)

// Halt records err as the run's error, shows it on the UI and halts the
// run. Every step failure goes through it.
func Halt(state multistep.StateBag, ui packersdk.Ui, err error) multistep.StepAction {
	StateError.Put(state, err)
	ui.Error(err.Error())
	return multistep.ActionHalt
}

// RolledBack reports whether the run was cancelled or halted, which is when
// steps undo what they made.
func RolledBack(state multistep.StateBag) bool {
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	return cancelled || halted
}
