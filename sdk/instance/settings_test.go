//go:build unix

package instance

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestLaunchSettingsApply(t *testing.T) {
	req := &ec2.RunInstancesInput{}
	(*LaunchSettings)(nil).apply(req)
	if req.CreditSpecification != nil || req.Placement != nil {
		t.Fatal("nil settings changed the request")
	}
	s := &LaunchSettings{
		UnlimitedCredits: true, ShutdownBehavior: "terminate", Tenancy: "host", HostID: "h-0123456789abcdef0",
		CapacityReservationID: "cr-0123456789abcdef0", NitroEnclave: true,
		LicenseConfigurationARNs: []string{"arn:1", "arn:2"}, NoEphemeral: true,
	}
	req = &ec2.RunInstancesInput{}
	s.apply(req)
	if aws.ToString(req.CreditSpecification.CpuCredits) != "unlimited" || req.InstanceInitiatedShutdownBehavior != "terminate" {
		t.Errorf("credits/shutdown: %+v %v", req.CreditSpecification, req.InstanceInitiatedShutdownBehavior)
	}
	if req.Placement.Tenancy != "host" || aws.ToString(req.Placement.HostId) != "h-0123456789abcdef0" {
		t.Errorf("placement %+v", req.Placement)
	}
	if aws.ToString(req.CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId) != "cr-0123456789abcdef0" || req.CapacityReservationSpecification.CapacityReservationPreference != "" {
		t.Errorf("capacity reservation %+v", req.CapacityReservationSpecification)
	}
	if !aws.ToBool(req.EnclaveOptions.Enabled) || len(req.LicenseSpecifications) != 2 {
		t.Errorf("enclave %+v licenses %+v", req.EnclaveOptions, req.LicenseSpecifications)
	}
	if len(req.BlockDeviceMappings) != 26 || aws.ToString(req.BlockDeviceMappings[0].DeviceName) != "xvdca" || req.BlockDeviceMappings[0].NoDevice == nil {
		t.Errorf("no_ephemeral mappings %+v", req.BlockDeviceMappings)
	}

	// An availability zone already set stays.
	req = &ec2.RunInstancesInput{Placement: &types.Placement{AvailabilityZone: aws.String("us-east-1a")}}
	(&LaunchSettings{CapacityReservationPreference: "none", Tenancy: "dedicated"}).apply(req)
	if req.CapacityReservationSpecification.CapacityReservationPreference != "none" || req.Placement.Tenancy != "dedicated" || aws.ToString(req.Placement.AvailabilityZone) != "us-east-1a" {
		t.Errorf("preference %+v placement %+v", req.CapacityReservationSpecification, req.Placement)
	}
}

// TestLaunchSettingsInTemplate: the settings reach a launch template as
// they reach a RunInstances request, next to the zone already placed.
func TestLaunchSettingsInTemplate(t *testing.T) {
	d := launchTemplateData(&RunInput{AvailabilityZone: "us-east-1b", Settings: &LaunchSettings{
		Tenancy: "dedicated", CapacityReservationPreference: "none", ShutdownBehavior: "stop",
		LicenseConfigurationARNs: []string{"arn:1"}, NoEphemeral: true,
	}})
	if d.Placement.Tenancy != "dedicated" || aws.ToString(d.Placement.AvailabilityZone) != "us-east-1b" {
		t.Errorf("placement %+v", d.Placement)
	}
	if d.CapacityReservationSpecification.CapacityReservationPreference != "none" || d.InstanceInitiatedShutdownBehavior != "stop" {
		t.Errorf("capacity %+v shutdown %v", d.CapacityReservationSpecification, d.InstanceInitiatedShutdownBehavior)
	}
	if len(d.LicenseSpecifications) != 1 || len(d.BlockDeviceMappings) != 26 {
		t.Errorf("licenses %+v, %d mappings", d.LicenseSpecifications, len(d.BlockDeviceMappings))
	}
	d = launchTemplateData(&RunInput{})
	if d.Placement != nil || d.CreditSpecification != nil {
		t.Error("nil settings changed the template")
	}
}

func TestFleetLaunchErrorProfileNotReady(t *testing.T) {
	for _, tc := range []struct {
		errs []FleetLaunchFailure
		want bool
	}{
		{nil, false},
		{[]FleetLaunchFailure{{Code: "InvalidParameterValue", Message: "Value (packer-1) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"}}, true},
		{[]FleetLaunchFailure{{Code: "InvalidParameterValue", Message: "Invalid IAM Instance Profile name"}, {Code: "InsufficientInstanceCapacity"}}, false},
		{[]FleetLaunchFailure{{Code: "InvalidParameterValue", Message: "Invalid value for subnet"}}, false},
		{[]FleetLaunchFailure{{Code: "InvalidLaunchTemplateConfiguration", Message: "Invalid IAM Instance Profile name"}}, true},
	} {
		if got := (&FleetLaunchError{Errors: tc.errs}).ProfileNotReady(); got != tc.want {
			t.Errorf("ProfileNotReady(%+v) = %v, want %v", tc.errs, got, tc.want)
		}
	}
}
