//go:generate packer-sdc mapstructure-to-hcl2 -type AccessConfig,AssumeRoleConfig
//go:generate packer-sdc struct-markdown

package amiconfig

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/amiforge/packer-plugin-ami/builder/secret"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
)

// AccessConfig says how the builder reaches AWS: the region, the credentials
// and the endpoints. Credentials not given here come from the standard AWS
// chain (environment, shared files, SSO, instance or task role).
type AccessConfig struct {
	// The access key used to communicate with AWS. If it is not set here,
	// the standard AWS credential chain is used (environment variables,
	// shared credentials file, SSO, instance or container role).
	AccessKey string `mapstructure:"access_key" required:"false"`
	// The secret key used to communicate with AWS. It is required when
	// `access_key` is set.
	SecretKey secret.String `mapstructure:"secret_key" required:"false"`
	// The session token that goes with temporary static credentials. It is
	// only valid together with `access_key` and `secret_key`.
	Token secret.String `mapstructure:"token" required:"false"`
	// The profile to use from the shared configuration and credentials files.
	// When it is not set, the `AWS_PROFILE` environment variable or the
	// `default` profile is used.
	Profile string `mapstructure:"profile" required:"false"`
	// The path to a shared credentials file to read instead of
	// `~/.aws/credentials`.
	SharedCredentialsFile string `mapstructure:"shared_credentials_file" required:"false"`
	// The AWS region in which the build instance is launched and the AMI is
	// created, for example `us-east-1`. When it is not set, the `AWS_REGION`
	// or `AWS_DEFAULT_REGION` environment variable is used.
	RawRegion string `mapstructure:"region" required:"true"`
	// A role to assume with AWS STS before doing anything else. The
	// credentials found as described above are used to assume it.
	AssumeRole AssumeRoleConfig `mapstructure:"assume_role" required:"false"`
	// The maximum number of attempts the AWS client makes for a retryable
	// request, including the first one. Zero uses the AWS SDK's default.
	MaxRetries int `mapstructure:"max_retries" required:"false"`
	// The retry strategy of the AWS client: `standard` or `adaptive`
	// (client-side rate limiting on throttling). Empty uses `standard`.
	RetryMode string `mapstructure:"retry_mode" required:"false"`
	// The URL of the EC2 API to use instead of the public one, for example a
	// VPC endpoint or a local emulator (`http://127.0.0.1:5000`). When it is
	// not set, `AWS_ENDPOINT_URL_EC2` or `AWS_ENDPOINT_URL` is honoured.
	CustomEndpointEC2 string `mapstructure:"custom_endpoint_ec2" required:"false"`
	// The URL of the S3 API to use instead of the public one. S3 requests to
	// a custom endpoint use path-style addressing. When it is not set,
	// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` is honoured.
	CustomEndpointS3 string `mapstructure:"custom_endpoint_s3" required:"false"`
	// The URL of the STS API to use instead of the public one. When it is not
	// set, `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL` is honoured.
	CustomEndpointSTS string `mapstructure:"custom_endpoint_sts" required:"false"`
	// Skip the STS GetCallerIdentity call that checks the credentials before
	// the build starts. The account ID is then looked up only when needed.
	SkipCredentialValidation bool `mapstructure:"skip_credential_validation" required:"false"`
}

// AssumeRoleConfig describes a role to assume with AWS STS.
type AssumeRoleConfig struct {
	// The ARN of the role to assume, for example
	// `arn:aws:iam::123456789012:role/packer`.
	RoleARN string `mapstructure:"role_arn" required:"true"`
	// The external ID the role's trust policy requires, if any.
	ExternalID secret.String `mapstructure:"external_id" required:"false"`
	// The name of the assumed-role session, shown in CloudTrail. Defaults to
	// a name chosen by the AWS SDK.
	SessionName string `mapstructure:"session_name" required:"false"`
	// How long the assumed-role credentials are valid, from `15m` to `12h`,
	// for example `1h`. Zero uses the AWS default of one hour.
	Duration time.Duration `mapstructure:"duration" required:"false"`
}

// Format, String and GoString print the configuration with its secrets
// redacted (see package secret).
func (c AccessConfig) Format(f fmt.State, verb rune) { secret.Format(f, verb, c) }

// String describes the configuration with its secrets redacted.
func (c AccessConfig) String() string { return secret.Describe(c) }

// GoString describes the configuration with its secrets redacted.
func (c AccessConfig) GoString() string { return secret.GoString(c) }

// Format, String and GoString print the role with its external ID
// redacted.
func (c AssumeRoleConfig) Format(f fmt.State, verb rune) { secret.Format(f, verb, c) }

// String describes the role with its external ID redacted.
func (c AssumeRoleConfig) String() string { return secret.Describe(c) }

// GoString describes the role with its external ID redacted.
func (c AssumeRoleConfig) GoString() string { return secret.GoString(c) }

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
)

// ValidRegion reports whether s is syntactically an AWS region name such as
// "us-east-1" or "us-gov-west-1". It does not check that the region exists.
func ValidRegion(s string) bool { return regionRE.MatchString(s) }

// Region returns the configured region.
func (c *AccessConfig) Region() string { return c.RawRegion }

// Prepare fills defaults from the environment and validates the access
// configuration without any network call.
func (c *AccessConfig) Prepare() []error {
	var errs []error
	if c.RawRegion == "" {
		c.RawRegion = os.Getenv("AWS_REGION")
	}
	if c.RawRegion == "" {
		c.RawRegion = os.Getenv("AWS_DEFAULT_REGION")
	}
	switch {
	case c.RawRegion == "":
		errs = append(errs, fmt.Errorf("region: required (for example \"us-east-1\"), or set AWS_REGION"))
	case !Unknown(c.RawRegion) && !ValidRegion(c.RawRegion):
		errs = append(errs, fmt.Errorf("region: %q is not a region name; expected lower-case words and a number, like \"us-east-1\" or \"eu-central-2\"", c.RawRegion))
	}

	if (c.AccessKey == "") != (c.SecretKey == "") {
		errs = append(errs, fmt.Errorf("access_key, secret_key: set both or neither"))
	}
	if c.Token != "" && c.AccessKey == "" {
		errs = append(errs, fmt.Errorf("token: only valid together with access_key and secret_key"))
	}
	if c.AccessKey != "" && c.Profile != "" {
		errs = append(errs, fmt.Errorf("access_key, profile: set static keys or a profile, not both"))
	}

	ar := c.AssumeRole
	if ar != (AssumeRoleConfig{}) {
		switch {
		case ar.RoleARN == "":
			errs = append(errs, fmt.Errorf("assume_role.role_arn: required when assume_role is set"))
		case !Matches(roleARNRE, ar.RoleARN):
			errs = append(errs, fmt.Errorf("assume_role.role_arn: %q is not a role ARN; expected arn:aws:iam::<12-digit account>:role/<name>", ar.RoleARN))
		}
		if ar.Duration != 0 && (ar.Duration < 15*time.Minute || ar.Duration > 12*time.Hour) {
			errs = append(errs, fmt.Errorf("assume_role.duration: %s is out of range; valid is 15m to 12h", ar.Duration))
		}
		if ar.SessionName != "" && !Matches(sessionNameRE, ar.SessionName) {
			errs = append(errs, fmt.Errorf("assume_role.session_name: %q is invalid; use 2-64 characters of [A-Za-z0-9+=,.@-]", ar.SessionName))
		}
	}

	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("max_retries: %d is negative; use 0 for the AWS SDK default or a positive number of attempts", c.MaxRetries))
	}
	switch c.RetryMode {
	case "", "standard", "adaptive":
	default:
		errs = append(errs, fmt.Errorf("retry_mode: %q is unknown; valid are \"standard\" and \"adaptive\"", c.RetryMode))
	}
	for _, ep := range []struct{ name, value string }{
		{"custom_endpoint_ec2", c.CustomEndpointEC2},
		{"custom_endpoint_s3", c.CustomEndpointS3},
		{"custom_endpoint_sts", c.CustomEndpointSTS},
	} {
		if ep.value == "" {
			continue
		}
		if err := checkEndpoint(ep.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep.name, err))
		}
	}
	if len(errs) == 0 {
		// Whatever the SDK checks beyond the rules above.
		errs = append(errs, translateFieldErrors(c.AWSConfig().Validate())...)
	}
	return errs
}

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// optionNames maps awscfg.Config field paths to option names.
var optionNames = map[string]string{
	"Region":                 "region",
	"Profile":                "profile",
	"SharedCredentialsFiles": "shared_credentials_file",
	"AccessKey":              "access_key",
	"SecretKey":              "secret_key",
	"SessionToken":           "token",
	"AssumeRole":             "assume_role",
	"AssumeRole.RoleARN":     "assume_role.role_arn",
	"AssumeRole.ExternalID":  "assume_role.external_id",
	"AssumeRole.SessionName": "assume_role.session_name",
	"AssumeRole.Duration":    "assume_role.duration",
	"MaxAttempts":            "max_retries",
	"RetryMode":              "retry_mode",
	"Endpoints.EC2":          "custom_endpoint_ec2",
	"Endpoints.S3":           "custom_endpoint_s3",
	"Endpoints.STS":          "custom_endpoint_sts",
}

// translateFieldErrors splits an awscfg validation error into one error per
// problem, named by option rather than by Go field.
func translateFieldErrors(err error) []error {
	var out []error
	for _, fe := range awscfg.FieldErrors(err) {
		name, ok := optionNames[fe.Field]
		switch {
		case fe.Field == "":
			out = append(out, errors.New(fe.Problem))
		case !ok:
			out = append(out, fe)
		default:
			out = append(out, fmt.Errorf("%s: %s", name, fe.Problem))
		}
	}
	return out
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// AWSConfig returns the SDK configuration described by c. Call Prepare first.
func (c *AccessConfig) AWSConfig() awscfg.Config {
	cfg := awscfg.Config{
		Region:       c.RawRegion,
		Profile:      c.Profile,
		AccessKey:    c.AccessKey,
		SecretKey:    c.SecretKey.Reveal(),
		SessionToken: c.Token.Reveal(),
		MaxAttempts:  c.MaxRetries,
		RetryMode:    c.RetryMode,
		Endpoints: awscfg.Endpoints{
			EC2: c.CustomEndpointEC2,
			S3:  c.CustomEndpointS3,
			STS: c.CustomEndpointSTS,
		},
	}
	if c.SharedCredentialsFile != "" {
		cfg.SharedCredentialsFiles = []string{c.SharedCredentialsFile}
	}
	if c.AssumeRole.RoleARN != "" {
		cfg.AssumeRole = &awscfg.AssumeRole{
			RoleARN:     c.AssumeRole.RoleARN,
			ExternalID:  c.AssumeRole.ExternalID.Reveal(),
			SessionName: c.AssumeRole.SessionName,
			Duration:    c.AssumeRole.Duration,
		}
	}
	return cfg
}

// The app ids the components send in the User-Agent of every AWS call, as
// "app/<id>" (awscfg.Config.AppID), so that CloudTrail and proxies can tell
// which component made a call.
const (
	AppIDEBS        = "packer-plugin-ami.ebs"
	AppIDInstance   = "packer-plugin-ami.instance"
	AppIDDistribute = "packer-plugin-ami.distribute"
)

// Session builds the AWS session described by c for the component named
// by appID (one of the AppID constants). It does not call AWS; credentials
// are checked by the builders' amibuild.StepCheckRegion unless
// skip_credential_validation is set.
func (c *AccessConfig) Session(ctx context.Context, appID string) (*awscfg.Session, error) {
	cfg := c.AWSConfig()
	cfg.AppID = appID
	sess, err := awscfg.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("configure AWS access for %s: %w", c.RawRegion, err)
	}
	return sess, nil
}
