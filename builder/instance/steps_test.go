//go:build unix

package instance

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

func TestCheckSourceImage(t *testing.T) {
	img := func(rt types.DeviceType, platform types.PlatformValues, details string) types.Image {
		return types.Image{ImageId: aws.String("ami-12345678"), Name: aws.String("base"), RootDeviceType: rt, Platform: platform, PlatformDetails: aws.String(details)}
	}
	tests := []struct {
		name   string
		img    types.Image
		custom bool
		want   string // "" = accepted
	}{
		{"instance-store linux", img(types.DeviceTypeInstanceStore, "", "Linux/UNIX"), false, ""},
		{"ebs on AWS", img(types.DeviceTypeEbs, "", "Linux/UNIX"), false, "needs an instance-store source AMI"},
		{"ebs against a local emulator", img(types.DeviceTypeEbs, "", "Linux/UNIX"), true, ""},
		{"windows platform", img(types.DeviceTypeInstanceStore, types.PlatformValuesWindows, ""), true, "Windows instance-store AMIs cannot be created"},
		{"windows details", img(types.DeviceTypeInstanceStore, "", "Windows with SQL Server Standard"), false, "Windows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSourceImage(tc.img, tc.custom)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestStepCheckSourceImageEndpoints checks that an EBS-backed source AMI is
// refused behind a custom endpoint of real AWS, and accepted with a warning
// only with local_emulator and a loopback endpoint.
func TestStepCheckSourceImageEndpoints(t *testing.T) {
	ebsImage := types.Image{ImageId: aws.String("ami-12345678"), Name: aws.String("base"), RootDeviceType: types.DeviceTypeEbs}
	tests := []struct {
		name     string
		endpoint string
		local    bool
		want     string // "" = accepted
	}{
		{"AWS", "", false, "needs an instance-store source AMI"},
		{"VPC endpoint", vpcEndpoint, false, "needs an instance-store source AMI"},
		{"loopback endpoint without the opt-in", "http://127.0.0.1:1", false, "needs an instance-store source AMI"},
		{"local emulator with a VPC endpoint", vpcEndpoint, true, "needs an instance-store source AMI"},
		{"local emulator", "http://127.0.0.1:1", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := testState(t, tc.endpoint)
			amibuild.StateSourceImage.Put(state, ebsImage)
			action := (&stepCheckSourceImage{LocalEmulator: tc.local}).Run(context.Background(), state)
			err, _ := amibuild.StateError.Get(state)
			switch {
			case tc.want == "" && action != multistep.ActionContinue:
				t.Errorf("halted: %v", err)
			case tc.want != "" && (action != multistep.ActionHalt || err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("action %v, err %v; want a halt mentioning %q", action, err, tc.want)
			}
		})
	}
}

func testState(t *testing.T, endpoint string) multistep.StateBag {
	t.Helper()
	state := new(multistep.BasicStateBag)
	amibuild.StateUI.Put(state, &packersdk.BasicUi{Writer: io.Discard, ErrorWriter: io.Discard, PB: &packersdk.NoopProgressTracker{}})
	cfg := awscfg.Config{Region: "us-east-1", AccessKey: "AKIAEXAMPLE", SecretKey: "secret"}
	if endpoint != "" {
		cfg.Endpoints = awscfg.Endpoints{EC2: endpoint, S3: endpoint, STS: endpoint}
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(k, "")
	}
	sess, err := awscfg.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	amibuild.StateSession.Put(state, sess)
	return state
}

func TestStepPrepareCerts(t *testing.T) {
	dir := t.TempDir()
	ec2Cert, _ := writePEM(t, dir, "ec2")
	userCertPath, userKeyPath := writePEM(t, dir, "user")
	userCertPEM, err := os.ReadFile(userCertPath)
	if err != nil {
		t.Fatal(err)
	}
	userKey, err := bundle.LoadPrivateKey(userKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		step      stepPrepareCerts
		endpoint  string
		wantErr   string
		generated bool
		standIn   bool
		written   bool
		// fromInstance: no EC2 certificate yet; stepFetchEC2Cert reads it
		// on the instance.
		fromInstance bool
	}{
		{name: "given files", step: stepPrepareCerts{UserCertPEM: userCertPEM, UserKey: userKey, EC2CertPath: ec2Cert}},
		{name: "generated and discarded", step: stepPrepareCerts{EC2CertPath: ec2Cert}, generated: true},
		{name: "generated and written", step: stepPrepareCerts{EC2CertPath: ec2Cert, GeneratedDir: filepath.Join(dir, "keys", "new")}, generated: true, written: true},
		{name: "stand-in with a local emulator", step: stepPrepareCerts{LocalEmulator: true}, endpoint: "http://127.0.0.1:1", generated: true, standIn: true},
		{name: "no EC2 certificate on AWS", step: stepPrepareCerts{}, generated: true, fromInstance: true},
		{name: "no EC2 certificate with a VPC endpoint", step: stepPrepareCerts{}, endpoint: vpcEndpoint, generated: true, fromInstance: true},
		{name: "no EC2 certificate with a loopback endpoint, no opt-in", step: stepPrepareCerts{}, endpoint: "http://127.0.0.1:1", generated: true, fromInstance: true},
		{name: "local emulator with a VPC endpoint", step: stepPrepareCerts{LocalEmulator: true}, endpoint: vpcEndpoint, generated: true, fromInstance: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := testState(t, tc.endpoint)
			action := tc.step.Run(context.Background(), state)
			if tc.wantErr != "" {
				err, _ := amibuild.StateError.Get(state)
				if action != multistep.ActionHalt || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("action %v, err %v; want a halt mentioning %q", action, err, tc.wantErr)
				}
				return
			}
			if action != multistep.ActionContinue {
				err, _ := amibuild.StateError.Get(state)
				t.Fatalf("halted: %v", err)
			}
			c, ok := stateCerts.Get(state)
			if !ok || c.UserCert == nil || c.UserKey == nil || (c.EC2Cert == nil) != tc.fromInstance {
				t.Fatalf("certs in state: %+v (EC2 certificate read on the instance later: %t)", c, tc.fromInstance)
			}
			if c.Generated != tc.generated || c.EC2StandIn != tc.standIn {
				t.Errorf("generated=%v standIn=%v, want %v %v", c.Generated, c.EC2StandIn, tc.generated, tc.standIn)
			}
			if !c.Generated && !c.UserKey.Equal(userKey) {
				t.Error("given key not used")
			}
			if tc.written {
				for _, f := range []string{generatedKeyFile, generatedCertFile} {
					st, err := os.Stat(filepath.Join(tc.step.GeneratedDir, f))
					if err != nil {
						t.Fatal(err)
					}
					if st.Mode().Perm() != 0o600 {
						t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
					}
				}
				k, err := bundle.LoadPrivateKey(filepath.Join(tc.step.GeneratedDir, generatedKeyFile))
				if err != nil || !k.Equal(c.UserKey) {
					t.Errorf("written key does not match the one used: %v", err)
				}
				// A second build into the same directory must not
				// overwrite the key of the first.
				state2 := testState(t, tc.endpoint)
				if a := tc.step.Run(context.Background(), state2); a != multistep.ActionHalt {
					t.Error("overwrote existing key files")
				}
			}
		})
	}
}

func TestGenerateCert(t *testing.T) {
	cert, key, err := generateCert("x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if key.N.BitLen() != certKeyBits {
		t.Errorf("key has %d bits", key.N.BitLen())
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
}

func TestStepRegisterImageChecksRenderedDescription(t *testing.T) {
	// An unreachable endpoint: the step must fail before any AWS call.
	state := testState(t, "http://127.0.0.1:1")
	stateBundle.Put(state, &bundled{Location: bundlestore.Location{Bucket: "b", Prefix: "p", Name: "image"}, Manifest: &bundle.Manifest{}})
	amibuild.StateBuildInfo.Put(state, &amiconfig.BuildInfo{BuildRegion: "us-east-1", SourceAMIName: strings.Repeat("n", 251)})
	s := &stepRegisterImage{Region: "us-east-1", Name: "web", Description: "from {{ .SourceAMIName }}", Ctx: interpolate.Context{Funcs: amiconfig.TemplateFuncs}}
	if a := s.Run(context.Background(), state); a != multistep.ActionHalt {
		t.Fatalf("Run = %v, want halt", a)
	}
	err, _ := amibuild.StateError.Get(state)
	if err == nil || !strings.Contains(err.Error(), "ami_description: 256 characters once rendered; valid is up to 255") {
		t.Errorf("error = %v, want one naming ami_description and its limit", err)
	}
}

// writeProfile writes an AWS shared config file with profile "emu" holding
// body, and points the SDK at it (and at no credentials file).
func writeProfile(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte("[profile emu]\nregion = us-east-1\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", path)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	for _, k := range []string{"AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(k, "")
	}
}

func TestStepPrepareCertsEndpointFromProfile(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		wantErr string
		// noStandIn: the EC2 endpoint is not loopback, so no stand-in is
		// made; the certificate is read on the instance later.
		noStandIn bool
	}{
		{name: "endpoint_url in the profile", profile: "endpoint_url = http://127.0.0.1:1\n"},
		{name: "only an S3 endpoint", profile: "services = emu-s3\n\n[services emu-s3]\ns3 =\n  endpoint_url = http://127.0.0.1:1\n", noStandIn: true},
		{name: "no endpoint", noStandIn: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeProfile(t, tc.profile)
			state := new(multistep.BasicStateBag)
			amibuild.StateUI.Put(state, &packersdk.BasicUi{Writer: io.Discard, ErrorWriter: io.Discard, PB: &packersdk.NoopProgressTracker{}})
			sess, err := awscfg.New(context.Background(), awscfg.Config{Profile: "emu", AccessKey: "AKIAEXAMPLE", SecretKey: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			amibuild.StateSession.Put(state, sess)
			action := (&stepPrepareCerts{LocalEmulator: true}).Run(context.Background(), state)
			err, _ = amibuild.StateError.Get(state)
			if tc.wantErr != "" {
				if action != multistep.ActionHalt || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("action %v, err %v; want a halt mentioning %q", action, err, tc.wantErr)
				}
				return
			}
			if action != multistep.ActionContinue {
				t.Fatalf("halted: %v", err)
			}
			c, _ := stateCerts.Get(state)
			if tc.noStandIn {
				if c == nil || c.EC2Cert != nil || c.EC2StandIn {
					t.Errorf("certs %+v; want no EC2 certificate yet and no stand-in", c)
				}
				return
			}
			if c == nil || !c.EC2StandIn {
				t.Errorf("certs %+v; want a stand-in EC2 certificate", c)
			}
		})
	}
}
