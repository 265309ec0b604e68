//go:build unix

package ebs_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestE2EInstanceSettings builds with HashiCorp's less common instance
// settings and checks the RunInstances request (moto keeps few of them),
// and disable_stop_instance: the last provisioner shuts the instance down
// (here: asks EC2 to stop it, as an operating-system shutdown would), and
// the builder waits for it instead of stopping it.
func TestE2EInstanceSettings(t *testing.T) {
	e := newE2EEnv(t)
	key, _ := awstest.TestCredentials()
	// The "instance" is this machine; its shutdown is a StopInstances call
	// straight to the emulator, not through the proxy.
	shutdown := fmt.Sprintf(`curl -sSf -o /dev/null -H 'Authorization: AWS4-HMAC-SHA256 Credential=%s/20260101/%s/ec2/aws4_request, SignedHeaders=host, Signature=0' -d "Action=StopInstances&Version=2016-11-15&InstanceId.1=${build.ID}" %s`,
		key, e2eRegion, e.moto.Endpoint)
	const license = "arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123456789abcdef0123456789abcdef"
	tpl := e.template(tmpl{
		AMIName: "e2e-settings-{{timestamp}}",
		Source: fmt.Sprintf(`
  enable_unlimited_credits        = true
  shutdown_behavior               = "stop"
  disable_stop_instance           = true
  capacity_reservation_preference = "none"
  enable_nitro_enclave            = true
  no_ephemeral                    = true
  placement {
    tenancy = "dedicated"
  }
  license_specifications {
    license_configuration_request {
      license_configuration_arn = %q
    }
  }`, license),
		Provision: []string{shutdown},
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	if ami := artifactAMI(t, res); ami == "" {
		t.Fatal("no AMI")
	}
	runs := e.proxy.CallsFor("ec2", "RunInstances")
	if len(runs) != 1 {
		t.Fatalf("RunInstances calls = %d", len(runs))
	}
	p := runs[0].Params
	for k, want := range map[string]string{
		"CreditSpecification.CpuCredits":                                 "unlimited",
		"InstanceInitiatedShutdownBehavior":                              "stop",
		"Placement.Tenancy":                                              "dedicated",
		"CapacityReservationSpecification.CapacityReservationPreference": "none",
		"EnclaveOptions.Enabled":                                         "true",
		"LicenseSpecification.1.LicenseConfigurationArn":                 license,
	} {
		if got := p.Get(k); got != want {
			t.Errorf("RunInstances %s = %q, want %q", k, got, want)
		}
	}
	var suppressed []string
	for k := range p {
		if strings.HasPrefix(k, "BlockDeviceMapping.") && strings.HasSuffix(k, ".NoDevice") {
			suppressed = append(suppressed, p.Get(strings.TrimSuffix(k, ".NoDevice")+".DeviceName"))
		}
	}
	if len(suppressed) != 26 {
		t.Errorf("no_ephemeral suppressed %d devices (%v), want xvdca to xvdcz", len(suppressed), suppressed)
	}
	if n := len(e.proxy.CallsFor("ec2", "StopInstances")); n != 0 {
		t.Errorf("the builder called StopInstances %d times despite disable_stop_instance", n)
	}
	if !strings.Contains(res.Output(), "to stop by itself") {
		t.Errorf("the output does not say the builder waits for the instance to stop")
	}
}
