package amibuild

import (
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
)

// errNoSession is returned when the builder did not put a session in state.
var errNoSession = errors.New("internal error: no AWS session in the build state")

// Session returns the AWS session in state, or an internal error when the
// builder put none there.
func Session(state multistep.StateBag) (*awscfg.Session, error) {
	sess, ok := StateSession.Get(state)
	if !ok || sess == nil {
		return nil, errNoSession
	}
	return sess, nil
}

// EC2Client returns the EC2 client for region from the session in state.
func EC2Client(state multistep.StateBag, region string) (*ec2.Client, error) {
	sess, err := Session(state)
	if err != nil {
		return nil, err
	}
	return sess.EC2(region), nil
}

// UI returns the UI in state, or a UI that discards everything.
func UI(state multistep.StateBag) packersdk.Ui {
	if u, ok := StateUI.Get(state); ok && u != nil {
		return u
	}
	return &packersdk.BasicUi{Writer: io.Discard, ErrorWriter: io.Discard, PB: &packersdk.NoopProgressTracker{}}
}

// errNoInstance is returned when no step put a build instance in state.
var errNoInstance = errors.New("internal error: no build instance in the build state")

// BuildInstance returns the ID of the build instance in state and the EC2
// client of its region, for the steps that act on the instance; an
// internal error when the session or the instance is missing.
func BuildInstance(state multistep.StateBag, region string) (id string, api *ec2.Client, err error) {
	api, err = EC2Client(state, region)
	if err != nil {
		return "", nil, err
	}
	id, ok := StateInstanceID.Get(state)
	if !ok || id == "" {
		return "", nil, errNoInstance
	}
	return id, api, nil
}
