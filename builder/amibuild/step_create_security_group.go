package amibuild

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/uuid"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// securityGroupDeleteWait bounds how long Cleanup retries deleting the
// temporary security group while the terminated instance still holds it.
const securityGroupDeleteWait = 5 * time.Minute

// StepCreateSecurityGroup passes on the configured security groups, finds
// the groups that SecurityGroupFilter matches in the instance's VPC, or,
// when there are none and a communicator is used, creates a temporary
// security group that admits the communicator port from SourceCIDRs (or
// from this machine's public IP with SourcePublicIP). The temporary group
// is always deleted in Cleanup (after the instance is terminated, since
// Cleanup runs in reverse order).
//
// State used: StateSession, StateUI, StateNetwork (optional).
// State produced: StateSecurityGroupIDs (unset when AWS's default group is
// used).
type StepCreateSecurityGroup struct {
	// Region is the build region.
	Region string
	// Comm is the communicator configuration; its port is opened.
	Comm *communicator.Config
	// SecurityGroupIDs are existing groups; when set nothing is created.
	SecurityGroupIDs []string
	// SecurityGroupFilter finds existing groups in the instance's VPC when
	// SecurityGroupIDs is empty; when set nothing is created.
	SecurityGroupFilter map[string][]string
	// VpcID is the VPC of the temporary group when StateNetwork names none;
	// empty uses SubnetID's VPC, or the default VPC.
	VpcID string
	// SubnetID is the subnet the instance is launched in, when StateNetwork
	// is not set.
	SubnetID string
	// SourceCIDRs are admitted by the temporary group; empty admits any
	// IPv4 address, or this machine's public IP with SourcePublicIP.
	SourceCIDRs []string
	// SourcePublicIP admits only this machine's public IP, as PublicIPURL
	// reports it, when SourceCIDRs is empty.
	SourcePublicIP bool
	// PublicIPURL is the check-IP service; empty means
	// instance.DefaultCheckIPURL.
	PublicIPURL string
	// NoIngress creates the temporary group without inbound rules, for an
	// instance reached through Session Manager.
	NoIngress bool

	created string
}

// Run implements multistep.Step.
func (s *StepCreateSecurityGroup) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	if len(s.SecurityGroupIDs) > 0 {
		if len(s.SecurityGroupFilter) > 0 {
			u.Say("security_group_ids is set, so security_group_filter is not used")
		}
		StateSecurityGroupIDs.Put(state, s.SecurityGroupIDs)
		return multistep.ActionContinue
	}
	if len(s.SecurityGroupFilter) == 0 && s.Comm.Type == "none" {
		return multistep.ActionContinue
	}
	api, err := EC2Client(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	vpc := s.VpcID
	if network, ok := StateNetwork.Get(state); ok {
		vpc = network.VPCID
	} else if vpc == "" && s.SubnetID != "" {
		subnet, err := instance.DescribeSubnet(ctx, api, &instance.DescribeSubnetInput{SubnetID: s.SubnetID})
		if err != nil {
			return Halt(state, u, fmt.Errorf("find the VPC of subnet_id for the temporary security group: %w", err))
		}
		vpc = subnet.VPCID
	}
	if len(s.SecurityGroupFilter) > 0 {
		found, err := instance.FindSecurityGroups(ctx, api, &instance.FindSecurityGroupsInput{Filters: s.SecurityGroupFilter, VPCID: vpc})
		if err != nil {
			return Halt(state, u, fmt.Errorf("security_group_filter: %w", err))
		}
		u.Sayf("Found security groups %s", strings.Join(found.GroupIDs, ", "))
		StateSecurityGroupIDs.Put(state, found.GroupIDs)
		return multistep.ActionContinue
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
		cidrs := s.SourceCIDRs
		switch {
		case s.SourcePublicIP && len(cidrs) > 0:
			u.Say("temporary_security_group_source_cidrs is set, so temporary_security_group_source_public_ip is not used")
		case s.SourcePublicIP:
			u.Say("Asking for this machine's public IP...")
			ip, err := instance.PublicIP(ctx, &instance.PublicIPInput{URL: s.PublicIPURL})
			if err != nil {
				return Halt(state, u, fmt.Errorf("temporary_security_group_source_public_ip: %w", err))
			}
			u.Sayf("This machine's public IP is %s", ip.Addr)
			cidrs = []string{ip.CIDR}
		}
		in.Port, in.SourceCIDRs = int32(s.Comm.Port()), cidrs
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
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	u.Sayf("Deleting temporary security group %s...", s.created)
	if _, err := instance.DeleteSecurityGroup(ctx, api, &instance.DeleteSecurityGroupInput{GroupID: s.created, MaxWait: securityGroupDeleteWait}); err != nil {
		u.Error(fmt.Sprintf("Error deleting temporary security group %s in %s; delete it by hand: %v", s.created, s.Region, err))
		return
	}
	s.created = ""
}
