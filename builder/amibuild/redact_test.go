//go:build unix

package amibuild

import (
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/secret/secrettest"
)

func redactTestAccess() amiconfig.AccessConfig {
	return amiconfig.AccessConfig{
		AccessKey:         "AKIAIOSFODNN7EXAMPLE",
		SecretKey:         secrettest.SecretKey,
		Token:             secrettest.SessionToken,
		RawRegion:         "eu-west-1",
		CustomEndpointEC2: "https://vpce-1.ec2.eu-west-1.vpce.amazonaws.com",
		AssumeRole: amiconfig.AssumeRoleConfig{
			RoleARN:    "arn:aws:iam::123456789012:role/build",
			ExternalID: secrettest.ExternalID,
		},
	}
}

// TestAccessConfigRedaction checks that the secret key, the session token
// and the external ID never print, however the configuration is printed.
func TestAccessConfigRedaction(t *testing.T) {
	c := redactTestAccess()
	wants := []string{"eu-west-1", "AKIAIOSFODNN7EXAMPLE", "vpce-1.ec2", "arn:aws:iam::123456789012:role/build"}
	secrettest.CheckRedacted(t, c, secrettest.Secrets, wants)
	secrettest.CheckRedacted(t, c.AssumeRole, secrettest.Secrets, []string{"arn:aws:iam::123456789012:role/build"})
}

// TestRunConfigRedaction checks that the communicator's passwords and
// private key never print with the run configuration.
func TestRunConfigRedaction(t *testing.T) {
	c := RunConfig{InstanceType: "t3.micro", SubnetID: "subnet-0123456789abcdef0"}
	secrettest.FillCommunicator(&c.Comm)
	wants := []string{"t3.micro", "subnet-0123456789abcdef0", "admin", "bastion.example.com", "/keys/id_ed25519"}
	secrettest.CheckRedacted(t, c, secrettest.Secrets, wants)
}
