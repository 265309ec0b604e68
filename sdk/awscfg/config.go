package awscfg

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// AssumeRole configures an IAM role to assume with the base credentials.
type AssumeRole struct {
	// RoleARN is the ARN of the role, e.g. "arn:aws:iam::123456789012:role/build".
	// Required.
	RoleARN string
	// ExternalID is passed to sts:AssumeRole when set.
	ExternalID string
	// SessionName identifies the role session. Empty means a name chosen by
	// the SDK.
	SessionName string
	// Duration is the lifetime of the role credentials, between 15 minutes
	// and 12 hours. Zero means the SDK default (15 minutes).
	Duration time.Duration
}

// Endpoints holds explicit per-service endpoint URLs. An empty field means
// the endpoint resolved by the SDK: AWS_ENDPOINT_URL_<SERVICE>, then
// AWS_ENDPOINT_URL, then the public AWS endpoint.
type Endpoints struct {
	EC2, S3, STS string
}

// Retry modes accepted by Config.RetryMode.
const (
	RetryModeStandard = string(aws.RetryModeStandard)
	RetryModeAdaptive = string(aws.RetryModeAdaptive)
)

// Config describes how to reach AWS. The zero value uses the SDK's default
// credential chain and region resolution.
type Config struct {
	// Region is the default region. Required unless it can be resolved from
	// AWS_REGION / AWS_DEFAULT_REGION or the profile.
	Region string
	// Profile selects a named profile from the shared configuration files.
	// Empty means AWS_PROFILE or "default".
	Profile string
	// SharedConfigFiles and SharedCredentialsFiles replace the default
	// ~/.aws/config and ~/.aws/credentials when non-empty.
	SharedConfigFiles, SharedCredentialsFiles []string
	// AccessKey, SecretKey and SessionToken are static credentials. AccessKey
	// and SecretKey are set together or not at all; SessionToken needs both.
	// They take precedence over Profile and the default chain.
	AccessKey, SecretKey, SessionToken string
	// AssumeRole, when set, assumes this role with the credentials above.
	AssumeRole *AssumeRole
	// MaxAttempts is the maximum number of attempts per API call, including
	// the first. Zero means the SDK default (AWS_MAX_ATTEMPTS or 3).
	MaxAttempts int
	// RetryMode is "standard" or "adaptive". Empty means the SDK default
	// (AWS_RETRY_MODE or standard).
	RetryMode string
	// Endpoints are explicit per-service endpoints, for emulators or VPC
	// endpoints. See Endpoints for the resolution order.
	Endpoints Endpoints
	// S3UsePathStyle forces (true) or disables (false) path-style S3
	// addressing. Nil means path style exactly when the S3 endpoint is
	// custom.
	S3UsePathStyle *bool
	// HTTPClient is used for every AWS call when set.
	HTTPClient *http.Client
	// AppID names the application that makes the calls. It is sent as
	// "app/<AppID>" in the User-Agent header of every call, so that
	// CloudTrail (userAgent), access logs and proxies can tell which tool
	// made a call. At most 50 characters from letters, digits and
	// !#$%&'*+-.^_`|~. Empty sends no app id.
	AppID string
}

// FieldError reports one invalid Config field. Field is the Go field path
// ("Region", "AssumeRole.RoleARN"), so callers can map it to their own names.
type FieldError struct {
	Field   string
	Problem string
}

// Error is the field and the problem, "Field: Problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// FieldErrors splits an error returned by Config.Validate or
// AssumeRole.Validate into its problems, in order; nil for nil. Any part
// that is not a *FieldError (there is none today) comes back with an empty
// Field and its message as Problem, so that nothing is lost.
func FieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	parts := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	}
	out := make([]*FieldError, 0, len(parts))
	for _, e := range parts {
		var fe *FieldError
		if !errors.As(e, &fe) {
			fe = &FieldError{Problem: e.Error()}
		}
		out = append(out, fe)
	}
	return out
}

var (
	regionRE      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	roleARNRE     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$`)
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	externalIDRE  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	// appIDRE is what the SDK sends unchanged in a User-Agent token.
	appIDRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
)

// Validate checks the role settings without any network access. All
// problems are reported, joined with errors.Join; each is a *FieldError
// whose Field is the AssumeRole field ("RoleARN", "SessionName",
// "ExternalID", "Duration"). The external ID never appears in the error.
func (ar AssumeRole) Validate() error {
	var errs []error
	for _, fe := range ar.fieldErrors() {
		errs = append(errs, fe)
	}
	return errors.Join(errs...)
}

func (ar AssumeRole) fieldErrors() []*FieldError {
	var errs []*FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	switch {
	case ar.RoleARN == "":
		bad("RoleARN", "is required when assuming a role")
	case !roleARNRE.MatchString(ar.RoleARN):
		bad("RoleARN", "%q is not an IAM role ARN; want arn:aws:iam::<12-digit account>:role/<name>", ar.RoleARN)
	}
	if ar.SessionName != "" && !sessionNameRE.MatchString(ar.SessionName) {
		bad("SessionName", "%q is invalid; want 2 to 64 characters from letters, digits and +=,.@_-", ar.SessionName)
	}
	if n := len(ar.ExternalID); n != 0 && (n < 2 || n > 1224 || !externalIDRE.MatchString(ar.ExternalID)) {
		bad("ExternalID", "is invalid; want 2 to 1224 characters from letters, digits and +=,.@:/_-")
	}
	if ar.Duration != 0 && (ar.Duration < 15*time.Minute || ar.Duration > 12*time.Hour) {
		bad("Duration", "%s is out of range; want between 15m and 12h, or 0 for the default", ar.Duration)
	}
	return errs
}

// RoleAccount returns the account ID of an IAM role ARN, "" when arn is
// not one.
func RoleAccount(arn string) string {
	if m := roleARNRE.FindStringSubmatch(arn); m != nil {
		return m[1]
	}
	return ""
}

// MaxAppIDLen is the longest Config.AppID the SDK accepts.
const MaxAppIDLen = 50

// ValidRegion reports whether s has the syntax of an AWS region name, such
// as "us-east-1" or "us-gov-west-1". It does not check that the region exists.
func ValidRegion(s string) bool { return regionRE.MatchString(s) }

// Validate checks the configuration without any network access. All problems
// are reported, joined with errors.Join; each is a *FieldError. Secret values
// never appear in the error.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if c.Region != "" && !ValidRegion(c.Region) {
		bad("Region", "%q is not a region name; want lower-case words and a number joined by dashes, like \"us-east-1\"", c.Region)
	}
	switch {
	case c.AccessKey != "" && c.SecretKey == "":
		bad("SecretKey", "must be set when AccessKey is set")
	case c.AccessKey == "" && c.SecretKey != "":
		bad("AccessKey", "must be set when SecretKey is set")
	}
	if c.SessionToken != "" && (c.AccessKey == "" || c.SecretKey == "") {
		bad("SessionToken", "needs AccessKey and SecretKey")
	}
	if ar := c.AssumeRole; ar != nil {
		for _, fe := range ar.fieldErrors() {
			bad("AssumeRole."+fe.Field, "%s", fe.Problem)
		}
	}
	if c.MaxAttempts < 0 {
		bad("MaxAttempts", "%d is negative; want 0 (SDK default) or more", c.MaxAttempts)
	}
	switch c.RetryMode {
	case "", RetryModeStandard, RetryModeAdaptive:
	default:
		bad("RetryMode", "%q is unknown; want %q, %q or empty", c.RetryMode, RetryModeStandard, RetryModeAdaptive)
	}
	switch {
	case len(c.AppID) > MaxAppIDLen:
		bad("AppID", "is %d characters long; want at most %d", len(c.AppID), MaxAppIDLen)
	case c.AppID != "" && !appIDRE.MatchString(c.AppID):
		bad("AppID", "%q is invalid; want letters, digits and !#$%%&'*+-.^_`|~ only", c.AppID)
	}
	for _, ep := range []struct{ field, value string }{
		{"Endpoints.EC2", c.Endpoints.EC2},
		{"Endpoints.S3", c.Endpoints.S3},
		{"Endpoints.STS", c.Endpoints.STS},
	} {
		if ep.value == "" {
			continue
		}
		if problem := checkEndpoint(ep.value); problem != "" {
			bad(ep.field, "%q %s", ep.value, problem)
		}
	}
	return errors.Join(errs...)
}

func checkEndpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "is not a URL; want an absolute http or https URL such as http://127.0.0.1:5000"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "has no http or https scheme; want an absolute URL such as http://127.0.0.1:5000"
	}
	if u.Host == "" {
		return "has no host; want an absolute URL such as http://127.0.0.1:5000"
	}
	if u.User != nil {
		return "must not carry user information"
	}
	return ""
}

const redacted = "<redacted>"

// redactKeyID shows only the last four characters of an access key ID.
func redactKeyID(s string) string {
	if s == "" {
		return ""
	}
	if len(s) <= 4 {
		return redacted
	}
	return strings.Repeat("*", len(s)-4) + s[len(s)-4:]
}

func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String describes the configuration with its secrets redacted.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("awscfg.Config{")
	sep := ""
	add := func(k string, v any) {
		fmt.Fprintf(&b, "%s%s: %v", sep, k, v)
		sep = ", "
	}
	addStr := func(k, v string) {
		if v != "" {
			add(k, fmt.Sprintf("%q", v))
		}
	}
	addStr("Region", c.Region)
	addStr("Profile", c.Profile)
	if len(c.SharedConfigFiles) > 0 {
		add("SharedConfigFiles", fmt.Sprintf("%q", c.SharedConfigFiles))
	}
	if len(c.SharedCredentialsFiles) > 0 {
		add("SharedCredentialsFiles", fmt.Sprintf("%q", c.SharedCredentialsFiles))
	}
	addStr("AccessKey", redactKeyID(c.AccessKey))
	addStr("SecretKey", redactSecret(c.SecretKey))
	addStr("SessionToken", redactSecret(c.SessionToken))
	if ar := c.AssumeRole; ar != nil {
		add("AssumeRole", ar.fields())
	}
	if c.MaxAttempts != 0 {
		add("MaxAttempts", c.MaxAttempts)
	}
	addStr("RetryMode", c.RetryMode)
	addStr("Endpoints.EC2", c.Endpoints.EC2)
	addStr("Endpoints.S3", c.Endpoints.S3)
	addStr("Endpoints.STS", c.Endpoints.STS)
	if c.S3UsePathStyle != nil {
		add("S3UsePathStyle", *c.S3UsePathStyle)
	}
	if c.HTTPClient != nil {
		add("HTTPClient", "custom")
	}
	addStr("AppID", c.AppID)
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v redacts too.
func (c Config) GoString() string { return c.String() }

// Format implements fmt.Formatter so that every verb, not only %v and %s,
// prints the redacted form of String. fmt also calls it for a Config inside
// another value reached through exported fields, slices, maps and pointers
// at the top level. It cannot help for a Config held in an unexported field
// of another struct: fmt prints such fields by reflection without calling
// any method, so their secrets show with %v. Do not print structs that hold
// a Config in an unexported field.
func (c Config) Format(f fmt.State, verb rune) { formatRedacted(f, verb, "awscfg.Config", c.String()) }

// String describes the role with ExternalID redacted.
func (ar AssumeRole) String() string {
	return "awscfg.AssumeRole" + ar.fields()
}

func (ar AssumeRole) fields() string {
	return fmt.Sprintf("{RoleARN: %q, ExternalID: %q, SessionName: %q, Duration: %s}",
		ar.RoleARN, redactSecret(ar.ExternalID), ar.SessionName, ar.Duration)
}

// GoString is String, so that %#v redacts too.
func (ar AssumeRole) GoString() string { return ar.String() }

// Format implements fmt.Formatter like Config.Format.
func (ar AssumeRole) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, "awscfg.AssumeRole", ar.String())
}

// formatRedacted prints the redacted description s for verb: as a string
// for the verbs that print strings, else as fmt's bad-verb notation around s.
func formatRedacted(f fmt.State, verb rune, typ, s string) {
	switch verb {
	case 'v', 's', 'q', 'x', 'X':
		out := verb
		if verb == 'v' {
			out = 's'
		}
		fmt.Fprintf(f, fmt.FormatString(f, out), s)
	default:
		fmt.Fprintf(f, "%%!%c(%s=%s)", verb, typ, s)
	}
}

// LogValue implements slog.LogValuer with secrets redacted.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("region", c.Region),
		slog.String("profile", c.Profile),
		slog.String("access_key", redactKeyID(c.AccessKey)),
		slog.String("secret_key", redactSecret(c.SecretKey)),
		slog.String("session_token", redactSecret(c.SessionToken)),
		slog.Int("max_attempts", c.MaxAttempts),
		slog.String("retry_mode", c.RetryMode),
		slog.String("endpoint_ec2", c.Endpoints.EC2),
		slog.String("endpoint_s3", c.Endpoints.S3),
		slog.String("endpoint_sts", c.Endpoints.STS),
		slog.String("app_id", c.AppID),
	}
	if ar := c.AssumeRole; ar != nil {
		attrs = append(attrs, slog.Group("assume_role",
			slog.String("role_arn", ar.RoleARN),
			slog.String("external_id", redactSecret(ar.ExternalID)),
			slog.String("session_name", ar.SessionName),
			slog.Duration("duration", ar.Duration)))
	}
	return slog.GroupValue(attrs...)
}
