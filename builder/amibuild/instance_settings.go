//go:generate packer-sdc mapstructure-to-hcl2 -type InstanceSettings,Placement,LicenseSpecification,LicenseConfigurationRequest
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// InstanceSettings are the less common settings of the build instance,
// with the names and meanings of HashiCorp's amazon builders.
type InstanceSettings struct {
	// Launch a burstable (T family) build instance with unlimited CPU
	// credits, so that a long build is not throttled when its credits run
	// out. Only valid for T instance types.
	EnableUnlimitedCredits bool `mapstructure:"enable_unlimited_credits" required:"false"`
	// Deprecated: the former name of `enable_unlimited_credits`, accepted
	// with a warning.
	EnableT2Unlimited bool `mapstructure:"enable_t2_unlimited" required:"false"`
	// What a shutdown from inside the build instance does: `stop` (the
	// default) or `terminate`. A terminated instance cannot be imaged.
	InstanceInitiatedShutdownBehavior string `mapstructure:"shutdown_behavior" required:"false"`
	// Do not stop the build instance: the provisioners shut it down
	// themselves (for example Windows' sysprep), and the builder waits until
	// it has stopped before the AMI is created. Requires `shutdown_behavior`
	// `stop`.
	DisableStopInstance bool `mapstructure:"disable_stop_instance" required:"false"`
	// Where the build instance runs: a Dedicated Host, a host resource
	// group, or dedicated tenancy.
	//
	// ```hcl
	// placement {
	//   tenancy = "dedicated"
	// }
	// ```
	Placement Placement `mapstructure:"placement" required:"false"`
	// Deprecated: use `placement { tenancy = "…" }`. `default`, `dedicated`
	// or `host`.
	Tenancy string `mapstructure:"tenancy" required:"false"`
	// Whether the build instance may run in an open Capacity Reservation:
	// `open` or `none`. Not together with `capacity_reservation_id` or
	// `capacity_reservation_group_arn`.
	CapacityReservationPreference string `mapstructure:"capacity_reservation_preference" required:"false"`
	// Run the build instance in this Capacity Reservation, for example
	// `cr-0123456789abcdef0`.
	CapacityReservationId string `mapstructure:"capacity_reservation_id" required:"false"` // HashiCorp's name
	// Run the build instance in a Capacity Reservation of this resource
	// group (its ARN).
	CapacityReservationGroupArn string `mapstructure:"capacity_reservation_group_arn" required:"false"` // HashiCorp's name
	// Turn on AWS Nitro Enclaves for the build instance.
	EnableNitroEnclave bool `mapstructure:"enable_nitro_enclave" required:"false"`
	// License Manager configurations the build instance is counted
	// against, one block each.
	//
	// ```hcl
	// license_specifications {
	//   license_configuration_request {
	//     license_configuration_arn = "arn:aws:license-manager:eu-west-1:123456789012:license-configuration:lic-0123456789abcdef0123456789abcdef"
	//   }
	// }
	// ```
	LicenseSpecifications []LicenseSpecification `mapstructure:"license_specifications" required:"false"`
}

// Placement places the build instance.
type Placement struct {
	// The ARN of a host resource group to launch the instance in; implies
	// tenancy `host`.
	HostResourceGroupArn string `mapstructure:"host_resource_group_arn" required:"false"` // HashiCorp's name
	// The ID of the Dedicated Host to launch the instance on, for example
	// `h-0123456789abcdef0`; implies tenancy `host`.
	HostId string `mapstructure:"host_id" required:"false"` // HashiCorp's name
	// `default`, `dedicated` or `host`.
	Tenancy string `mapstructure:"tenancy" required:"false"`
}

// LicenseSpecification names a License Manager configuration.
type LicenseSpecification struct {
	// The configuration.
	LicenseConfigurationRequest LicenseConfigurationRequest `mapstructure:"license_configuration_request" required:"false"`
}

// LicenseConfigurationRequest holds the ARN of a license configuration.
type LicenseConfigurationRequest struct {
	// The ARN of the license configuration.
	LicenseConfigurationArn string `mapstructure:"license_configuration_arn" required:"false"` // HashiCorp's name
}

var (
	capacityReservationIDRE = regexp.MustCompile(`^cr-[0-9a-f]{8,17}$`)
	hostIDRE                = regexp.MustCompile(`^h-[0-9a-f]{8,17}$`)
	licenseConfigARNRE      = regexp.MustCompile(`^arn:aws[a-z-]*:license-manager:[a-z0-9-]+:\d{12}:license-configuration:lic-[0-9a-f]{32}$`)
	resourceGroupARNRE      = regexp.MustCompile(`^arn:aws[a-z-]*:resource-groups:[a-z0-9-]+:\d{12}:group/[A-Za-z0-9_.-]+$`)
)

// prepare validates the settings for instanceType, and returns warnings.
func (s *InstanceSettings) prepare(instanceType string) (errs []error, warnings []string) {
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.EnableT2Unlimited {
		warnings = append(warnings, "enable_t2_unlimited is deprecated; use enable_unlimited_credits")
		s.EnableUnlimitedCredits = true
	}
	if s.EnableUnlimitedCredits && instanceType != "" && !amiconfig.Unknown(instanceType) && !strings.HasPrefix(strings.ToLower(instanceType), "t") {
		add("enable_unlimited_credits: %q is not a burstable (T family) instance type; unlimited credits apply to T instances only", instanceType)
	}
	switch s.InstanceInitiatedShutdownBehavior {
	case "", "stop", "terminate":
	default:
		add("shutdown_behavior: %q is invalid; valid are \"stop\" and \"terminate\"", s.InstanceInitiatedShutdownBehavior)
	}
	if s.DisableStopInstance && s.InstanceInitiatedShutdownBehavior == "terminate" {
		add("disable_stop_instance: the provisioners shut the instance down, which shutdown_behavior = \"terminate\" would terminate before the AMI is created; use \"stop\"")
	}
	if s.Tenancy != "" {
		warnings = append(warnings, "tenancy is deprecated; use placement { tenancy = \""+s.Tenancy+"\" }")
		if s.Placement.Tenancy != "" && s.Placement.Tenancy != s.Tenancy {
			add("tenancy, placement.tenancy: set one of them (placement.tenancy is the current name)")
		}
		if s.Placement.Tenancy == "" {
			s.Placement.Tenancy = s.Tenancy
		}
	}
	p := &s.Placement
	switch p.Tenancy {
	case "", "default", "dedicated", "host":
	default:
		add("placement.tenancy: %q is invalid; valid are \"default\", \"dedicated\" and \"host\"", p.Tenancy)
	}
	if (p.HostId != "" || p.HostResourceGroupArn != "") && p.Tenancy != "" && p.Tenancy != "host" {
		add("placement.tenancy: %q does not go with host_id or host_resource_group_arn, which need tenancy \"host\"", p.Tenancy)
	}
	if p.HostId != "" && !amiconfig.Matches(hostIDRE, p.HostId) {
		add("placement.host_id: %q is not a Dedicated Host ID (h-…)", p.HostId)
	}
	if p.HostResourceGroupArn != "" && !amiconfig.Matches(resourceGroupARNRE, p.HostResourceGroupArn) {
		add("placement.host_resource_group_arn: %q is not a resource group ARN (arn:aws:resource-groups:REGION:ACCOUNT:group/NAME)", p.HostResourceGroupArn)
	}
	if p.HostId != "" && p.HostResourceGroupArn != "" {
		add("placement: set host_id or host_resource_group_arn, not both")
	}
	set := 0
	for _, v := range []string{s.CapacityReservationPreference, s.CapacityReservationId, s.CapacityReservationGroupArn} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		add("capacity_reservation_preference, capacity_reservation_id, capacity_reservation_group_arn: set at most one of them")
	}
	switch s.CapacityReservationPreference {
	case "", "open", "none":
	default:
		add("capacity_reservation_preference: %q is invalid; valid are \"open\" and \"none\"", s.CapacityReservationPreference)
	}
	if s.CapacityReservationId != "" && !amiconfig.Matches(capacityReservationIDRE, s.CapacityReservationId) {
		add("capacity_reservation_id: %q is not a Capacity Reservation ID (cr-…)", s.CapacityReservationId)
	}
	if s.CapacityReservationGroupArn != "" && !amiconfig.Matches(resourceGroupARNRE, s.CapacityReservationGroupArn) {
		add("capacity_reservation_group_arn: %q is not a resource group ARN (arn:aws:resource-groups:REGION:ACCOUNT:group/NAME)", s.CapacityReservationGroupArn)
	}
	for i, l := range s.LicenseSpecifications {
		arn := l.LicenseConfigurationRequest.LicenseConfigurationArn
		switch {
		case arn == "":
			add("license_specifications[%d].license_configuration_request.license_configuration_arn: required", i)
		case !amiconfig.Matches(licenseConfigARNRE, arn):
			add("license_specifications[%d].license_configuration_request.license_configuration_arn: %q is not a license configuration ARN (arn:aws:license-manager:REGION:ACCOUNT:license-configuration:lic-…)", i, arn)
		}
	}
	return errs, warnings
}

// Launch returns the SDK's launch settings; nil when none is set.
func (s *InstanceSettings) Launch() *instance.LaunchSettings {
	ls := &instance.LaunchSettings{
		UnlimitedCredits:              s.EnableUnlimitedCredits,
		ShutdownBehavior:              s.InstanceInitiatedShutdownBehavior,
		Tenancy:                       s.Placement.Tenancy,
		HostID:                        s.Placement.HostId,
		HostResourceGroupARN:          s.Placement.HostResourceGroupArn,
		CapacityReservationPreference: s.CapacityReservationPreference,
		CapacityReservationID:         s.CapacityReservationId,
		CapacityReservationGroupARN:   s.CapacityReservationGroupArn,
		NitroEnclave:                  s.EnableNitroEnclave,
	}
	for _, l := range s.LicenseSpecifications {
		ls.LicenseConfigurationARNs = append(ls.LicenseConfigurationARNs, l.LicenseConfigurationRequest.LicenseConfigurationArn)
	}
	if reflect.ValueOf(*ls).IsZero() {
		return nil
	}
	return ls
}
