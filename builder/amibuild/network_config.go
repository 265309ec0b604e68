//go:generate packer-sdc mapstructure-to-hcl2 -type NetworkConfig,NetworkFilter,SubnetFilter
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"encoding/csv"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/template/config"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// NetworkConfig finds the network of the build instance by filters rather
// than by ID, as HashiCorp's amazon builders do: the VPC (`vpc_filter`),
// then the subnet in it (`subnet_filter`), then the security groups in
// that VPC (`security_group_filter`). An ID, where given, takes precedence
// over the filter for the same thing. Filter values may list several
// values separated by commas; a resource matches when it matches every
// filter and, per filter, any of its values.
//
// Without `subnet_id` or `subnet_filter`, and with
// `associate_public_ip_address` set, the subnet with the most free
// addresses of the VPC (`vpc_id`, `vpc_filter` or the default VPC) is
// chosen, in `availability_zone` when it is set and in a zone that offers
// `instance_type`. A non-default VPC needs a subnet: an instance launched
// without one runs in the default VPC.
type NetworkConfig struct {
	// The ID of one existing security group for the build instance, such as
	// `sg-0123456789abcdef0`: the same as `security_group_ids` with one
	// element. Set one of the two, not both. The group must admit the
	// communicator port from the machine running Packer.
	SecurityGroupID string `mapstructure:"security_group_id" required:"false"`
	// Find the security groups of the build instance by
	// [DescribeSecurityGroups](https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSecurityGroups.html)
	// filters; every matching group of the instance's VPC is attached, and
	// a filter that matches none is an error. `security_group_ids` and
	// `security_group_id` take precedence over it.
	//
	// ```hcl
	// security_group_filter {
	//   filters = {
	//     "tag:Class" = "packer"
	//   }
	// }
	// ```
	SecurityGroupFilter NetworkFilter `mapstructure:"security_group_filter" required:"false"`
	// Find the subnet of the build instance by
	// [DescribeSubnets](https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSubnets.html)
	// filters, among the available subnets of the VPC (when `vpc_id` or
	// `vpc_filter` names one) and of `availability_zone` (when set). The
	// filters must match exactly one subnet unless `most_free` or `random`
	// chooses among those they match. `subnet_id` takes precedence over it.
	//
	// ```hcl
	// subnet_filter {
	//   filters = {
	//     "tag:Tier" = "private"
	//   }
	//   most_free = true
	// }
	// ```
	SubnetFilter SubnetFilter `mapstructure:"subnet_filter" required:"false"`
	// Find the VPC of the build instance by
	// [DescribeVpcs](https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeVpcs.html)
	// filters; exactly one VPC must match. The subnet (`subnet_filter`) and
	// the security groups (`security_group_filter` or the temporary group)
	// are then looked for in it. `vpc_id` takes precedence over it.
	//
	// ```hcl
	// vpc_filter {
	//   filters = {
	//     "tag:Class"  = "build"
	//     "is-default" = "false"
	//   }
	// }
	// ```
	VpcFilter NetworkFilter `mapstructure:"vpc_filter" required:"false"`
	// Admit only the public IP address of the machine running Packer into
	// the temporary security group: Packer asks
	// `temporary_security_group_source_public_ip_url` for it and opens the
	// communicator port to that address alone (a /32, or a /128 for an IPv6
	// address). Only used when Packer creates the temporary security group
	// and `temporary_security_group_source_cidrs` is empty.
	TemporarySGSourcePublicIP bool `mapstructure:"temporary_security_group_source_public_ip" required:"false"`
	// The URL that answers a GET with the caller's public IP address as
	// plain text, for `temporary_security_group_source_public_ip`. Defaults
	// to `https://checkip.amazonaws.com`, the service HashiCorp's builders
	// use.
	TemporarySGSourcePublicIPURL string `mapstructure:"temporary_security_group_source_public_ip_url" required:"false"`
}

// NetworkFilter holds EC2 Describe* filters, as a map, as repeatable
// `filter` blocks, or both.
type NetworkFilter struct {
	// Filters, name to value, such as `"tag:Class" = "build"`. Several
	// values are separated by commas (`"cidr-block" = "10.1.0.0/16,
	// 10.2.0.0/16"`); `*` and `?` are wildcards.
	Filters map[string]string `mapstructure:"filters" required:"false"`
	// The same as `filters`, as repeatable `filter { name = "…" value = "…"
	// }` blocks. A name may be set in `filters` or in a block, not both.
	Filter config.NameValues `mapstructure:"filter" required:"false"`
}

// SubnetFilter holds DescribeSubnets filters and how to choose among the
// subnets they match.
type SubnetFilter struct {
	// Filters, name to value, such as `"tag:Tier" = "private"`. Several
	// values are separated by commas; `*` and `?` are wildcards.
	Filters map[string]string `mapstructure:"filters" required:"false"`
	// The same as `filters`, as repeatable `filter { name = "…" value = "…"
	// }` blocks. A name may be set in `filters` or in a block, not both.
	Filter config.NameValues `mapstructure:"filter" required:"false"`
	// When the filters match several subnets, take the one with the most
	// free IPv4 addresses. Takes precedence over `random`.
	MostFree bool `mapstructure:"most_free" required:"false"`
	// When the filters match several subnets, take one at random.
	Random bool `mapstructure:"random" required:"false"`
}

// Empty reports whether no filter is set.
func (f *NetworkFilter) Empty() bool { return len(f.Filters) == 0 && len(f.Filter) == 0 }

// Empty reports whether no filter option is set.
func (f *SubnetFilter) Empty() bool {
	return len(f.Filters) == 0 && len(f.Filter) == 0 && !f.MostFree && !f.Random
}

// Choice returns how SelectNetwork chooses among the matching subnets.
func (f *SubnetFilter) Choice() instance.SubnetChoice {
	switch {
	case f.MostFree:
		return instance.SubnetChoiceMostFree
	case f.Random:
		return instance.SubnetChoiceRandom
	}
	return instance.SubnetChoiceOnly
}

// prepare checks the network options and folds security_group_id into
// run.SecurityGroupIDs. It runs after run's own checks of the IDs.
func (n *NetworkConfig) prepare(run *RunConfig) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if id := n.SecurityGroupID; id != "" {
		switch {
		case len(run.SecurityGroupIDs) > 0:
			add("security_group_id, security_group_ids: set one of them, not both")
		case !amiconfig.Matches(sgIDRE, id):
			add("security_group_id: %q is not a security group ID; expected \"sg-\" and 8 or 17 hex digits", id)
		case len(run.TemporarySGSourceCIDRs) > 0:
			add("temporary_security_group_source_cidrs: only used for the temporary security group; not valid together with security_group_id")
		default:
			run.SecurityGroupIDs = []string{id}
			n.SecurityGroupID = ""
		}
	}
	if len(n.SecurityGroupFilter.Filters) > 0 || len(n.SecurityGroupFilter.Filter) > 0 {
		if len(run.TemporarySGSourceCIDRs) > 0 || n.TemporarySGSourcePublicIP {
			add("temporary_security_group_source_cidrs, temporary_security_group_source_public_ip: only used for the temporary security group, which security_group_filter replaces; remove them")
		}
	}
	errs = append(errs, n.SecurityGroupFilter.prepare("security_group_filter")...)
	errs = append(errs, n.VpcFilter.prepare("vpc_filter")...)
	sf := NetworkFilter{Filters: n.SubnetFilter.Filters, Filter: n.SubnetFilter.Filter}
	errs = append(errs, sf.prepare("subnet_filter")...)
	n.SubnetFilter.Filters, n.SubnetFilter.Filter = sf.Filters, sf.Filter
	if (n.SubnetFilter.MostFree || n.SubnetFilter.Random) && len(n.SubnetFilter.Filters) == 0 {
		add("subnet_filter: most_free and random choose among the subnets the filters match; set filters")
	}
	if u := n.TemporarySGSourcePublicIPURL; u != "" && !amiconfig.Unknown(u) {
		p, err := url.Parse(u)
		switch {
		case err != nil:
			add("temporary_security_group_source_public_ip_url: %q is not a URL: %v", u, err)
		case p.Scheme != "http" && p.Scheme != "https":
			add("temporary_security_group_source_public_ip_url: %q must start with http:// or https://", u)
		case p.Host == "":
			add("temporary_security_group_source_public_ip_url: %q has no host", u)
		}
	}
	return errs
}

// prepare merges the filter blocks into Filters and checks every filter.
func (f *NetworkFilter) prepare(field string) []error {
	var errs []error
	for i, nv := range f.Filter {
		switch _, inMap := f.Filters[nv.Name]; {
		case strings.TrimSpace(nv.Name) == "":
			errs = append(errs, fmt.Errorf("%s.filter[%d].name: required", field, i))
			continue
		case inMap:
			errs = append(errs, fmt.Errorf("%s: filter %q is set in filters and in a filter block; set it once", field, nv.Name))
			continue
		}
		if f.Filters == nil {
			f.Filters = map[string]string{}
		}
		f.Filters[nv.Name] = nv.Value
	}
	f.Filter = nil
	names := make([]string, 0, len(f.Filters))
	for k := range f.Filters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch v := f.Filters[k]; {
		case strings.TrimSpace(k) == "":
			errs = append(errs, fmt.Errorf("%s.filters: a filter name is empty", field))
		case strings.TrimSpace(v) == "":
			errs = append(errs, fmt.Errorf("%s.filters: the value of %q is empty", field, k))
		default:
			if _, err := filterValues(v); err != nil {
				errs = append(errs, fmt.Errorf("%s.filters: the value of %q is not a comma-separated list: %v", field, k, err))
			}
		}
	}
	return errs
}

// filterValues splits a filter value at commas, as CSV: spaces after a
// comma are dropped, and a value in double quotes may contain commas.
func filterValues(v string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(v))
	r.TrimLeadingSpace = true
	r.LazyQuotes = true
	return r.Read()
}

// ec2Filters returns the filters with their values split at commas. It is
// used after prepare, which has checked that the values split.
func ec2Filters(filters map[string]string) map[string][]string {
	if len(filters) == 0 {
		return nil
	}
	out := make(map[string][]string, len(filters))
	for k, v := range filters {
		vals, err := filterValues(v)
		if err != nil {
			vals = []string{v}
		}
		out[k] = vals
	}
	return out
}
