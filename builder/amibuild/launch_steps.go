package amibuild

import (
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// LaunchInput is what LaunchSteps needs beyond the run configuration.
type LaunchInput struct {
	// Region is the build region.
	Region string
	// Debug is Packer's -debug; the temporary private key is then written
	// to DebugKeyPath.
	Debug        bool
	DebugKeyPath string
	// Wait bounds the waits for running and terminated.
	Wait instance.WaitOptions
	// Ctx renders run_tags and run_volume_tags with the build data.
	Ctx interpolate.Context
	// Encrypt, when set, launches the instance with every EBS volume
	// encrypted (encrypt_boot).
	Encrypt *LaunchEncryption
	// NoEphemeral leaves out the default instance store volumes
	// (no_ephemeral).
	NoEphemeral bool
}

// LaunchSteps returns the steps every builder runs to get a provisioned
// build instance, in order: the check for the Session Manager plugin, the
// network, the temporary key pair and security group, the instance profile
// (checked, or made for the build), the instance, the Windows password
// (WinRM without winrm_password), the Session Manager session, the
// connection, the provisioners, and the removal of temporary SSH keys from
// the instance. Each step cleans up what it made.
func (c *RunConfig) LaunchSteps(in LaunchInput) []multistep.Step {
	connect := &communicator.StepConnect{
		Config:      &c.Comm,
		Host:        CommHost(c.Comm.Host(), c.SSHInterface),
		SSHConfig:   c.Comm.SSHConfigFunc(),
		WinRMConfig: c.winRMConfig,
	}
	if c.SessionManagerEnabled() {
		connect.SSHPort = SessionPort
	}
	return []multistep.Step{
		&StepFindSessionManagerPlugin{Enabled: c.SessionManagerEnabled()},
		&StepSelectNetwork{Region: in.Region, Config: c},
		&StepCreateKeyPair{
			Region:       in.Region,
			Comm:         &c.Comm,
			Debug:        in.Debug,
			DebugKeyPath: in.DebugKeyPath,
		},
		&StepCreateSecurityGroup{
			Region:              in.Region,
			Comm:                &c.Comm,
			SecurityGroupIDs:    c.SecurityGroupIDs,
			VpcID:               c.VpcID,
			SubnetID:            c.SubnetID,
			SourceCIDRs:         c.TemporarySGSourceCIDRs,
			NoIngress:           c.SessionManagerEnabled(),
			SecurityGroupFilter: ec2Filters(c.SecurityGroupFilter.Filters),
			SourcePublicIP:      c.TemporarySGSourcePublicIP,
			PublicIPURL:         c.TemporarySGSourcePublicIPURL,
		},
		&StepIAMInstanceProfile{
			Region: in.Region,
			Config: c,
			Ctx:    in.Ctx,
		},
		&StepRunInstance{
			Region:      in.Region,
			Config:      c,
			Wait:        in.Wait,
			Ctx:         in.Ctx,
			Encrypt:     in.Encrypt,
			NoEphemeral: in.NoEphemeral,
		},
		&StepGetPassword{
			Region:  in.Region,
			Comm:    &c.Comm,
			Timeout: c.WindowsPasswordTimeout,
			Wait:    in.Wait,
		},
		&StepStartSessionManager{
			Region:     in.Region,
			Enabled:    c.SessionManagerEnabled(),
			Pause:      c.PauseBeforeSSM,
			LocalPort:  c.SessionManagerPort,
			RemotePort: c.Comm.Port(),
		},
		connect,
		&commonsteps.StepProvision{},
		&commonsteps.StepCleanupTempKeys{Comm: &c.Comm},
	}
}

// DebugKeyPath is where -debug writes the temporary private key of the
// named build.
func DebugKeyPath(buildName string) string { return fmt.Sprintf("ec2_%s.pem", buildName) }

// winRMConfig gives StepConnect the WinRM credentials of the template.
func (c *RunConfig) winRMConfig(multistep.StateBag) (*communicator.WinRMConfig, error) {
	return &communicator.WinRMConfig{Username: c.Comm.WinRMUser, Password: c.Comm.WinRMPassword}, nil
}
