//go:generate packer-sdc mapstructure-to-hcl2 -type SessionManagerConfig
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"fmt"
	"time"
)

// SSHInterfaceSessionManager is the ssh_interface value that reaches the
// build instance through AWS Systems Manager Session Manager.
const SSHInterfaceSessionManager = "session_manager"

// defaultPauseBeforeSSM is pause_before_ssm when it is not set.
const defaultPauseBeforeSSM = 10 * time.Second

// SessionManagerConfig holds the settings of `ssh_interface =
// "session_manager"`: the SSH communicator reaches the build instance
// through an AWS Systems Manager Session Manager port-forwarding session
// instead of a network connection, so the instance needs neither an
// inbound rule nor a public address. The temporary security group is
// created without inbound rules.
//
// The machine running Packer needs AWS's Session Manager plugin
// (`session-manager-plugin`) on its PATH; the build fails before anything
// is launched when it is missing. The build instance needs a running SSM
// agent (Amazon Linux, Ubuntu and Windows AMIs from AWS have one) and an
// instance profile, `iam_instance_profile`, whose role lets the agent
// register with Systems Manager (for example with the AWS managed policy
// `AmazonSSMManagedInstanceCore`). The caller needs `ssm:StartSession` and
// `ssm:TerminateSession` (see example/iam). After the instance runs and
// `pause_before_ssm` has passed, the builder starts a session with the
// document `AWS-StartPortForwardingSession` to the communicator port
// (`ssh_port`, 22 by default) and connects to the session's local port on
// 127.0.0.1. The session is terminated and the plugin stopped when the
// build ends, whatever its outcome. Only the SSH communicator works over
// Session Manager.
type SessionManagerConfig struct {
	// How long to wait after the build instance is running before the
	// Session Manager session is started, as a duration such as `5s` or
	// `1m30s`, so that the instance's SSM agent has time to register.
	// Unset (or zero) means 10 seconds. Only used with
	// `ssh_interface = "session_manager"`.
	PauseBeforeSSM time.Duration `mapstructure:"pause_before_ssm" required:"false"`
	// The local port, on 127.0.0.1, where the session can be reached. Unset
	// (or zero) picks a free port. Only used with
	// `ssh_interface = "session_manager"`.
	SessionManagerPort int `mapstructure:"session_manager_port" required:"false"`
}

// SessionManagerEnabled reports whether the build instance is reached
// through Session Manager: ssh_interface is session_manager and a
// communicator is used.
func (c *RunConfig) SessionManagerEnabled() bool {
	return c.SSHInterface == SSHInterfaceSessionManager && c.Comm.Type != "none"
}

// hasInstanceProfile reports whether the build instance gets an instance
// profile.
func (c *RunConfig) hasInstanceProfile() bool {
	return c.IamInstanceProfile != "" || c.TemporaryIamInstanceProfilePolicyDocument != nil
}

// prepare validates the Session Manager settings of rc (whose
// SessionManagerConfig c is) and fills in defaults.
func (c *SessionManagerConfig) prepare(rc *RunConfig) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.PauseBeforeSSM < 0 {
		add("pause_before_ssm: %s is negative; use a duration such as \"10s\"", c.PauseBeforeSSM)
	}
	if c.PauseBeforeSSM == 0 {
		c.PauseBeforeSSM = defaultPauseBeforeSSM
	}
	if c.SessionManagerPort < 0 || c.SessionManagerPort > 65535 {
		add("session_manager_port: %d is out of range; valid are 1 to 65535, or 0 for any free port", c.SessionManagerPort)
	}
	if rc.SSHInterface != SSHInterfaceSessionManager {
		return errs
	}
	if rc.Comm.Type == "winrm" {
		add("ssh_interface: session_manager works only with the \"ssh\" communicator, not with %q", rc.Comm.Type)
	}
	if len(rc.TemporarySGSourceCIDRs) > 0 || rc.TemporarySGSourcePublicIP {
		add("temporary_security_group_source_cidrs, temporary_security_group_source_public_ip: not used with ssh_interface = \"session_manager\", whose temporary security group admits no inbound traffic; remove them")
	}
	if !rc.hasInstanceProfile() && rc.Comm.Type != "none" {
		add("ssh_interface: session_manager needs an instance profile whose role lets the instance's SSM agent register with Systems Manager " +
			"(for example with the AWS managed policy AmazonSSMManagedInstanceCore); set iam_instance_profile, or temporary_iam_instance_profile_policy_document with the ssm and ssmmessages actions that policy grants")
	}
	return errs
}
