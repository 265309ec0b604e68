//go:generate packer-sdc mapstructure-to-hcl2 -type SpotConfig
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// SpotConfig makes the build instance a spot instance, as HashiCorp's
// amazon builders do. With `spot_price` set (and not `"0"`), the builder
// creates a launch template for the build and an EC2 Fleet of type
// `instant` that launches one spot instance from it, on `instance_type` or
// on one of `spot_instance_types`. The fleet, the instance and the launch
// template are removed when the build ends, whatever its outcome.
//
// ami-ebs does not stop a spot build instance before it creates the AMI:
// EC2 cannot stop the one-time spot instance of an instant fleet, so
// CreateImage reboots the running instance instead. For the same reason
// ami-ebs refuses `ena_support` and `sriov_support` with a spot instance:
// it sets them on the stopped instance.
//
// The caller needs `ec2:CreateLaunchTemplate`, `ec2:DeleteLaunchTemplate`,
// `ec2:DescribeLaunchTemplates`, `ec2:CreateFleet`, `ec2:DescribeFleets` and
// `ec2:DeleteFleets` on top of the builder's usual permissions (see
// example/iam).
type SpotConfig struct {
	// The highest price per instance-hour, in US dollars, that you are
	// willing to pay for the spot build instance, for example `"0.05"`, or
	// `"auto"` for at most the on-demand price of the instance type. EC2
	// charges the current spot price, not this maximum; when the spot price
	// is above it, no instance is launched and the build fails. Empty or
	// `"0"` launches an on-demand instance.
	SpotPrice string `mapstructure:"spot_price" required:"false"`
	// The instance types the spot build instance may have, for example
	// `["c6i.xlarge", "c5.xlarge"]`: the fleet launches the one that the
	// allocation strategy picks among those with spot capacity, which helps
	// when one type has no capacity in the zone. Used in place of
	// `instance_type`; set one of the two, not both. Needs `spot_price`.
	SpotInstanceTypes []string `mapstructure:"spot_instance_types" required:"false"`
	// How the fleet picks the spot pool (instance type and zone) it
	// launches from: `price-capacity-optimized`, `capacity-optimized`,
	// `diversified` or `lowest-price`. Empty uses EC2's default,
	// `lowest-price`.
	SpotAllocationStrategy string `mapstructure:"spot_allocation_strategy" required:"false"`
	// Tags for the spot request and the temporary launch template. Values
	// may use the build variables, for example `{{ .SourceAMIName }}`. Only
	// valid with `spot_price`.
	SpotTags map[string]string `mapstructure:"spot_tags" required:"false"`
	// The same as `spot_tags`, as repeatable `spot_tag { key = "…" value =
	// "…" }` blocks.
	SpotTag config.KeyValues `mapstructure:"spot_tag" required:"false"`
	// Tags for the EC2 Fleet that launches the spot instance. Values may use
	// the build variables. Only valid with `spot_price`.
	FleetTags map[string]string `mapstructure:"fleet_tags" required:"false"`
	// The same as `fleet_tags`, as repeatable `fleet_tag` blocks.
	FleetTag config.KeyValues `mapstructure:"fleet_tag" required:"false"`
	// Deprecated and ignored, with a warning, as in HashiCorp's builders: the
	// fleet finds the spot price by itself. It once named the product
	// (`Linux/UNIX` and so on) whose price `spot_price = "auto"` used.
	SpotPriceAutoProduct string `mapstructure:"spot_price_auto_product" required:"false"`
	// Deprecated and ignored, with a warning: the duration of a spot block
	// in minutes, a multiple of 60. AWS no longer offers spot blocks
	// (defined-duration spot instances).
	BlockDurationMinutes int64 `mapstructure:"block_duration_minutes" required:"false"`
}

// spotPriceRE matches a price in US dollars such as "0.05" or "1".
var spotPriceRE = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// SpotPriceAuto is the spot_price that caps the price at the on-demand
// price.
const SpotPriceAuto = "auto"

// IsSpotInstance reports whether the build instance is a spot instance:
// spot_price is set and not "0". A spot_price not known yet (during packer
// validate) counts as set.
func (c *SpotConfig) IsSpotInstance() bool { return c.SpotPrice != "" && c.SpotPrice != "0" }

// SpotMaxPrice returns the maximum price to ask for: "" for the on-demand
// price ("auto") or an on-demand instance, else spot_price.
func (c *SpotConfig) SpotMaxPrice() string {
	if !c.IsSpotInstance() || c.SpotPrice == SpotPriceAuto {
		return ""
	}
	return c.SpotPrice
}

// prepare checks the spot options. instanceType is the run configuration's
// instance_type.
func (c *SpotConfig) prepare(ctx *interpolate.Context, instanceType string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if p := c.SpotPrice; p != "" && p != SpotPriceAuto && !amiconfig.Matches(spotPriceRE, p) {
		add("spot_price: %q is not a price; valid are a price in US dollars per hour such as \"0.05\", \"auto\" (at most the on-demand price), and \"0\" or empty for an on-demand instance", p)
	}
	if len(c.SpotInstanceTypes) > 0 {
		if instanceType != "" {
			add("instance_type, spot_instance_types: set one of them, not both")
		}
		if !c.IsSpotInstance() {
			add("spot_instance_types: only valid with spot_price; set spot_price (for example \"auto\"), or use instance_type for an on-demand instance")
		}
	}
	for i, it := range c.SpotInstanceTypes {
		switch {
		case !amiconfig.Matches(instanceTypeRE, it):
			add("spot_instance_types[%d]: %q is not an instance type; expected family.size like \"c6i.xlarge\"", i, it)
		case slices.Index(c.SpotInstanceTypes, it) < i:
			add("spot_instance_types[%d]: %q is listed twice", i, it)
		}
	}
	if s := c.SpotAllocationStrategy; s != "" && !amiconfig.Unknown(s) && !slices.Contains(instance.SpotAllocationStrategies, s) {
		add("spot_allocation_strategy: %q is unknown; valid are %s", s, strings.Join(instance.SpotAllocationStrategies, ", "))
	}
	if c.BlockDurationMinutes < 0 || c.BlockDurationMinutes%60 != 0 {
		add("block_duration_minutes: %d is not a multiple of 60 (the option is deprecated and ignored; remove it)", c.BlockDurationMinutes)
	}

	errs = append(errs, mergeTagBlocks("spot_tags", "spot_tag", &c.SpotTags, c.SpotTag)...)
	errs = append(errs, mergeTagBlocks("fleet_tags", "fleet_tag", &c.FleetTags, c.FleetTag)...)
	if !c.IsSpotInstance() {
		if len(c.SpotTags) > 0 {
			add("spot_tags: only valid with spot_price; an on-demand instance has no spot request")
		}
		if len(c.FleetTags) > 0 {
			add("fleet_tags: only valid with spot_price; an on-demand instance is launched without a fleet")
		}
	}
	errs = append(errs, checkTags(ctx, "spot_tags", c.SpotTags)...)
	errs = append(errs, checkTags(ctx, "fleet_tags", c.FleetTags)...)
	return errs
}

// SpotWarnings returns the warnings for the deprecated spot options that
// are set.
func (c *SpotConfig) SpotWarnings() []string {
	var w []string
	if c.SpotPriceAutoProduct != "" {
		w = append(w, "spot_price_auto_product is deprecated and ignored: the fleet finds the spot price by itself; remove it")
	}
	if c.BlockDurationMinutes != 0 {
		w = append(w, "block_duration_minutes is deprecated and ignored: AWS no longer offers spot blocks; remove it")
	}
	return w
}
