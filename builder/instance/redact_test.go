//go:build unix

package instance

import (
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/secret/secrettest"
)

// TestConfigRedaction checks that no secret of the builder's
// configuration prints, with any verb, by value or by pointer, alone or
// inside another value.
func TestConfigRedaction(t *testing.T) {
	var c Config
	secrettest.FillPackerConfig(&c.PackerConfig)
	c.AccessConfig = amiconfig.AccessConfig{
		AccessKey: "AKIAIOSFODNN7EXAMPLE", SecretKey: secrettest.SecretKey, Token: secrettest.SessionToken,
		RawRegion:  "eu-west-1",
		AssumeRole: amiconfig.AssumeRoleConfig{RoleARN: "arn:aws:iam::123456789012:role/build", ExternalID: secrettest.ExternalID},
	}
	c.InstanceType = "m3.medium"
	secrettest.FillCommunicator(&c.Comm)
	c.S3Bucket = "bundles-bucket"
	c.X509KeyPath = "/keys/x509-key.pem"
	c.ctx.UserVariables = map[string]string{secrettest.UserVariableName: secrettest.UserVariable}
	wants := []string{"eu-west-1", "m3.medium", "bundles-bucket", "/keys/x509-key.pem", secrettest.UserVariableName}
	secrettest.CheckRedacted(t, c, secrettest.Secrets, wants)
}
