//go:build unix

package amibuild

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

func TestNetworkConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]any
		want []string
	}{
		{"security_group_id and security_group_ids", map[string]any{"security_group_id": "sg-0123456789abcdef0", "security_group_ids": []string{"sg-0123456789abcdef1"}},
			[]string{"security_group_id, security_group_ids: set one of them, not both"}},
		{"security_group_id malformed", map[string]any{"security_group_id": "default"},
			[]string{`security_group_id: "default" is not a security group ID`}},
		{"security_group_id with source cidrs", map[string]any{"security_group_id": "sg-0123456789abcdef0", "temporary_security_group_source_cidrs": []string{"10.0.0.0/8"}},
			[]string{"temporary_security_group_source_cidrs: only used for the temporary security group; not valid together with security_group_id"}},
		{"security_group_filter empty value", map[string]any{"security_group_filter": map[string]any{"filters": map[string]string{"tag:Class": ""}}},
			[]string{`security_group_filter.filters: the value of "tag:Class" is empty`}},
		{"vpc_filter empty name", map[string]any{"vpc_filter": map[string]any{"filters": map[string]string{" ": "x"}}},
			[]string{"vpc_filter.filters: a filter name is empty"}},
		{"vpc_filter block without name", map[string]any{"vpc_filter": map[string]any{"filter": []map[string]any{{"value": "x"}}}},
			[]string{"vpc_filter.filter[0].name: required"}},
		{"subnet_filter name in the map and a block", map[string]any{"subnet_filter": map[string]any{
			"filters": map[string]string{"tag:Tier": "a"}, "filter": []map[string]any{{"name": "tag:Tier", "value": "b"}}}},
			[]string{`subnet_filter: filter "tag:Tier" is set in filters and in a filter block; set it once`}},
		{"subnet_filter most_free without filters", map[string]any{"subnet_filter": map[string]any{"most_free": true}},
			[]string{"subnet_filter: most_free and random choose among the subnets the filters match; set filters"}},
		{"subnet_filter random without filters", map[string]any{"subnet_filter": map[string]any{"random": true}},
			[]string{"subnet_filter: most_free and random"}},
		{"check-IP URL without scheme", map[string]any{"temporary_security_group_source_public_ip": true, "temporary_security_group_source_public_ip_url": "checkip.example.com"},
			[]string{`temporary_security_group_source_public_ip_url: "checkip.example.com" must start with http:// or https://`}},
		{"check-IP URL without host", map[string]any{"temporary_security_group_source_public_ip_url": "https://"},
			[]string{`temporary_security_group_source_public_ip_url: "https://" has no host`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				raw[k] = v
			}
			_, errs := prepareRaw(t, raw)
			got := joinErrs(errs)
			if len(errs) == 0 {
				t.Fatalf("no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors do not contain %q; got:\n%s", w, got)
				}
			}
		})
	}
}

func TestNetworkConfigValid(t *testing.T) {
	tests := []struct {
		name  string
		set   map[string]any
		check func(t *testing.T, c *testConfig)
	}{
		{"security_group_id is a one-element security_group_ids", map[string]any{"security_group_id": "sg-0123456789abcdef0"}, func(t *testing.T, c *testConfig) {
			if !slices.Equal(c.SecurityGroupIDs, []string{"sg-0123456789abcdef0"}) || c.SecurityGroupID != "" {
				t.Errorf("security_group_ids = %v, security_group_id = %q", c.SecurityGroupIDs, c.SecurityGroupID)
			}
			if c.NeedsTemporarySecurityGroup() {
				t.Error("no temporary group is needed with security_group_id")
			}
		}},
		{"security_group_id not known yet", map[string]any{"security_group_id": "<unknown>"}, func(t *testing.T, c *testConfig) {
			if !slices.Equal(c.SecurityGroupIDs, []string{"<unknown>"}) {
				t.Errorf("security_group_ids = %v", c.SecurityGroupIDs)
			}
		}},
		{"filters as a map and as blocks, with comma-separated values", map[string]any{
			"security_group_filter": map[string]any{"filters": map[string]string{"tag:Class": "packer"}, "filter": []map[string]any{{"name": "group-name", "value": "ssh, winrm"}}},
			"vpc_filter":            map[string]any{"filters": map[string]string{"tag:Class": "build", "is-default": "false"}},
			"subnet_filter":         map[string]any{"filters": map[string]string{"tag:Tier": "private"}, "most_free": true, "random": true},
		}, func(t *testing.T, c *testConfig) {
			if c.NeedsTemporarySecurityGroup() {
				t.Error("no temporary group is needed with security_group_filter")
			}
			want := map[string][]string{"tag:Class": {"packer"}, "group-name": {"ssh", "winrm"}}
			if got := ec2Filters(c.SecurityGroupFilter.Filters); !reflect.DeepEqual(got, want) {
				t.Errorf("security group filters = %v, want %v", got, want)
			}
			if c.SecurityGroupFilter.Filter != nil {
				t.Errorf("filter blocks are left after merging: %v", c.SecurityGroupFilter.Filter)
			}
			if c.VpcFilter.Filters["is-default"] != "false" || c.SubnetFilter.Filters["tag:Tier"] != "private" {
				t.Errorf("vpc_filter = %v, subnet_filter = %v", c.VpcFilter, c.SubnetFilter)
			}
			if c.SubnetFilter.Choice() != instance.SubnetChoiceMostFree {
				t.Errorf("choice = %q; most_free takes precedence over random", c.SubnetFilter.Choice())
			}
		}},
		{"ids with filters: the ids take precedence at run time", map[string]any{
			"vpc_id": "vpc-0123456789abcdef0", "vpc_filter": map[string]any{"filters": map[string]string{"tag:Class": "build"}},
			"subnet_id": "subnet-0123456789abcdef0", "subnet_filter": map[string]any{"filters": map[string]string{"tag:Tier": "private"}},
			"security_group_ids": []string{"sg-0123456789abcdef0"}, "security_group_filter": map[string]any{"filters": map[string]string{"tag:Class": "packer"}},
		}, nil},
		{"public IP with source CIDRs: the CIDRs are used", map[string]any{
			"temporary_security_group_source_public_ip": true, "temporary_security_group_source_cidrs": []string{"2001:db8::/32"},
		}, nil},
		{"public IP with a loopback check-IP service", map[string]any{
			"temporary_security_group_source_public_ip": true, "temporary_security_group_source_public_ip_url": "http://127.0.0.1:8080/ip",
		}, func(t *testing.T, c *testConfig) {
			if !c.TemporarySGSourcePublicIP || c.TemporarySGSourcePublicIPURL != "http://127.0.0.1:8080/ip" || !c.NeedsTemporarySecurityGroup() {
				t.Errorf("public IP = %t from %q", c.TemporarySGSourcePublicIP, c.TemporarySGSourcePublicIPURL)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				raw[k] = v
			}
			c, errs := prepareRaw(t, raw)
			if len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%s", joinErrs(errs))
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}
