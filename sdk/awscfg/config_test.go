//go:build unix

package awscfg

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const (
	testSecret     = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
	testToken      = "FwoGZXIvYXdzSESSIONTOKENVALUE"
	testExternalID = "ext-id-confidential"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantFields []string // fields named in the error, nil = valid
		wantText   []string
	}{
		{name: "zero value", cfg: Config{}},
		{name: "full", cfg: Config{
			Region: "us-gov-west-1", Profile: "p", AccessKey: "AKIAIOSFODNN7EXAMPLE", SecretKey: testSecret, SessionToken: testToken,
			AssumeRole:  &AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/path/build", ExternalID: testExternalID, SessionName: "packer-build", Duration: time.Hour},
			MaxAttempts: 5, RetryMode: "adaptive",
			Endpoints: Endpoints{EC2: "http://127.0.0.1:5000", S3: "https://s3.example.com/", STS: "http://localhost:1"},
		}},
		{name: "china partition role", cfg: Config{Region: "cn-north-1", AssumeRole: &AssumeRole{RoleARN: "arn:aws-cn:iam::123456789012:role/r"}}},
		{name: "bad region", cfg: Config{Region: "US-EAST-1"}, wantFields: []string{"Region"}, wantText: []string{`"US-EAST-1"`, "us-east-1"}},
		{name: "region typo", cfg: Config{Region: "us-east"}, wantFields: []string{"Region"}},
		{name: "access key alone", cfg: Config{AccessKey: "AKIAIOSFODNN7EXAMPLE"}, wantFields: []string{"SecretKey"}},
		{name: "secret key alone", cfg: Config{SecretKey: testSecret}, wantFields: []string{"AccessKey"}},
		{name: "token alone", cfg: Config{SessionToken: testToken}, wantFields: []string{"SessionToken"}},
		{name: "role without arn", cfg: Config{AssumeRole: &AssumeRole{}}, wantFields: []string{"AssumeRole.RoleARN"}},
		{name: "role arn is a user", cfg: Config{AssumeRole: &AssumeRole{RoleARN: "arn:aws:iam::123456789012:user/bob"}}, wantFields: []string{"AssumeRole.RoleARN"}, wantText: []string{"role/<name>"}},
		{name: "role arn short account", cfg: Config{AssumeRole: &AssumeRole{RoleARN: "arn:aws:iam::1234:role/x"}}, wantFields: []string{"AssumeRole.RoleARN"}},
		{name: "role details", cfg: Config{AssumeRole: &AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/x", SessionName: "has space", ExternalID: "x", Duration: time.Minute}},
			wantFields: []string{"AssumeRole.SessionName", "AssumeRole.ExternalID", "AssumeRole.Duration"}},
		{name: "duration too long", cfg: Config{AssumeRole: &AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/x", Duration: 13 * time.Hour}}, wantFields: []string{"AssumeRole.Duration"}},
		{name: "negative attempts", cfg: Config{MaxAttempts: -1}, wantFields: []string{"MaxAttempts"}},
		{name: "retry mode", cfg: Config{RetryMode: "legacy"}, wantFields: []string{"RetryMode"}, wantText: []string{"standard", "adaptive"}},
		{name: "endpoints", cfg: Config{Endpoints: Endpoints{EC2: "127.0.0.1:5000", S3: "ftp://x", STS: "http://"}},
			wantFields: []string{"Endpoints.EC2", "Endpoints.S3", "Endpoints.STS"}, wantText: []string{"http://127.0.0.1:5000"}},
		{name: "endpoint with user info", cfg: Config{Endpoints: Endpoints{S3: "http://u:p@host"}}, wantFields: []string{"Endpoints.S3"}},
		{name: "app id", cfg: Config{AppID: "packer-plugin-ami.ebs"}},
		{name: "app id of 50 characters", cfg: Config{AppID: strings.Repeat("a", 50)}},
		{name: "app id too long", cfg: Config{AppID: strings.Repeat("a", 51)}, wantFields: []string{"AppID"}, wantText: []string{"51 characters", "at most 50"}},
		{name: "app id with a space", cfg: Config{AppID: "my tool"}, wantFields: []string{"AppID"}, wantText: []string{`"my tool"`}},
		{name: "app id with a slash", cfg: Config{AppID: "tool/1.0"}, wantFields: []string{"AppID"}},
		{name: "everything wrong at once", cfg: Config{Region: "x", SecretKey: testSecret, RetryMode: "x"},
			wantFields: []string{"Region", "AccessKey", "RetryMode"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantFields == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors for %v", tc.wantFields)
			}
			got := fieldsOf(err)
			if fmt.Sprint(got) != fmt.Sprint(tc.wantFields) {
				t.Errorf("fields in error = %v, want %v (error: %v)", got, tc.wantFields, err)
			}
			for _, s := range append(tc.wantText, tc.wantFields...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			for _, secret := range []string{testSecret, testToken, testExternalID} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %q", err)
				}
			}
		})
	}
}

// fieldsOf lists the Field of every *FieldError in a joined error.
func fieldsOf(err error) []string {
	var fields []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *FieldError
		if errors.As(err, &fe) {
			fields = append(fields, fe.Field)
		}
	}
	walk(err)
	return fields
}

func TestConfigRedaction(t *testing.T) {
	cfg := Config{
		Region: "eu-west-1", AccessKey: "AKIAIOSFODNN7EXAMPLE", SecretKey: testSecret, SessionToken: testToken,
		AssumeRole: &AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/x", ExternalID: testExternalID},
		Endpoints:  Endpoints{EC2: "http://127.0.0.1:5000"},
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config", "aws", cfg)

	outputs := map[string]string{
		"String": cfg.String(),
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", cfg),
		"%#v":    fmt.Sprintf("%#v", cfg),
		"%v ptr": fmt.Sprintf("%v", &cfg),
		"%s":     fmt.Sprintf("%s", cfg),
		"slog":   logBuf.String(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			for _, secret := range []string{testSecret, testToken, testExternalID, "AKIAIOSFODNN7EXAMPLE"} {
				if strings.Contains(out, secret) {
					t.Errorf("output leaks %q: %s", secret, out)
				}
			}
			for _, want := range []string{"eu-west-1", "MPLE", "127.0.0.1:5000", "arn:aws:iam::123456789012:role/x"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q: %s", want, out)
				}
			}
		})
	}
}

// TestConfigRedactionEveryVerb checks that secrets stay redacted with every
// verb and when a Config or AssumeRole is printed inside another value
// through an exported field, a slice or a map.
func TestConfigRedactionEveryVerb(t *testing.T) {
	cfg := Config{
		Region: "eu-west-1", AccessKey: "AKIAIOSFODNN7EXAMPLE", SecretKey: testSecret, SessionToken: testToken,
		AssumeRole: &AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/x", ExternalID: testExternalID},
	}
	type holder struct {
		Name string
		AWS  Config
	}
	type roleHolder struct {
		Role  AssumeRole
		RoleP *AssumeRole
	}
	h := holder{Name: "build", AWS: cfg}
	rh := roleHolder{Role: *cfg.AssumeRole, RoleP: cfg.AssumeRole}
	tests := []struct {
		name, format string
		arg          any
		wantRegion   bool
	}{
		{"%d", "%d", cfg, true},
		{"%x", "%x", cfg, false},
		{"%q", "%q", cfg, true},
		{"%t", "%t", cfg, true},
		{"%10.3v", "%10.3v", cfg, false},
		{"%d ptr", "%d", &cfg, true},
		{"nested %v", "%v", h, true},
		{"nested %+v", "%+v", h, true},
		{"nested %#v", "%#v", h, true},
		{"nested %s", "%s", h, true},
		{"nested %d", "%d", h, true},
		{"nested ptr %+v", "%+v", &h, true},
		{"slice %v", "%v", []Config{cfg}, true},
		{"map %+v", "%+v", map[string]Config{"a": cfg}, true},
		{"assume role %v", "%v", cfg.AssumeRole, false},
		{"assume role %+v", "%+v", *cfg.AssumeRole, false},
		{"assume role %#v", "%#v", cfg.AssumeRole, false},
		{"assume role %d", "%d", *cfg.AssumeRole, false},
		{"assume role nested %+v", "%+v", rh, false},
		{"assume role nested %#v", "%#v", rh, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := fmt.Sprintf(tc.format, tc.arg)
			for _, secret := range []string{testSecret, testToken, testExternalID, "AKIAIOSFODNN7EXAMPLE"} {
				if strings.Contains(out, secret) {
					t.Errorf("output leaks %q: %s", secret, out)
				}
			}
			if tc.wantRegion && !strings.Contains(out, "eu-west-1") {
				t.Errorf("output lacks the region: %s", out)
			}
		})
	}
}

func TestAssumeRoleValidate(t *testing.T) {
	tests := []struct {
		ar     AssumeRole
		fields []string
	}{
		{AssumeRole{RoleARN: "arn:aws:iam::222222222222:role/ami-publisher", ExternalID: "team-web", SessionName: "ami-distribute"}, nil},
		{AssumeRole{}, []string{"RoleARN"}},
		{AssumeRole{RoleARN: "arn:aws:iam::2222:role/x", SessionName: "a", ExternalID: "secret value!"}, []string{"RoleARN", "SessionName", "ExternalID"}},
	}
	for _, tc := range tests {
		err := tc.ar.Validate()
		var got []string
		for _, e := range unjoin(err) {
			var fe *FieldError
			if !errors.As(e, &fe) {
				t.Fatalf("%v is not a *FieldError", e)
			}
			got = append(got, fe.Field)
		}
		if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
			t.Errorf("Validate(%v) fields = %q, want %q", tc.ar, got, tc.fields)
		}
		if err != nil && strings.Contains(err.Error(), "secret value") {
			t.Errorf("the error shows the external ID: %v", err)
		}
	}
	if got := RoleAccount("arn:aws:iam::222222222222:role/path/ami-publisher"); got != "222222222222" {
		t.Errorf("RoleAccount = %q, want 222222222222", got)
	}
	if got := RoleAccount("arn:aws:iam::222222222222:user/x"); got != "" {
		t.Errorf("RoleAccount of a user ARN = %q, want \"\"", got)
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestFieldErrors(t *testing.T) {
	if got := FieldErrors(nil); got != nil {
		t.Errorf("FieldErrors(nil) = %v, want nil", got)
	}
	err := AssumeRole{RoleARN: "arn:aws:iam::2222:role/x", SessionName: "a"}.Validate()
	var fields []string
	for _, fe := range FieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	if got := strings.Join(fields, ","); got != "RoleARN,SessionName" {
		t.Errorf("FieldErrors fields = %q, want RoleARN,SessionName", got)
	}
	other := FieldErrors(errors.Join(&FieldError{Field: "Region", Problem: "bad"}, errors.New("something else")))
	if len(other) != 2 || other[0].Field != "Region" || other[1].Field != "" || other[1].Problem != "something else" {
		t.Errorf("FieldErrors of a mixed join = %+v", other)
	}
}
