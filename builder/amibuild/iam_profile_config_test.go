//go:build unix

package amibuild

import (
	"strings"
	"testing"
)

func TestTemporaryIAMProfileConfig(t *testing.T) {
	stmt := func(effect string, action, resource []string) map[string]any {
		return map[string]any{"Effect": effect, "Action": action, "Resource": resource}
	}
	doc := func(version string, stmts ...map[string]any) map[string]any {
		d := map[string]any{"Statement": stmts}
		if version != "" {
			d["Version"] = version
		}
		return d
	}
	good := stmt("Allow", []string{"logs:*", "s3:GetObject"}, []string{"*"})
	tests := []struct {
		name     string
		extra    map[string]any
		wantErrs []string // each must be part of one error; none: valid
		wantJSON string
	}{
		{name: "unset", extra: map[string]any{}},
		{name: "valid, version defaulted", extra: map[string]any{"temporary_iam_instance_profile_policy_document": doc("", good)},
			wantJSON: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:*","s3:GetObject"],"Resource":["*"]}]}`},
		{name: "two statements, old version", extra: map[string]any{"temporary_iam_instance_profile_policy_document": doc("2008-10-17", good,
			stmt("Deny", []string{"s3:DeleteObject"}, []string{"arn:aws:s3:::b/*"}))},
			wantJSON: `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":["logs:*","s3:GetObject"],"Resource":["*"]},{"Effect":"Deny","Action":["s3:DeleteObject"],"Resource":["arn:aws:s3:::b/*"]}]}`},
		{name: "with iam_instance_profile", extra: map[string]any{"iam_instance_profile": "build", "temporary_iam_instance_profile_policy_document": doc("", good)},
			wantErrs: []string{"iam_instance_profile, temporary_iam_instance_profile_policy_document: set one of them, not both"}},
		{name: "no statement", extra: map[string]any{"temporary_iam_instance_profile_policy_document": doc("2012-10-17")},
			wantErrs: []string{"temporary_iam_instance_profile_policy_document: needs at least one Statement block"}},
		{name: "bad version", extra: map[string]any{"temporary_iam_instance_profile_policy_document": doc("2020-01-01", good)},
			wantErrs: []string{"temporary_iam_instance_profile_policy_document.Version: \"2020-01-01\" is not a policy language version"}},
		{name: "bad statement", extra: map[string]any{"temporary_iam_instance_profile_policy_document": doc("", good, stmt("allow", nil, nil))},
			wantErrs: []string{
				"Statement[1].Effect: \"allow\" is invalid; valid are \"Allow\" and \"Deny\"",
				"Statement[1].Action: required",
				"Statement[1].Resource: required",
			}},
		{name: "malformed action", extra: map[string]any{"temporary_iam_instance_profile_policy_document": doc("", stmt("Allow", []string{"GetObject"}, []string{"*"}))},
			wantErrs: []string{"Statement[0].Action: \"GetObject\" is not an IAM action"}},
		{name: "values not known yet", extra: map[string]any{"temporary_iam_instance_profile_policy_document": doc("", stmt("<unknown>", []string{"<unknown>"}, []string{"<unknown>"}))}},
		{name: "too large", extra: map[string]any{"temporary_iam_instance_profile_policy_document": doc("", stmt("Allow", []string{"s3:GetObject"}, []string{"arn:aws:s3:::" + strings.Repeat("b", 10300)}))},
			wantErrs: []string{"IAM allows at most 10240"}},
		{name: "skip_profile_validation alone", extra: map[string]any{"iam_instance_profile": "build", "skip_profile_validation": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.extra {
				raw[k] = v
			}
			c, errs := prepareRaw(t, raw)
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("errors:\n%s\nwant %d: %q", joinErrs(errs), len(tc.wantErrs), tc.wantErrs)
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(joinErrs(errs), want) {
					t.Errorf("errors:\n%s\nwant one containing %q", joinErrs(errs), want)
				}
			}
			if tc.wantJSON != "" {
				got, err := c.TemporaryIamInstanceProfilePolicyDocument.JSON()
				if err != nil || got != tc.wantJSON {
					t.Errorf("JSON = %s, %v\nwant %s", got, err, tc.wantJSON)
				}
			}
		})
	}
}
