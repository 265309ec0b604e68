package amibuild

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/config"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// StepSelectNetwork finds where the build instance runs: the VPC, subnet and
// availability zone given or found by vpc_filter and subnet_filter (see
// instance.SelectNetwork). It creates nothing.
//
// State used: StateSession, StateUI.
// State produced: StateNetwork.
type StepSelectNetwork struct {
	// Region is the build region.
	Region string
	// Config is the run configuration.
	Config *RunConfig
}

// Run implements multistep.Step.
func (s *StepSelectNetwork) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	cfg := s.Config
	in := &instance.SelectNetworkInput{
		VPCID:            cfg.VpcID,
		VPCFilters:       ec2Filters(cfg.VpcFilter.Filters),
		SubnetID:         cfg.SubnetID,
		SubnetFilters:    ec2Filters(cfg.SubnetFilter.Filters),
		SubnetChoice:     cfg.SubnetFilter.Choice(),
		AvailabilityZone: cfg.AvailabilityZone,
		// As HashiCorp's builders do: a public IP choice without a subnet
		// gets a subnet of the VPC.
		InferSubnet:   cfg.AssociatePublicIPAddress != config.TriUnset,
		InstanceType:  cfg.InstanceType,
		InstanceTypes: cfg.SpotInstanceTypes,
	}
	if in.VPCID != "" && len(in.VPCFilters) > 0 {
		u.Say("vpc_id is set, so vpc_filter is not used")
	}
	if in.SubnetID != "" && len(in.SubnetFilters) > 0 {
		u.Say("subnet_id is set, so subnet_filter is not used")
	}
	if in.VPCID == "" && in.SubnetID == "" && len(in.VPCFilters) == 0 && len(in.SubnetFilters) == 0 && !in.InferSubnet {
		// AWS's defaults; nothing to look up.
		StateNetwork.Put(state, instance.SelectNetworkOutput{AvailabilityZone: in.AvailabilityZone})
		return multistep.ActionContinue
	}
	api, err := EC2Client(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	out, err := instance.SelectNetwork(ctx, api, in)
	if err != nil {
		return Halt(state, u, fmt.Errorf("choose the network of the build instance: %w", err))
	}
	if cfg.VpcID == "" && out.VPCID != "" && len(in.VPCFilters) > 0 {
		u.Sayf("Found VPC %s", out.VPCID)
	}
	if cfg.SubnetID == "" && out.SubnetID != "" {
		u.Sayf("Using subnet %s in %s (VPC %s)", out.SubnetID, out.AvailabilityZone, out.VPCID)
	}
	StateNetwork.Put(state, *out)
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *StepSelectNetwork) Cleanup(multistep.StateBag) {}
