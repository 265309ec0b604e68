//go:build unix

package ebs

import (
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclparse"

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
	c.InstanceType = "t3.micro"
	secrettest.FillCommunicator(&c.Comm)
	c.AMIName = "app-image"
	c.ctx.UserVariables = map[string]string{secrettest.UserVariableName: secrettest.UserVariable}
	wants := []string{"eu-west-1", "t3.micro", "app-image", "admin", secrettest.UserVariableName}
	secrettest.CheckRedacted(t, c, secrettest.Secrets, wants)
}

// TestSecretOptionsDecode checks that the secret options decode from HCL
// and from a JSON template's map as the strings they are.
func TestSecretOptionsDecode(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	src := `
region        = "us-east-1"
source_ami    = "ami-0123456789abcdef0"
instance_type = "t3.micro"
ami_name      = "app"
ssh_username  = "admin"
access_key    = "AKIAIOSFODNN7EXAMPLE"
secret_key    = "` + secrettest.SecretKey + `"
token         = "` + secrettest.SessionToken + `"
assume_role {
  role_arn    = "arn:aws:iam::123456789012:role/build"
  external_id = "` + secrettest.ExternalID + `"
}
`
	raw := validRaw()
	raw["access_key"] = "AKIAIOSFODNN7EXAMPLE"
	raw["secret_key"] = secrettest.SecretKey
	raw["token"] = secrettest.SessionToken
	raw["assume_role"] = map[string]any{"role_arn": "arn:aws:iam::123456789012:role/build", "external_id": secrettest.ExternalID}

	for _, tc := range []struct {
		name string
		raw  func(t *testing.T, b *Builder) any
	}{
		{"hcl", func(t *testing.T, b *Builder) any {
			file, diags := hclparse.NewParser().ParseHCL([]byte(src), "source.pkr.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			val, diags := hcldec.Decode(file.Body, b.ConfigSpec(), nil)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			return val
		}},
		{"map", func(*testing.T, *Builder) any { return raw }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Builder
			if _, _, err := b.Prepare(tc.raw(t, &b)); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			c := b.config
			if c.SecretKey.Reveal() != secrettest.SecretKey || c.Token.Reveal() != secrettest.SessionToken ||
				c.AssumeRole.ExternalID.Reveal() != secrettest.ExternalID {
				t.Errorf("decoded secret_key, token, external_id = %q, %q, %q", c.SecretKey.Reveal(), c.Token.Reveal(), c.AssumeRole.ExternalID.Reveal())
			}
			aws := c.AWSConfig()
			if aws.SecretKey != secrettest.SecretKey || aws.SessionToken != secrettest.SessionToken || aws.AssumeRole.ExternalID != secrettest.ExternalID {
				t.Error("the AWS configuration does not carry the secrets")
			}
		})
	}
}
