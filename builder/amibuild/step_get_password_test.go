//go:build unix

package amibuild

//lint:file-ignore SA1019 EC2 encrypts Windows passwords with RSA PKCS #1 v1.5, which the test must do too; MockUi.Message is what the step calls

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// transcriptUI records everything said to the user, and passes it on to
// the MockUi (whose Error fields runHalt checks).
type transcriptUI struct {
	*packersdk.MockUi
	mu    sync.Mutex
	lines []string
}

func (u *transcriptUI) add(s string) { u.mu.Lock(); u.lines = append(u.lines, s); u.mu.Unlock() }
func (u *transcriptUI) Say(s string) { u.add(s); u.MockUi.Say(s) }
func (u *transcriptUI) Sayf(f string, a ...any) {
	u.Say(fmt.Sprintf(f, a...))
}
func (u *transcriptUI) Message(s string) { u.add(s); u.MockUi.Message(s) }
func (u *transcriptUI) Error(s string)   { u.add(s); u.MockUi.Error(s) }
func (u *transcriptUI) Errorf(f string, a ...any) {
	u.Error(fmt.Sprintf(f, a...))
}
func (u *transcriptUI) String() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.lines, "\n")
}

// windowsPasswordKey is an RSA key as CreateKeyPair returns it, made once.
var windowsPasswordKey = sync.OnceValues(func() (*rsa.PrivateKey, []byte) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
})

// passwordDataStandIn answers GetPasswordData as EC2 does, with password
// encrypted for pub (no password: empty data, as before Windows set one).
func passwordDataStandIn(t *testing.T, pub *rsa.PublicKey, password string) awstest.FaultFunc {
	t.Helper()
	data := ""
	if password != "" {
		ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, []byte(password))
		if err != nil {
			t.Fatal(err)
		}
		data = base64.StdEncoding.EncodeToString(ct)
	}
	return func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if !awstest.Matches(c, "ec2", "GetPasswordData") {
			return nil
		}
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<GetPasswordDataResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <instanceId>%s</instanceId>
  <timestamp>2024-01-02T03:04:05.000Z</timestamp>
  <passwordData>%s</passwordData>
</GetPasswordDataResponse>`, c.Params.Get("InstanceId"), data)
		return &awstest.Fault{Name: "GetPasswordData stand-in", Status: http.StatusOK, Body: []byte(body)}
	}
}

func TestStepGetPassword(t *testing.T) {
	key, keyPEM := windowsPasswordKey()
	const password = "Gener4ted-Admin-Passw0rd!"
	keyFile := filepath.Join(t.TempDir(), "windows-build.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	quickWait := instance.WaitOptions{MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

	tests := []struct {
		name     string
		comm     communicator.Config
		password string // what EC2 has; "" means none yet
		timeout  time.Duration
		// wantErr are texts the halting error must contain; none means the
		// step continues.
		wantErr   []string
		wantCalls int
		wantPass  string // the communicator's password afterwards
	}{
		{
			name:      "temporary key pair",
			comm:      communicator.Config{Type: "winrm", SSH: communicator.SSH{SSHPrivateKey: keyPEM}},
			password:  password,
			wantCalls: 1, wantPass: password,
		},
		{
			name:      "own key pair and private key file",
			comm:      communicator.Config{Type: "winrm", SSH: communicator.SSH{SSHKeyPairName: "windows-build", SSHPrivateKeyFile: keyFile}},
			password:  password,
			wantCalls: 1, wantPass: password,
		},
		{
			name:      "winrm_password given",
			comm:      communicator.Config{Type: "winrm", WinRM: communicator.WinRM{WinRMPassword: "from-template"}},
			password:  password,
			wantCalls: 0, wantPass: "from-template",
		},
		{
			name:      "ssh",
			comm:      communicator.Config{Type: "ssh", SSH: communicator.SSH{SSHPrivateKey: keyPEM}},
			password:  password,
			wantCalls: 0,
		},
		{
			name:    "no password from EC2",
			comm:    communicator.Config{Type: "winrm", SSH: communicator.SSH{SSHPrivateKey: keyPEM}},
			timeout: 300 * time.Millisecond,
			wantErr: []string{"has no Windows password after", "random Administrator password", "windows_password_timeout", "winrm_password", "user_data"},
		},
		{
			name:    "private key file gone",
			comm:    communicator.Config{Type: "winrm", SSH: communicator.SSH{SSHKeyPairName: "windows-build", SSHPrivateKeyFile: filepath.Join(t.TempDir(), "gone.pem")}},
			wantErr: []string{"ssh_private_key_file", "gone.pem"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			ui := &transcriptUI{MockUi: e.ui}
			StateUI.Put(e.state, ui)
			StateInstanceID.Put(e.state, "i-0123456789abcdef0")
			e.proxy.SetFault(passwordDataStandIn(t, &key.PublicKey, tc.password))
			comm := tc.comm
			timeout := tc.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			step := &StepGetPassword{Region: testRegion, Comm: &comm, Timeout: timeout, Wait: quickWait}
			if len(tc.wantErr) > 0 {
				err := e.runHalt(t, step)
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if comm.WinRMPassword != "" {
					t.Errorf("the communicator got a password after a failure")
				}
			} else {
				e.run(t, step)
				if comm.WinRMPassword != tc.wantPass {
					t.Errorf("communicator password = %q, want %q", comm.WinRMPassword, tc.wantPass)
				}
			}
			step.Cleanup(e.state)

			calls := e.proxy.CallsFor("ec2", "GetPasswordData")
			if tc.wantCalls > 0 && len(calls) != tc.wantCalls || tc.wantCalls == 0 && len(tc.wantErr) == 0 && len(calls) != 0 {
				t.Errorf("GetPasswordData calls = %d, want %d", len(calls), tc.wantCalls)
			}
			for _, c := range calls {
				if got := c.Params.Get("InstanceId"); got != "i-0123456789abcdef0" {
					t.Errorf("GetPasswordData for %q, want the build instance", got)
				}
			}
			if strings.Contains(ui.String(), password) {
				t.Errorf("the UI shows the password:\n%s", ui)
			}
			if tc.wantPass == password && packersdk.LogSecretFilter.FilterString("pw="+password) != "pw=<sensitive>" {
				t.Error("the password is not in Packer's secret filter")
			}
		})
	}
}
