//go:build unix

package distribute

import (
	"strings"
	"testing"
)

func TestValidators(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) error
		good  []string
		bad   []string
	}{
		{"account", ValidateAccountID, []string{"123456789012", "000000000000"}, []string{"", "12345678901", "1234567890123", "12345678901a", " 123456789012"}},
		{"group", ValidateGroup, []string{"all"}, []string{"", "All", "public", "everyone"}},
		{"org", ValidateOrgARN,
			[]string{orgARN, "arn:aws-us-gov:organizations::123456789012:organization/o-abcdefghij0123456789abcdefghij01"},
			[]string{"", "o-abcdefghij", "arn:aws:organizations::1234:organization/o-abcdefghij", "arn:aws:organizations::123456789012:organization/o-abc",
				"arn:aws:organizations::123456789012:organization/o-ABCDEFGHIJ", ouARN, "arn:aws:iam::123456789012:organization/o-abcdefghij"}},
		{"ou", ValidateOUARN,
			[]string{ouARN, "arn:aws-cn:organizations::123456789012:ou/o-abcdefghij/ou-abcd-abcdefgh"},
			[]string{"", orgARN, "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab-cdefgh34", "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cd", "ou-ab12-cdefgh34"}},
		{"kms", ValidateKMSKeyID,
			[]string{"0f3c1a2b-1234-4abc-8def-0123456789ab", "mrk-0123456789abcdef0123456789abcdef", "alias/team", "alias/aws/ebs", "alias/a/b_c-d",
				"arn:aws:kms:us-east-1:111111111111:key/0f3c1a2b-1234-4abc-8def-0123456789ab", "arn:aws:kms:eu-west-1:111111111111:alias/team",
				"arn:aws-us-gov:kms:us-gov-west-1:111111111111:key/mrk-0123456789abcdef0123456789abcdef"},
			[]string{"", "team", "alias/", "alias/aws/s3", "alias/a b", "0f3c1a2b", "arn:aws:kms:us-east-1:111:key/0f3c1a2b-1234-4abc-8def-0123456789ab",
				"arn:aws:kms:us-east-1:111111111111:key/not-a-uuid", "arn:aws:s3:::bucket"}},
		{"region", ValidateRegion, []string{"us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-3", "il-central-1", "us-isob-east-1"},
			[]string{"", "us-east", "US-EAST-1", "useast1", "us_east_1", "us-east-1a", "east-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range tc.good {
				if err := tc.check(v); err != nil {
					t.Errorf("%q: %v", v, err)
				}
			}
			for _, v := range tc.bad {
				err := tc.check(v)
				if err == nil {
					t.Errorf("%q accepted", v)
				} else if !strings.Contains(err.Error(), `"`+v+`"`) {
					t.Errorf("%q: message %q does not quote the value", v, err)
				}
			}
		})
	}
}

func TestValidateNamedUsesCallerFieldNames(t *testing.T) {
	p := Permissions{Accounts: []string{"123456789012", "12"}, Groups: []string{"public"}, OUARNs: []string{"x"}}
	err := p.ValidateNamed(FieldNames{Accounts: "ami_users", Groups: "ami_groups", OUARNs: "ami_ou_arns"})
	for _, want := range []string{`ami_users[1]: "12" is not an AWS account ID (want 12 digits)`, `ami_groups[0]: "public"`, `ami_ou_arns[0]: "x"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "ami_users[0]") {
		t.Errorf("valid value reported: %v", err)
	}
	if err := (Permissions{Accounts: []string{"123456789012"}, Groups: []string{"all"}, OrgARNs: []string{orgARN}}).Validate(); err != nil {
		t.Errorf("valid permissions: %v", err)
	}
}
