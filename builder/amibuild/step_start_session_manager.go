package amibuild

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/ssmtunnel"
)

// StepStartSessionManager reaches the build instance through Session
// Manager when ssh_interface is session_manager: after Pause, it starts a
// port-forwarding session to the communicator port of the instance and the
// session-manager-plugin that carries it, and tells StepConnect the local
// port. Cleanup stops the plugin and terminates the session, whatever the
// outcome of the run; it runs before the instance is terminated.
//
// State used: StateSession, StateUI, StateInstance,
// StateSessionManagerPlugin.
// State produced: StateSessionPort.
type StepStartSessionManager struct {
	// Region is the build region.
	Region string
	// Enabled is RunConfig.SessionManagerEnabled.
	Enabled bool
	// Pause is pause_before_ssm.
	Pause time.Duration
	// LocalPort is session_manager_port; zero picks a free port.
	LocalPort int
	// RemotePort is the communicator port on the instance.
	RemotePort int

	tunnel *ssmtunnel.Tunnel
}

// Run implements multistep.Step.
func (s *StepStartSessionManager) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if !s.Enabled {
		return multistep.ActionContinue
	}
	u := UI(state)
	sess, err := Session(state)
	if err != nil {
		return Halt(state, u, err)
	}
	inst, ok := StateInstance.Get(state)
	if !ok {
		return Halt(state, u, errNoInstance)
	}
	id := aws.ToString(inst.InstanceId)
	plugin, _ := StateSessionManagerPlugin.Get(state)

	if s.Pause > 0 {
		u.Sayf("Waiting %s before starting the Session Manager session (pause_before_ssm)...", s.Pause)
		t := time.NewTimer(s.Pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Halt(state, u, fmt.Errorf("start a Session Manager session to %s: %w", id, ctx.Err()))
		}
	}
	u.Sayf("Starting a Session Manager session to port %d of %s...", s.RemotePort, id)
	tun, err := ssmtunnel.Start(ctx, sess.SSM(s.Region), &ssmtunnel.StartInput{
		InstanceID: id,
		Port:       s.RemotePort,
		LocalPort:  s.LocalPort,
		Region:     s.Region,
		Profile:    sess.Profile(),
		PluginPath: plugin,
		Output:     logWriter{prefix: ssmtunnel.PluginName + ": "},
	}, func(o *ssmtunnel.Options) { o.Logf = log.Printf })
	if err != nil {
		return Halt(state, u, fmt.Errorf("connect to build instance %s through Session Manager: %w", id, err))
	}
	s.tunnel = tun
	StateSessionPort.Put(state, tun.LocalPort)
	u.Sayf("Session Manager session %s: port %d of %s is reachable on %s", tun.SessionID, s.RemotePort, id, tun.Addr())
	return multistep.ActionContinue
}

// Cleanup stops the plugin and terminates the session, whatever the
// outcome of the run.
func (s *StepStartSessionManager) Cleanup(state multistep.StateBag) {
	if s.tunnel == nil {
		return
	}
	u := UI(state)
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	u.Sayf("Terminating Session Manager session %s...", s.tunnel.SessionID)
	if err := s.tunnel.Close(ctx); err != nil {
		u.Error(fmt.Sprintf("Error ending Session Manager session %s in %s; terminate it by hand (aws ssm terminate-session --session-id %s): %v",
			s.tunnel.SessionID, s.Region, s.tunnel.SessionID, err))
		return
	}
	s.tunnel = nil
}

// logWriter writes each write to Packer's log, with prefix.
type logWriter struct{ prefix string }

func (w logWriter) Write(b []byte) (int, error) {
	log.Printf("%s%s", w.prefix, b)
	return len(b), nil
}
