//go:build unix

package distribute

import (
	"maps"
	"strings"
	"testing"
	"time"
)

const (
	orgARN = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
	ouARN  = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
	keyARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// validRaw is a configuration every test case starts from.
func validRaw() map[string]any {
	return map[string]any{
		"region":       "us-east-1",
		"regions":      []string{"eu-west-1", "ap-southeast-2"},
		"ami_name":     "web-{{timestamp}}",
		"ami_users":    []string{"111122223333"},
		"ami_org_arns": []string{orgARN},
		"tags":         map[string]string{"Name": "web", "Source": "{{ .SourceAMI }}"},
	}
}

func configure(t *testing.T, raw map[string]any) (*PostProcessor, error) {
	t.Helper()
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	p := &PostProcessor{}
	return p, p.Configure(raw)
}

func TestConfigureValid(t *testing.T) {
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name   string
		change map[string]any
		check  func(t *testing.T, c *Config)
	}{
		{name: "base"},
		{name: "no regions: tags on the input", change: map[string]any{"regions": nil, "ami_users": nil, "ami_org_arns": nil}},
		{name: "no regions: protection of the input", change: map[string]any{"regions": nil, "ami_users": nil, "ami_org_arns": nil, "tags": nil,
			"deregistration_protection": map[string]any{"enabled": true}}},
		{name: "no regions: deprecation of the input", change: map[string]any{"regions": nil, "ami_users": nil, "ami_org_arns": nil, "tags": nil,
			"deprecate_after": "720h"}},
		{
			name:   "ami_regions alias",
			change: map[string]any{"regions": nil, "ami_regions": []string{"eu-west-1"}},
			check: func(t *testing.T, c *Config) {
				if got := c.TargetRegions(); len(got) != 1 || got[0] != "eu-west-1" {
					t.Errorf("TargetRegions = %q", got)
				}
			},
		},
		{
			name: "everything",
			change: map[string]any{
				"ami_description":    "copy of {{ .SourceAMIName }} in {{ .Region }}",
				"ami_groups":         []string{},
				"ami_ou_arns":        []string{ouARN},
				"snapshot_users":     []string{"111122223333"},
				"snapshot_tags":      map[string]string{"Snap": "yes"},
				"copy_image_tags":    true,
				"encrypt_boot":       true,
				"kms_key_id":         "alias/team-key",
				"region_kms_key_ids": map[string]string{"eu-west-1": keyARN},
				"deprecate_at":       future,
				"deregistration_protection": map[string]any{
					"enabled": true, "with_cooldown": true,
				},
				"copy_concurrency": 2,
				"keep_releases":    3,
				"keep_days":        30,
				"retention":        map[string]any{"name_pattern": "web-*", "tags": map[string]string{"App": "web"}},
				"manifest_output":  "out/manifest.json",
				"share_source":     false,
				"region_override": []map[string]any{{
					"region": "ap-southeast-2", "ami_name": "web-apac-{{timestamp}}", "ami_users": []string{"444455556666"},
					"kms_key_id": "alias/apac", "tags": map[string]string{"Region": "{{ .Region }}"},
				}},
			},
			check: func(t *testing.T, c *Config) {
				tg := c.target("ap-southeast-2")
				if tg.kmsKeyID != "alias/apac" || !tg.encrypted {
					t.Errorf("override key not applied: %+v", tg)
				}
				if len(tg.perms.Accounts) != 1 || tg.perms.Accounts[0] != "444455556666" {
					t.Errorf("override ami_users not applied: %+v", tg.perms)
				}
				if len(tg.perms.OrgARNs) != 1 {
					t.Errorf("override dropped the top-level ami_org_arns: %+v", tg.perms)
				}
				if got := c.target("eu-west-1").kmsKeyID; got != keyARN {
					t.Errorf("region_kms_key_ids not applied: %q", got)
				}
				if c.shareSource() {
					t.Error("share_source = false not honoured")
				}
			},
		},
		{
			name:   "deprecate_after in days",
			change: map[string]any{"deprecate_after": "90d"},
			check: func(t *testing.T, c *Config) {
				d, err := c.deprecation(time.Now())
				if err != nil || d.After != 90*24*time.Hour {
					t.Errorf("deprecation = %+v, %v", d, err)
				}
			},
		},
		{
			name:   "only share the source, no regions",
			change: map[string]any{"regions": nil},
		},
		{
			name:   "source_ami",
			change: map[string]any{"source_ami": "ami-0123456789abcdef0"},
		},
		{
			name: "source_ami_filter",
			change: map[string]any{"source_ami_filter": map[string]any{
				"filters": map[string]string{"name": "web-*"}, "owners": []string{"self"}, "most_recent": true,
			}},
		},
		{
			name:   "public, unencrypted",
			change: map[string]any{"ami_groups": []string{"all"}, "snapshot_groups": []string{"all"}},
		},
		{
			name: "share_source defaults to true",
			check: func(t *testing.T, c *Config) {
				if !c.shareSource() {
					t.Error("share_source is off by default")
				}
			},
			change: map[string]any{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			maps.Copy(raw, tc.change)
			for k, v := range raw {
				if v == nil {
					delete(raw, k)
				}
			}
			p, err := configure(t, raw)
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			if tc.check != nil {
				tc.check(t, &p.config)
			}
		})
	}
}

func TestConfigureInvalid(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name   string
		change map[string]any
		want   []string // every string must be in the error
	}{
		{"region missing", map[string]any{"region": nil}, []string{"region", "required"}},
		{"bad access region", map[string]any{"region": "us-east-one"}, []string{"region", "us-east-one"}},
		{"bad target region", map[string]any{"regions": []string{"eu-west-1", "EU-WEST-2"}}, []string{"regions[1]", "EU-WEST-2", "like us-east-1"}},
		{"duplicate region", map[string]any{"regions": []string{"eu-west-1", "eu-west-1"}}, []string{"regions[1]", "more than once"}},
		{"bad ami_regions", map[string]any{"regions": nil, "ami_regions": []string{"mars-1"}}, []string{"ami_regions[0]", "mars-1"}},
		{"regions and alias", map[string]any{"ami_regions": []string{"eu-west-1"}}, []string{"regions, ami_regions", "not both"}},
		{"short ami_name", map[string]any{"ami_name": "ab"}, []string{"ami_name", "3 to 128"}},
		{"bad ami_name chars", map[string]any{"ami_name": "web#1"}, []string{"ami_name", "web#1"}},
		{"bad ami_name template", map[string]any{"ami_name": "web-{{ .Nope }}"}, []string{"ami_name", "template"}},
		{"long description", map[string]any{"ami_description": strings.Repeat("d", 256)}, []string{"ami_description", "255"}},
		{"bad account", map[string]any{"ami_users": []string{"1234"}}, []string{"ami_users[0]", "1234", "12 digits"}},
		{"bad second account", map[string]any{"ami_users": []string{"111122223333", "11112222333a"}}, []string{"ami_users[1]"}},
		{"bad group", map[string]any{"ami_groups": []string{"everyone"}}, []string{"ami_groups[0]", "everyone", "all"}},
		{"bad org ARN", map[string]any{"ami_org_arns": []string{"o-abcdefghij"}}, []string{"ami_org_arns[0]", "organization ARN"}},
		{"bad OU ARN", map[string]any{"ami_ou_arns": []string{orgARN}}, []string{"ami_ou_arns[0]", "organizational unit ARN"}},
		{"bad snapshot user", map[string]any{"snapshot_users": []string{"abc"}}, []string{"snapshot_users[0]", "abc"}},
		{"bad snapshot group", map[string]any{"snapshot_groups": []string{"public"}}, []string{"snapshot_groups[0]", "public"}},
		{"reserved tag key", map[string]any{"tags": map[string]string{"aws:foo": "x"}}, []string{"tags", "aws:"}},
		{"long tag value", map[string]any{"snapshot_tags": map[string]string{"k": strings.Repeat("v", 257)}}, []string{"snapshot_tags", "256"}},
		{"bad tag template", map[string]any{"tags": map[string]string{"k": "{{ .Missing }}"}}, []string{"tags", "template"}},
		{"encrypt_boot false with key", map[string]any{"encrypt_boot": false, "kms_key_id": "alias/k"}, []string{"encrypt_boot, kms_key_id"}},
		{"bad kms_key_id", map[string]any{"kms_key_id": "my-key"}, []string{"kms_key_id", "my-key", "alias/"}},
		{"aws-managed key of another service", map[string]any{"kms_key_id": "alias/aws/s3"}, []string{"kms_key_id", "alias/aws/s3"}},
		{"region key for other region", map[string]any{"region_kms_key_ids": map[string]string{"us-west-2": "alias/k"}}, []string{`region_kms_key_ids["us-west-2"]`, "not one of regions"}},
		{"region key malformed", map[string]any{"region_kms_key_ids": map[string]string{"eu-west-1": "arn:aws:kms:key"}}, []string{`region_kms_key_ids["eu-west-1"]`, "KMS key"}},
		{"region key bad region", map[string]any{"region_kms_key_ids": map[string]string{"europe": "alias/k"}}, []string{`region_kms_key_ids["europe"]`, "region name"}},
		{"region key with encrypt_boot false", map[string]any{"encrypt_boot": false, "region_kms_key_ids": map[string]string{"eu-west-1": "alias/k"}}, []string{"encrypt_boot", `region_kms_key_ids["eu-west-1"]`}},
		{"public and encrypted", map[string]any{"ami_groups": []string{"all"}, "encrypt_boot": true, "kms_key_id": "alias/k", "ami_users": nil, "ami_org_arns": nil}, []string{"ami_groups", "public"}},
		{"public snapshots and encrypted", map[string]any{"snapshot_groups": []string{"all"}, "kms_key_id": "alias/k"}, []string{"public"}},
		{"share with default key", map[string]any{"encrypt_boot": true}, []string{"ami_users", "alias/aws/ebs", "customer-managed"}},
		{"share with explicit default key", map[string]any{"kms_key_id": "alias/aws/ebs"}, []string{"alias/aws/ebs", "cannot be shared"}},
		{"deprecate_at format", map[string]any{"deprecate_at": "2030-01-01"}, []string{"deprecate_at", "RFC 3339"}},
		{"parameter name missing", map[string]any{"ssm_parameters": []map[string]any{{"tags": map[string]string{"a": "b"}}}}, []string{"ssm_parameters[0].name", "required"}},
		{"parameter name without slash", map[string]any{"ssm_parameters": []map[string]any{{"name": "golden/web"}}}, []string{"ssm_parameters[0].name", "starts with /"}},
		{"parameter name reserved", map[string]any{"ssm_parameters": []map[string]any{{"name": "/aws/golden"}}}, []string{"ssm_parameters[0].name", "reserved"}},
		{"parameter name template", map[string]any{"ssm_parameters": []map[string]any{{"name": "/golden/{{ .Nope }}"}}}, []string{"ssm_parameters[0].name", "template"}},
		{"parameter region", map[string]any{"ssm_parameters": []map[string]any{{"name": "/golden/web", "regions": []string{"eu"}}}}, []string{"ssm_parameters[0].regions[0]", "region name"}},
		{"launch template without id or name", map[string]any{"launch_templates": []map[string]any{{"set_default_version": true}}}, []string{"launch_templates[0]", "set id (lt-...) or name"}},
		{"launch template id and name", map[string]any{"launch_templates": []map[string]any{{"id": "lt-0123456789abcdef0", "name": "web", "region": "eu-west-1"}}}, []string{"launch_templates[0].id, .name", "not both"}},
		{"launch template id without region", map[string]any{"launch_templates": []map[string]any{{"id": "lt-0123456789abcdef0"}}}, []string{"launch_templates[0].region", "required with id"}},
		{"launch template bad id", map[string]any{"launch_templates": []map[string]any{{"id": "template-1", "region": "eu-west-1"}}}, []string{"launch_templates[0].id", "lt-"}},
		{"launch template source version", map[string]any{"launch_templates": []map[string]any{{"name": "web", "source_version": "latest"}}}, []string{"launch_templates[0].source_version", "$Default, $Latest or a version number"}},
		{"target account id", map[string]any{"target_accounts": []map[string]any{{"account_id": "2222", "role_arn": "arn:aws:iam::222222222222:role/x"}}}, []string{"target_accounts[0].account_id", "12 digits"}},
		{"target account role missing", map[string]any{"target_accounts": []map[string]any{{"account_id": "222222222222"}}}, []string{"target_accounts[0].role_arn", "required"}},
		{"target account role of another account", map[string]any{"target_accounts": []map[string]any{{"account_id": "222222222222", "role_arn": "arn:aws:iam::333333333333:role/x"}}}, []string{"target_accounts[0].role_arn", "not of account_id 222222222222"}},
		{"target account bad role", map[string]any{"target_accounts": []map[string]any{{"account_id": "222222222222", "role_arn": "role/x"}}}, []string{"target_accounts[0].role_arn", "not an IAM role ARN"}},
		{"target account external id", map[string]any{"target_accounts": []map[string]any{{"account_id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/x", "external_id": "has spaces in it"}}}, []string{"target_accounts[0].external_id", "is invalid"}},
		{"target account twice", map[string]any{"target_accounts": []map[string]any{{"account_id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/x"}, {"account_id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/y"}}}, []string{"target_accounts[1].account_id", "more than one"}},
		{"target account parameter", map[string]any{"target_accounts": []map[string]any{{"account_id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/x", "ssm_parameters": []map[string]any{{"name": "/ssm/web"}}}}}, []string{"target_accounts[0].ssm_parameters[0].name", "reserved"}},
		{"target account keep_releases negative", map[string]any{"target_accounts": []map[string]any{{"account_id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/x", "keep_releases": -1}}}, []string{"target_accounts[0].keep_releases"}},
		{"target account retention without selector", map[string]any{"target_accounts": []map[string]any{{"account_id": "222222222222", "role_arn": "arn:aws:iam::222222222222:role/x", "keep_releases": 2}}}, []string{"retention", "selector"}},
		{"deprecate_at past", map[string]any{"deprecate_at": past}, []string{"deprecate_at", "not in the future"}},
		{"deprecate_after format", map[string]any{"deprecate_after": "3 months"}, []string{"deprecate_after", "duration"}},
		{"deprecate_after negative", map[string]any{"deprecate_after": "-5h"}, []string{"deprecate_after", "not positive"}},
		{"deprecate both", map[string]any{"deprecate_after": "5h", "deprecate_at": "2099-01-01T00:00:00Z"}, []string{"deprecate_at, deprecate_after", "not both"}},
		{"cooldown without enabled", map[string]any{"deregistration_protection": map[string]any{"with_cooldown": true}}, []string{"deregistration_protection.with_cooldown"}},
		{"concurrency negative", map[string]any{"copy_concurrency": -1}, []string{"copy_concurrency", "1 to 16", "0 for every region at once"}},
		{"concurrency too high", map[string]any{"copy_concurrency": 17}, []string{"copy_concurrency", "17"}},
		{"keep_releases negative", map[string]any{"keep_releases": -2, "retention": map[string]any{"name_pattern": "web-*"}}, []string{"keep_releases", "negative"}},
		{"keep_days negative", map[string]any{"keep_days": -1, "retention": map[string]any{"name_pattern": "web-*"}}, []string{"keep_days", "negative"}},
		{"keep without selector", map[string]any{"keep_releases": 2}, []string{"retention", "selector"}},
		{"selector without keep", map[string]any{"retention": map[string]any{"name_pattern": "web-*"}}, []string{"retention", "keep_releases or keep_days"}},
		{"selector matches everything", map[string]any{"keep_releases": 2, "retention": map[string]any{"name_pattern": "*"}}, []string{"retention.name_pattern", "every AMI"}},
		{"selector bad chars", map[string]any{"keep_releases": 2, "retention": map[string]any{"name_pattern": "web#*"}}, []string{"retention.name_pattern", "web#*"}},
		{"manifest is a directory", map[string]any{"manifest_output": "out/"}, []string{"manifest_output", "directory"}},
		{"source_ami malformed", map[string]any{"source_ami": "image-1"}, []string{"source_ami", "image-1"}},
		{"source_ami and filter", map[string]any{"source_ami": "ami-0123456789abcdef0", "source_ami_filter": map[string]any{"owners": []string{"self"}}}, []string{"source_ami, source_ami_filter"}},
		{"filter bad owner", map[string]any{"source_ami_filter": map[string]any{"owners": []string{"me"}}}, []string{"source_ami_filter.owners[0]", "me"}},
		{"override without region", map[string]any{"region_override": []map[string]any{{"ami_name": "web-x"}}}, []string{"region_override[0].region", "required"}},
		{"override unknown region", map[string]any{"region_override": []map[string]any{{"region": "us-west-2"}}}, []string{"region_override[0].region", "us-west-2", "not one of regions"}},
		{"override twice", map[string]any{"region_override": []map[string]any{{"region": "eu-west-1"}, {"region": "eu-west-1"}}}, []string{"region_override[1].region", "more than one"}},
		{"override bad name", map[string]any{"region_override": []map[string]any{{"region": "eu-west-1", "ami_name": "a"}}}, []string{"region_override[0].ami_name"}},
		{"override bad account", map[string]any{"region_override": []map[string]any{{"region": "eu-west-1", "ami_users": []string{"42"}}}}, []string{"region_override[0].ami_users[0]", "42"}},
		{"override bad key", map[string]any{"region_override": []map[string]any{{"region": "eu-west-1", "kms_key_id": "k"}}}, []string{"region_override[0].kms_key_id"}},
		{"override key twice", map[string]any{"region_kms_key_ids": map[string]string{"eu-west-1": "alias/a"}, "region_override": []map[string]any{{"region": "eu-west-1", "kms_key_id": "alias/b"}}}, []string{"region_override[0].kms_key_id, region_kms_key_ids"}},
		{"override encrypt false with top key", map[string]any{"kms_key_id": "alias/k", "region_override": []map[string]any{{"region": "eu-west-1", "encrypt_boot": false}}}, []string{"region_override[0].encrypt_boot", "alias/k"}},
		{"override encrypted with default key shares", map[string]any{"ami_users": nil, "ami_org_arns": nil, "region_override": []map[string]any{{"region": "eu-west-1", "encrypt_boot": true, "ami_users": []string{"111122223333"}}}}, []string{"region_override[0].ami_users", "eu-west-1", "alias/aws/ebs"}},
		{"override bad tag", map[string]any{"region_override": []map[string]any{{"region": "eu-west-1", "tags": map[string]string{"aws:x": "y"}}}}, []string{"region_override[0].tags", "aws:"}},
		{"bad polling", map[string]any{"aws_polling": map[string]any{"delay_seconds": -1}}, []string{"aws_polling.delay_seconds"}},
		{"bad custom endpoint", map[string]any{"custom_endpoint_ec2": "localhost:5000"}, []string{"custom_endpoint_ec2"}},
		{"unknown option", map[string]any{"ami_regionz": []string{"eu-west-1"}}, []string{"ami_regionz"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			maps.Copy(raw, tc.change)
			for k, v := range raw {
				if v == nil {
					delete(raw, k)
				}
			}
			_, err := configure(t, raw)
			if err == nil {
				t.Fatalf("Configure accepted %v", tc.change)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestConfigureReportsEveryProblem checks that problems in several
// options are reported together, not one per run.
func TestConfigureReportsEveryProblem(t *testing.T) {
	raw := validRaw()
	raw["ami_users"] = []string{"1"}
	raw["regions"] = []string{"nowhere"}
	raw["copy_concurrency"] = 99
	raw["deprecate_after"] = "soon"
	_, err := configure(t, raw)
	if err == nil {
		t.Fatal("Configure accepted four bad options")
	}
	for _, field := range []string{"ami_users[0]", "regions[0]", "copy_concurrency", "deprecate_after"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
}
