//go:build unix

package amibuild

import (
	"strings"
	"testing"
	"time"
)

func TestSessionManagerConfig(t *testing.T) {
	ssm := func(more map[string]any) map[string]any {
		m := map[string]any{"ssh_interface": "session_manager", "iam_instance_profile": "SSMInstanceProfile"}
		for k, v := range more {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name        string
		set         map[string]any // a nil value deletes the key
		wantErr     []string
		wantEnabled bool
		wantPause   time.Duration
		wantPort    int
	}{
		{name: "defaults", set: ssm(nil), wantEnabled: true, wantPause: 10 * time.Second},
		{name: "pause and port", set: ssm(map[string]any{"pause_before_ssm": "1m30s", "session_manager_port": 8022}),
			wantEnabled: true, wantPause: 90 * time.Second, wantPort: 8022},
		{name: "not used", set: map[string]any{"session_manager_port": 8022, "pause_before_ssm": "5s"}, wantPause: 5 * time.Second, wantPort: 8022},
		{name: "no communicator", set: ssm(map[string]any{"communicator": "none", "ssh_username": nil}), wantPause: 10 * time.Second},
		{name: "no instance profile", set: ssm(map[string]any{"iam_instance_profile": nil}),
			wantErr: []string{"ssh_interface: session_manager needs an instance profile", "set iam_instance_profile"}},
		{name: "winrm", set: ssm(map[string]any{"communicator": "winrm", "winrm_username": "Administrator", "ssh_username": nil}),
			wantErr: []string{`ssh_interface: session_manager works only with the "ssh" communicator`}},
		{name: "port out of range", set: ssm(map[string]any{"session_manager_port": 70000}),
			wantErr: []string{"session_manager_port: 70000 is out of range; valid are 1 to 65535, or 0 for any free port"}},
		{name: "negative pause", set: ssm(map[string]any{"pause_before_ssm": "-1s"}),
			wantErr: []string{"pause_before_ssm: -1s is negative"}},
		{name: "unknown interface", set: map[string]any{"ssh_interface": "ssm"},
			wantErr: []string{`ssh_interface: "ssm" is unknown; valid are public_ip, private_ip, public_dns, private_dns and session_manager`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				if v == nil {
					delete(raw, k)
					continue
				}
				raw[k] = v
			}
			c, errs := prepareRaw(t, raw)
			got := joinErrs(errs)
			if len(tc.wantErr) == 0 {
				if len(errs) > 0 {
					t.Fatalf("Prepare: %s", got)
				}
				if c.SessionManagerEnabled() != tc.wantEnabled || c.PauseBeforeSSM != tc.wantPause || c.SessionManagerPort != tc.wantPort {
					t.Errorf("enabled %v, pause %s, port %d; want %v, %s, %d", c.SessionManagerEnabled(), c.PauseBeforeSSM, c.SessionManagerPort,
						tc.wantEnabled, tc.wantPause, tc.wantPort)
				}
				return
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(got, w) {
					t.Errorf("errors do not mention %q; got:\n%s", w, got)
				}
			}
		})
	}
}
