//go:build unix

package distribute

import (
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/secret/secrettest"
)

// TestConfigRedaction checks that no secret of the post-processor's
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
	c.Regions = []string{"eu-central-1"}
	c.TargetAccounts = []TargetAccountConfig{{AccountID: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/publisher", ExternalID: secrettest.ExternalID}}
	c.ctx.UserVariables = map[string]string{secrettest.UserVariableName: secrettest.UserVariable}
	wants := []string{"eu-west-1", "eu-central-1", secrettest.UserVariableName}
	secrettest.CheckRedacted(t, c, secrettest.Secrets, wants)
}
