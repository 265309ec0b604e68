package instance

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// LaunchSettings are the less common settings of an instance launch. The
// zero value asks for none of them.
type LaunchSettings struct {
	// UnlimitedCredits launches a burstable (T) instance with unlimited CPU
	// credits.
	UnlimitedCredits bool
	// ShutdownBehavior is what an operating-system shutdown does: "stop"
	// or "terminate". "" is EC2's default, stop.
	ShutdownBehavior string
	// Tenancy is "default", "dedicated" or "host"; "" is the VPC's.
	Tenancy string
	// HostID places the instance on this Dedicated Host.
	HostID string
	// HostResourceGroupARN places the instance in this host resource group.
	HostResourceGroupARN string
	// CapacityReservationPreference is "open" or "none" ("" is EC2's
	// default, open). Not together with a reservation target.
	CapacityReservationPreference string
	// CapacityReservationID launches into this Capacity Reservation.
	CapacityReservationID string
	// CapacityReservationGroupARN launches into a reservation of this
	// resource group.
	CapacityReservationGroupARN string
	// NitroEnclave turns on AWS Nitro Enclaves.
	NitroEnclave bool
	// LicenseConfigurationARNs are License Manager configurations the
	// instance is counted against.
	LicenseConfigurationARNs []string
	// NoEphemeral adds mappings that leave out the instance store volumes
	// EC2 would otherwise attach (xvdca to xvdcz), as Windows images want.
	NoEphemeral bool
}

// apply sets the settings on a RunInstances request.
func (s *LaunchSettings) apply(req *ec2.RunInstancesInput) {
	if s == nil {
		return
	}
	if s.UnlimitedCredits {
		req.CreditSpecification = &types.CreditSpecificationRequest{CpuCredits: aws.String("unlimited")}
	}
	if s.ShutdownBehavior != "" {
		req.InstanceInitiatedShutdownBehavior = types.ShutdownBehavior(s.ShutdownBehavior)
	}
	if s.Tenancy != "" || s.HostID != "" || s.HostResourceGroupARN != "" {
		if req.Placement == nil {
			req.Placement = &types.Placement{}
		}
		if s.Tenancy != "" {
			req.Placement.Tenancy = types.Tenancy(s.Tenancy)
		}
		if s.HostID != "" {
			req.Placement.HostId = aws.String(s.HostID)
		}
		if s.HostResourceGroupARN != "" {
			req.Placement.HostResourceGroupArn = aws.String(s.HostResourceGroupARN)
		}
	}
	switch {
	case s.CapacityReservationID != "":
		req.CapacityReservationSpecification = &types.CapacityReservationSpecification{
			CapacityReservationTarget: &types.CapacityReservationTarget{CapacityReservationId: aws.String(s.CapacityReservationID)},
		}
	case s.CapacityReservationGroupARN != "":
		req.CapacityReservationSpecification = &types.CapacityReservationSpecification{
			CapacityReservationTarget: &types.CapacityReservationTarget{CapacityReservationResourceGroupArn: aws.String(s.CapacityReservationGroupARN)},
		}
	case s.CapacityReservationPreference != "":
		req.CapacityReservationSpecification = &types.CapacityReservationSpecification{
			CapacityReservationPreference: types.CapacityReservationPreference(s.CapacityReservationPreference),
		}
	}
	if s.NitroEnclave {
		req.EnclaveOptions = &types.EnclaveOptionsRequest{Enabled: aws.Bool(true)}
	}
	for _, arn := range s.LicenseConfigurationARNs {
		req.LicenseSpecifications = append(req.LicenseSpecifications, types.LicenseConfigurationRequest{LicenseConfigurationArn: aws.String(arn)})
	}
	if s.NoEphemeral {
		req.BlockDeviceMappings = append(req.BlockDeviceMappings, NoEphemeralMappings()...)
	}
}

// NoEphemeralMappings returns mappings that suppress the instance store
// volumes EC2 attaches by default (device names xvdca to xvdcz).
func NoEphemeralMappings() []types.BlockDeviceMapping {
	out := make([]types.BlockDeviceMapping, 0, 26)
	for c := 'a'; c <= 'z'; c++ {
		out = append(out, types.BlockDeviceMapping{DeviceName: aws.String("xvdc" + string(c)), NoDevice: aws.String("")})
	}
	return out
}
