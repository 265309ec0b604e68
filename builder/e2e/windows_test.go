//go:build unix

package e2e

//lint:file-ignore SA1019 EC2 encrypts Windows passwords with RSA PKCS #1 v1.5, which the test must do too

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// winrmRecorder is a loopback HTTP server in place of the instance's WinRM
// service: it records the Authorization header of every request and
// refuses it, so that packer keeps trying until winrm_timeout.
type winrmRecorder struct {
	Port int
	srv  *http.Server
	mu   sync.Mutex
	auth []string
}

func startWinRMRecorder(t *testing.T) *winrmRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &winrmRecorder{Port: ln.Addr().(*net.TCPAddr).Port}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.mu.Unlock()
		http.Error(w, "access denied", http.StatusUnauthorized)
	})}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

// Authorizations returns the Authorization headers received so far.
func (r *winrmRecorder) Authorizations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}

// windowsTemplate is an ami-ebs build with the WinRM communicator and no
// winrm_password, whose WinRM endpoint is the recorder.
func windowsTemplate(keyPair string, winrmPort int, passwordTimeout string) string {
	return fmt.Sprintf(`source "ami-ebs" "win" {
  region        = %q
  instance_type = "m6i.large"
  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  communicator             = "winrm"
  winrm_username           = "Administrator"
  winrm_host               = "127.0.0.1"
  winrm_port               = %d
  winrm_timeout            = "8s"
  temporary_key_pair_name  = %q
  windows_password_timeout = %q
  ami_name                 = %q
}

build {
  sources = ["source.ami-ebs.win"]
}
`, buildRegion, winrmPort, keyPair, passwordTimeout, uniqueName("e2e-win"))
}

// passwordDataStandIn answers GetPasswordData as EC2 does for a Windows
// instance launched with the key pair keyPair: password encrypted with RSA
// PKCS #1 v1.5 for the key pair's public key (which moto gives with
// DescribeKeyPairs), base64-encoded. moto itself has no Windows password
// for the Linux fixture AMI.
func (w *world) passwordDataStandIn(keyPair, password string) awstest.FaultFunc {
	return func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if !awstest.Matches(c, "ec2", "GetPasswordData") {
			return nil
		}
		data, err := w.encryptForKeyPair(c.Region, keyPair, password)
		if err != nil {
			return &awstest.Fault{Name: "GetPasswordData stand-in failed", Code: "StandInFailed", Status: http.StatusInternalServerError, Message: err.Error()}
		}
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<GetPasswordDataResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <instanceId>%s</instanceId>
  <timestamp>%s</timestamp>
  <passwordData>
%s
</passwordData>
</GetPasswordDataResponse>`, c.Params.Get("InstanceId"), time.Now().UTC().Format(time.RFC3339), data)
		return &awstest.Fault{Name: "GetPasswordData stand-in", Status: http.StatusOK, Body: []byte(body)}
	}
}

// encryptForKeyPair encrypts password for the public key of the key pair
// named keyPair in region, as EC2 does for GetPasswordData.
func (w *world) encryptForKeyPair(region, keyPair, password string) (string, error) {
	out, err := w.ec2[region].DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{
		KeyNames: []string{keyPair}, IncludePublicKey: aws.Bool(true),
	})
	if err != nil {
		return "", err
	}
	if len(out.KeyPairs) != 1 {
		return "", fmt.Errorf("%d key pairs named %s", len(out.KeyPairs), keyPair)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(aws.ToString(out.KeyPairs[0].PublicKey)))
	if err != nil {
		return "", fmt.Errorf("public key of %s: %w", keyPair, err)
	}
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return "", errors.New("public key without a crypto key")
	}
	pub, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("key pair %s is %s, not RSA; EC2 would not encrypt a password for it", keyPair, pk.Type())
	}
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, []byte(password))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// TestWindowsPasswordFromEC2 builds with the WinRM communicator and no
// winrm_password: the build reads the password with GetPasswordData (a
// stand-in answers with it encrypted for the temporary key pair, as EC2
// does), decrypts it and logs in with it, and the password reaches neither
// packer's output nor its debug log. The loopback "WinRM service" refuses
// every login, so the build fails at winrm_timeout and must leave nothing.
// Without a password from EC2 the build stops after
// windows_password_timeout, before connecting, naming what to do; Ctrl-C
// during the wait ends it at once. Neither leaves anything.
func TestWindowsPasswordFromEC2(t *testing.T) {
	w := theWorld(t)

	t.Run("password reaches WinRM only", func(t *testing.T) {
		winrm := startWinRMRecorder(t)
		keyPair := uniqueName("e2e-win-key")
		secret := make([]byte, 12)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		password := "Win-" + hex.EncodeToString(secret) + "!"
		basic := base64.StdEncoding.EncodeToString([]byte("Administrator:" + password))
		base := w.baseline(t)
		res := w.run(t, runSpec{
			Template: windowsTemplate(keyPair, winrm.Port, "2m"),
			Fault:    w.passwordDataStandIn(keyPair, password),
		})
		w.scanSecrets(t, res, nil, map[string]string{"Windows password": password, "WinRM basic credentials": basic})
		if res.ExitCode == 0 {
			t.Fatal("packer build succeeded although the WinRM service refused every login")
		}
		out := res.Output()
		mustContain(t, "packer output", out, "Got the Windows Administrator password", "Timeout waiting for WinRM")

		auths := winrm.Authorizations()
		if len(auths) == 0 {
			t.Fatal("packer never connected to the WinRM service")
		}
		for i, a := range auths {
			if a != "Basic "+basic {
				t.Errorf("WinRM request %d authorized with %q, want Administrator and the password from EC2", i, a)
			}
		}

		created := w.proxy.CallsFor("ec2", "CreateKeyPair")
		if len(created) != 1 || created[0].Params.Get("KeyName") != keyPair || created[0].Params.Get("KeyType") != "rsa" {
			t.Errorf("CreateKeyPair calls %v; want one for %s of type rsa", created, keyPair)
		}
		gets := w.proxy.CallsFor("ec2", "GetPasswordData")
		terminated := w.proxy.CallsFor("ec2", "TerminateInstances")
		if len(gets) != 1 || len(terminated) == 0 || gets[0].Params.Get("InstanceId") != terminated[0].Params.Get("InstanceId.1") {
			t.Errorf("GetPasswordData calls %v, TerminateInstances %v; want one, for the build instance", gets, terminated)
		}
		pol, err := awstest.LoadPolicy(filepath.Join("..", "..", "example", "iam", "ami-ebs-policy.json"), nil)
		if err != nil {
			t.Fatal(err)
		}
		denied, _ := pol.Denied(w.proxy.Calls())
		for _, problem := range denied {
			t.Errorf("example/iam/ami-ebs-policy.json: %s", problem)
		}
		w.expectNoLeaks(t, base)
	})

	t.Run("no password from EC2", func(t *testing.T) {
		winrm := startWinRMRecorder(t)
		base := w.baseline(t)
		res := w.run(t, runSpec{Template: windowsTemplate(uniqueName("e2e-win-key"), winrm.Port, "3s")})
		if res.ExitCode == 0 {
			t.Fatal("packer build succeeded without a Windows password")
		}
		out := res.Output()
		mustContain(t, "packer output", out, "has no Windows password after", "random Administrator password",
			"windows_password_timeout", "winrm_password")
		if strings.Contains(out, "Got the Windows Administrator password") {
			t.Error("the build claims to have a password")
		}
		if n := len(winrm.Authorizations()); n != 0 {
			t.Errorf("packer connected to WinRM %d times without a password", n)
		}
		if len(w.proxy.CallsFor("ec2", "GetPasswordData")) == 0 {
			t.Error("GetPasswordData was never called")
		}
		w.expectNoLeaks(t, base)
	})

	t.Run("interrupted while waiting", func(t *testing.T) {
		winrm := startWinRMRecorder(t)
		base := w.baseline(t)
		res := w.run(t, runSpec{
			Template:    windowsTemplate(uniqueName("e2e-win-key"), winrm.Port, "30m"),
			InterruptOn: "Waiting for the Windows Administrator password",
		})
		if !res.Interrupted || res.TimedOut {
			t.Fatalf("interrupted = %t, timed out = %t; want an interrupt that ends the 30m wait", res.Interrupted, res.TimedOut)
		}
		if res.ExitCode == 0 {
			t.Error("an interrupted build exited 0")
		}
		if n := len(winrm.Authorizations()); n != 0 {
			t.Errorf("packer connected to WinRM %d times after the interrupt", n)
		}
		if len(w.proxy.CallsFor("ec2", "TerminateInstances")) == 0 {
			t.Error("the build instance was not terminated after the interrupt")
		}
		w.expectNoLeaks(t, base)
	})
}
