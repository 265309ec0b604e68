package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// ec2CertFile returns the name of Amazon's EC2 certificate for region in
// Amazon's EC2 AMI tools: GovCloud and the China regions have their own.
func ec2CertFile(region string) string {
	switch {
	case strings.HasPrefix(region, "us-gov-"):
		return "cert-ec2-gov.pem"
	case strings.HasPrefix(region, "cn-"):
		return "cert-ec2-cn-north-1.pem"
	}
	return "cert-ec2.pem"
}

// ec2CertScript prints the certificate named by its argument from where
// Amazon's EC2 AMI tools keep it, below the tools' home: $EC2_AMITOOL_HOME,
// the RPM's /opt/aws/amitools/ec2, or a zip unpacked under /usr/local/ec2
// as AWS's instructions do.
const ec2CertScript = `# Print Amazon's EC2 certificate from the EC2 AMI tools on this machine.
name=%s
for home in "${EC2_AMITOOL_HOME:-}" /opt/aws/amitools/ec2 /usr/local/ec2/ec2-ami-tools-*; do
	f="$home/etc/ec2/amitools/$name"
	if [ -n "$home" ] && [ -r "$f" ]; then
		cat "$f"
		exit 0
	fi
done
echo "$name not found in \$EC2_AMITOOL_HOME, /opt/aws/amitools/ec2 or /usr/local/ec2/ec2-ami-tools-*" >&2
exit 3
`

// maxCertSize bounds what is read of the certificate.
const maxCertSize = 64 << 10

// stepFetchEC2Cert reads Amazon's EC2 certificate from Amazon's EC2 AMI
// tools on the build instance when ec2_cert_path is not set, as
// HashiCorp's amazon-instance templates expect: their provisioners install
// the tools, whose bundle commands use that certificate. The certificate
// is public; the script that prints it is sent on standard input, and
// nothing secret goes to the instance. It runs after provisioning.
//
// State used: stateComm, stateCerts, amibuild.StateUI.
// State produced: stateCerts (EC2Cert filled in).
type stepFetchEC2Cert struct {
	// Region is the build region, which selects the certificate.
	Region string
}

// Run implements multistep.Step.
func (s *stepFetchEC2Cert) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cs, ok := stateCerts.Get(state)
	if !ok || cs == nil {
		return amibuild.Halt(state, amibuild.UI(state), errors.New("internal error: no certificates in the build state"))
	}
	if cs.EC2Cert != nil {
		return multistep.ActionContinue
	}
	u := amibuild.UI(state)
	comm, ok := stateComm.Get(state)
	if !ok || comm == nil {
		return amibuild.Halt(state, u, errors.New("internal error: no communicator in the build state"))
	}
	name := ec2CertFile(s.Region)
	u.Sayf("Reading Amazon's EC2 certificate %s from the EC2 AMI tools on the instance (ec2_cert_path is not set)...", name)
	pemBytes, err := runForOutput(ctx, comm, fmt.Sprintf(ec2CertScript, name))
	if err != nil {
		return amibuild.Halt(state, u, fmt.Errorf("ec2_cert_path: not set, and Amazon's EC2 certificate could not be read on the build instance: %w; install Amazon's EC2 AMI tools with a provisioner, or set ec2_cert_path to %s", err, name))
	}
	cert, err := bundle.ParseCertificatePEM(pemBytes)
	if err != nil {
		return amibuild.Halt(state, u, fmt.Errorf("ec2_cert_path: not set, and the %s on the build instance is not a certificate: %w", name, err))
	}
	cs.EC2Cert = cert
	stateCerts.Put(state, cs)
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; nothing is created.
func (s *stepFetchEC2Cert) Cleanup(multistep.StateBag) {}

// runForOutput runs script with sh on the instance and returns its
// standard output, at most maxCertSize bytes.
func runForOutput(ctx context.Context, comm packersdk.Communicator, script string) ([]byte, error) {
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxCertSize, 4<<10
	cmd := &packersdk.RemoteCmd{Command: "sh -s", Stdin: strings.NewReader(script), Stdout: &stdout, Stderr: &stderr}
	if err := comm.Start(ctx, cmd); err != nil {
		return nil, fmt.Errorf("start sh: %w", err)
	}
	if status := cmd.Wait(); status != 0 {
		return nil, fmt.Errorf("exit status %d: %s", status, strings.TrimSpace(stderr.String()))
	}
	if stdout.over {
		return nil, fmt.Errorf("more than %d bytes of output", maxCertSize)
	}
	return stdout.Bytes(), nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room < len(p) {
		b.over = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

var _ io.Writer = (*limitedBuffer)(nil)
