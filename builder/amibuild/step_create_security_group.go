package amibuild

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/uuid"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// securityGroupDeleteWait bounds how long Cleanup retries deleting the
// temporary security group while the terminated instance still holds it.
const securityGroupDeleteWait = 5 * time.Minute

// StepCreateSecurityGroup passes on the configured security groups or, when
// there are none and a communicator is used, creates a temporary security
// group that admits the communicator port from SourceCIDRs. The temporary
// group is always deleted in Cleanup (after the instance is terminated,
// since Cleanup runs in reverse order).
//
// State used: StateSession, StateUI.
// State produced: StateSecurityGroupIDs (unset when AWS's default group is
// used).
type StepCreateSecurityGroup struct {
	// Region is the build region.
	Region string
	// Comm is the communicator configuration; its port is opened.
	Comm *communicator.Config
	// SecurityGroupIDs are existing groups; when set nothing is created.
	SecurityGroupIDs []string
	// VpcID is the VPC of the temporary group; empty uses SubnetID's VPC,
	// or the default VPC.
	VpcID string
	// SubnetID is the subnet the instance is launched in.
	SubnetID string
	// SourceCIDRs are admitted by the temporary group; empty admits any
	// address.
	SourceCIDRs []string
	// NoIngress creates the temporary group without inbound rules, for an
	// instance reached through Session Manager.
	NoIngress bool

	created string
}

// Run implements multistep.Step.
func (s *StepCreateSecurityGroup) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	if len(s.SecurityGroupIDs) > 0 {
		StateSecurityGroupIDs.Put(state, s.SecurityGroupIDs)
		return multistep.ActionContinue
	}
	if s.Comm.Type == "none" {
		return multistep.ActionContinue
	}
	api, err := EC2Client(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	vpc := s.VpcID
	if vpc == "" && s.SubnetID != "" {
		subnet, err := instance.DescribeSubnet(ctx, api, &instance.DescribeSubnetInput{SubnetID: s.SubnetID})
		if err != nil {
			return Halt(state, u, fmt.Errorf("find the VPC of subnet_id for the temporary security group: %w", err))
		}
		vpc = subnet.VPCID
	}
	in := &instance.CreateSecurityGroupInput{
		VPCID:       vpc,
		Name:        "packer_" + uuid.TimeOrderedUUID(),
		Description: "Temporary group for a Packer build",
	}
	if s.NoIngress {
		in.NoIngress = true
		u.Sayf("Creating temporary security group %s without inbound rules (Session Manager)...", in.Name)
	} else {
		in.Port, in.SourceCIDRs = int32(s.Comm.Port()), s.SourceCIDRs
		u.Sayf("Creating temporary security group %s for port %d...", in.Name, in.Port)
	}
	out, err := instance.CreateSecurityGroup(ctx, api, in)
	if err != nil {
		return Halt(state, u, fmt.Errorf("create temporary security group in %s: %w", s.Region, err))
	}
	s.created = out.GroupID
	StateSecurityGroupIDs.Put(state, []string{out.GroupID})
	return multistep.ActionContinue
}

// Cleanup deletes the temporary security group, whatever the outcome of
// the run.
func (s *StepCreateSecurityGroup) Cleanup(state multistep.StateBag) {
	if s.created == "" {
		return
	}
	u := UI(state)
	api, err := EC2Client(state, s.Region)
	if err != nil {
		u.Error(fmt.Sprintf("Cannot delete temporary security group %s: %v", s.created, err))
		return
	}
	ctx, cancel := CleanupContext()
	defer cancel()
	u.Sayf("Deleting temporary security group %s...", s.created)
	if err := instance.DeleteSecurityGroup(ctx, api, s.created, securityGroupDeleteWait); err != nil {
		u.Error(fmt.Sprintf("Error deleting temporary security group %s in %s; delete it by hand: %v", s.created, s.Region, err))
		return
	}
	s.created = ""
}
