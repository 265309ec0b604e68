package instance

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// NetworkAPI is the client behaviour SelectNetwork needs.
type NetworkAPI interface {
	DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	// DescribeInstanceTypeOfferings narrows an inferred subnet to zones
	// that offer the instance type.
	DescribeInstanceTypeOfferings(ctx context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error)
}

// DescribeSecurityGroupsAPI is the client behaviour FindSecurityGroups
// needs.
type DescribeSecurityGroupsAPI interface {
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
}

var (
	_ NetworkAPI                = (*ec2.Client)(nil)
	_ DescribeSecurityGroupsAPI = (*ec2.Client)(nil)
)

// SubnetChoice says which subnet SelectNetwork takes when the subnet
// filters match more than one.
type SubnetChoice string

const (
	// SubnetChoiceOnly (the zero value) requires the filters to match
	// exactly one subnet.
	SubnetChoiceOnly SubnetChoice = ""
	// SubnetChoiceMostFree takes the subnet with the most available IPv4
	// addresses (the first of those with the most, in AWS's order).
	SubnetChoiceMostFree SubnetChoice = "most-free"
	// SubnetChoiceRandom takes one of the matching subnets at random.
	SubnetChoiceRandom SubnetChoice = "random"
)

// SelectNetworkInput says where an instance should run: given IDs, or
// DescribeVpcs and DescribeSubnets filters that find them. Filters map a
// filter name (such as "tag:Tier" or "cidr-block") to its values; a
// resource matches when it matches every filter and, per filter, any value.
type SelectNetworkInput struct {
	// VPCID is the VPC. Empty means the VPC that VPCFilters find, the VPC
	// of the subnet, or the default VPC.
	VPCID string
	// VPCFilters find the VPC when VPCID is empty. Exactly one VPC must
	// match.
	VPCFilters map[string][]string
	// SubnetID is the subnet. Empty means the subnet that SubnetFilters
	// find or, with InferSubnet, one of the VPC's subnets; otherwise none,
	// and AWS uses the default subnet of the zone.
	SubnetID string
	// SubnetFilters find the subnet when SubnetID is empty. Only available
	// subnets, of the VPC when one is known and in AvailabilityZone when it
	// is set, are considered.
	SubnetFilters map[string][]string
	// SubnetChoice chooses among several subnets that SubnetFilters match.
	SubnetChoice SubnetChoice
	// AvailabilityZone is the zone. Empty means the zone of the subnet.
	AvailabilityZone string
	// InferSubnet picks a subnet when none is given or filtered for: the
	// available subnet with the most free addresses of the VPC (or of the
	// default VPC), in AvailabilityZone when it is set and, when
	// InstanceType is set, in a zone that offers it.
	InferSubnet bool
	// InstanceType narrows an inferred subnet to zones that offer it.
	InstanceType string
	// InstanceTypes, when set, narrows an inferred subnet to zones that
	// offer any of them instead (the types a spot launch may use).
	InstanceTypes []string
}

// SelectNetworkOutput is the result of SelectNetwork: where the instance
// runs. Empty fields mean the AWS defaults: the default VPC, and the
// default subnet of a zone AWS chooses.
type SelectNetworkOutput struct {
	VPCID            string
	SubnetID         string
	AvailabilityZone string
	// Subnet is the chosen subnet as EC2 described it, when it was
	// described.
	Subnet *types.Subnet
}

// SelectNetwork resolves where an instance runs, in the order HashiCorp's
// amazon builders use:
//
//  1. Without VPCID, VPCFilters find the VPC (exactly one must match).
//  2. Without SubnetID, SubnetFilters find the subnet among the available
//     subnets of that VPC and zone; several matches need a SubnetChoice.
//  3. With no subnet yet and InferSubnet, the subnet with the most free
//     addresses of the VPC (or of the default VPC) is taken.
//  4. A subnet fills in the VPC and zone that were not given.
//
// A VPC without a subnet must be the default VPC, since AWS launches an
// instance without a subnet in the default VPC: otherwise the error says
// to name a subnet. Nothing is created, so there is nothing to undo.
func SelectNetwork(ctx context.Context, api NetworkAPI, in *SelectNetworkInput, optFns ...func(*Options)) (*SelectNetworkOutput, error) {
	n := &networkSelection{
		api:    api,
		in:     in,
		o:      newOptions(optFns),
		region: awserr.Region(api, ""),
		out:    &SelectNetworkOutput{VPCID: in.VPCID, SubnetID: in.SubnetID, AvailabilityZone: in.AvailabilityZone},
	}
	for _, step := range []func(context.Context) error{
		n.filterVPC, n.filterSubnet, n.inferredSubnet, n.completeFromSubnet, n.checkDefaultVPC,
	} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return n.out, nil
}

// networkSelection is one call of SelectNetwork: its input, and its output
// as far as it is resolved. Each step does its part only when the steps
// before left it to do.
type networkSelection struct {
	api    NetworkAPI
	in     *SelectNetworkInput
	o      Options
	region string
	out    *SelectNetworkOutput
	// vpc is the VPC when it was described.
	vpc *types.Vpc
}

// filterVPC finds the VPC by VPCFilters when no VPC ID was given.
func (n *networkSelection) filterVPC(ctx context.Context) error {
	in, out := n.in, n.out
	if out.VPCID != "" || len(in.VPCFilters) == 0 {
		return nil
	}
	vpcs, err := describeVPCs(ctx, n.api, &ec2.DescribeVpcsInput{Filters: ec2Filters(in.VPCFilters)})
	if err != nil {
		return fmt.Errorf("find the VPC matching %s in %s: %w", filterString(in.VPCFilters), n.region, err)
	}
	if len(vpcs) != 1 {
		return fmt.Errorf("find the VPC matching %s in %s: %d VPCs match %s; exactly one must", filterString(in.VPCFilters), n.region, len(vpcs), vpcIDs(vpcs))
	}
	n.vpc = &vpcs[0]
	out.VPCID = aws.ToString(n.vpc.VpcId)
	n.o.logf("VPC %s in %s matches %s", out.VPCID, n.region, filterString(in.VPCFilters))
	return nil
}

// filterSubnet finds the subnet by SubnetFilters, among the available
// subnets of the VPC and zone when those are known, when no subnet ID was
// given.
func (n *networkSelection) filterSubnet(ctx context.Context) error {
	in, out := n.in, n.out
	if out.SubnetID != "" || len(in.SubnetFilters) == 0 {
		return nil
	}
	filters := maps.Clone(in.SubnetFilters)
	filters["state"] = []string{"available"}
	if out.VPCID != "" {
		filters["vpc-id"] = []string{out.VPCID}
	}
	if out.AvailabilityZone != "" {
		filters["availability-zone"] = []string{out.AvailabilityZone}
	}
	subnets, err := describeSubnets(ctx, n.api, &ec2.DescribeSubnetsInput{Filters: ec2Filters(filters)})
	if err != nil {
		return fmt.Errorf("find the subnet matching %s in %s: %w", filterString(filters), n.region, err)
	}
	s, err := chooseSubnet(subnets, in.SubnetChoice)
	if err != nil {
		return fmt.Errorf("find the subnet matching %s in %s: %w", filterString(filters), n.region, err)
	}
	out.setSubnet(s)
	n.o.logf("subnet %s (%s, %d free addresses) in %s matches %s", out.SubnetID, out.AvailabilityZone, aws.ToInt32(s.AvailableIpAddressCount), n.region, filterString(filters))
	return nil
}

// inferredSubnet takes, with InferSubnet and no subnet yet, the subnet with
// the most free addresses of the VPC, or of the default VPC.
func (n *networkSelection) inferredSubnet(ctx context.Context) error {
	in, out := n.in, n.out
	if out.SubnetID != "" || !in.InferSubnet {
		return nil
	}
	if out.VPCID == "" {
		vpcs, err := describeVPCs(ctx, n.api, &ec2.DescribeVpcsInput{Filters: ec2Filters(map[string][]string{"is-default": {"true"}})})
		if err != nil {
			return fmt.Errorf("find the default VPC in %s to choose a subnet: %w", n.region, err)
		}
		if len(vpcs) != 1 {
			return fmt.Errorf("find the default VPC in %s to choose a subnet: %s has no default VPC; name a subnet or a VPC", n.region, n.region)
		}
		n.vpc = &vpcs[0]
		out.VPCID = aws.ToString(n.vpc.VpcId)
	}
	typesWanted := in.InstanceTypes
	if len(typesWanted) == 0 && in.InstanceType != "" {
		typesWanted = []string{in.InstanceType}
	}
	s, err := inferSubnet(ctx, n.api, n.o, out.VPCID, out.AvailabilityZone, typesWanted)
	if err != nil {
		return fmt.Errorf("choose a subnet of %s in %s: %w", out.VPCID, n.region, err)
	}
	out.setSubnet(s)
	n.o.logf("subnet %s (%s, %d free addresses) of %s in %s has the most free addresses", out.SubnetID, out.AvailabilityZone, aws.ToInt32(s.AvailableIpAddressCount), out.VPCID, n.region)
	return nil
}

// completeFromSubnet fills in the VPC and zone that were not given from
// the subnet.
func (n *networkSelection) completeFromSubnet(ctx context.Context) error {
	out := n.out
	if out.SubnetID == "" || (out.VPCID != "" && out.AvailabilityZone != "") {
		return nil
	}
	d, err := DescribeSubnet(ctx, n.api, &DescribeSubnetInput{SubnetID: out.SubnetID})
	if err != nil {
		return err
	}
	if out.VPCID == "" {
		out.VPCID = d.VPCID
	}
	if out.AvailabilityZone == "" {
		out.AvailabilityZone = d.AvailabilityZone
	}
	out.Subnet = &d.Subnet
	return nil
}

// checkDefaultVPC refuses a VPC without a subnet unless it is the default
// VPC, where AWS launches an instance that names no subnet.
func (n *networkSelection) checkDefaultVPC(ctx context.Context) error {
	out := n.out
	if out.VPCID == "" || out.SubnetID != "" {
		return nil
	}
	if n.vpc == nil {
		vpcs, err := describeVPCs(ctx, n.api, &ec2.DescribeVpcsInput{VpcIds: []string{out.VPCID}})
		if err != nil {
			return fmt.Errorf("describe VPC %s in %s: %w", out.VPCID, n.region, err)
		}
		if len(vpcs) != 1 {
			return fmt.Errorf("describe VPC %s in %s: not in the answer", out.VPCID, n.region)
		}
		n.vpc = &vpcs[0]
	}
	if !aws.ToBool(n.vpc.IsDefault) {
		return fmt.Errorf("VPC %s in %s is not the default VPC, and an instance launched without a subnet runs in the default VPC: name a subnet of %s", out.VPCID, n.region, out.VPCID)
	}
	return nil
}

func (out *SelectNetworkOutput) setSubnet(s types.Subnet) {
	out.SubnetID = aws.ToString(s.SubnetId)
	out.Subnet = &s
	if out.VPCID == "" {
		out.VPCID = aws.ToString(s.VpcId)
	}
	if out.AvailabilityZone == "" {
		out.AvailabilityZone = aws.ToString(s.AvailabilityZone)
	}
}

// chooseSubnet takes one of subnets as choice says.
func chooseSubnet(subnets []types.Subnet, choice SubnetChoice) (types.Subnet, error) {
	switch {
	case len(subnets) == 0:
		return types.Subnet{}, fmt.Errorf("no available subnet matches")
	case len(subnets) == 1:
		return subnets[0], nil
	}
	switch choice {
	case SubnetChoiceMostFree:
		return mostFree(subnets), nil
	case SubnetChoiceRandom:
		return subnets[rand.IntN(len(subnets))], nil
	case SubnetChoiceOnly:
		ids := make([]string, len(subnets))
		for i, s := range subnets {
			ids[i] = aws.ToString(s.SubnetId)
		}
		return types.Subnet{}, fmt.Errorf("%d subnets match (%s); narrow the filters or choose the one with the most free addresses or one at random", len(subnets), strings.Join(ids, ", "))
	default:
		return types.Subnet{}, fmt.Errorf("subnet choice %q is unknown; valid are %q, %q and %q", choice, SubnetChoiceOnly, SubnetChoiceMostFree, SubnetChoiceRandom)
	}
}

// mostFree returns the first subnet with the most available addresses.
func mostFree(subnets []types.Subnet) types.Subnet {
	best := subnets[0]
	for _, s := range subnets[1:] {
		if aws.ToInt32(s.AvailableIpAddressCount) > aws.ToInt32(best.AvailableIpAddressCount) {
			best = s
		}
	}
	return best
}

// inferSubnet returns the available subnet of vpcID with the most free
// addresses, in zone when it is set and, when instanceTypes are given, in a
// zone that offers one of them. When the offerings cannot be read or no
// zone offers them, every zone is considered.
func inferSubnet(ctx context.Context, api NetworkAPI, o Options, vpcID, zone string, instanceTypes []string) (types.Subnet, error) {
	filters := map[string][]string{"vpc-id": {vpcID}, "state": {"available"}}
	if zone != "" {
		filters["availability-zone"] = []string{zone}
	}
	subnets, err := describeSubnets(ctx, api, &ec2.DescribeSubnetsInput{Filters: ec2Filters(filters)})
	if err != nil {
		return types.Subnet{}, err
	}
	if len(subnets) == 0 {
		return types.Subnet{}, fmt.Errorf("no available subnet matches %s", filterString(filters))
	}
	if len(instanceTypes) > 0 {
		instanceType := strings.Join(instanceTypes, ", ")
		zones := map[string]bool{}
		for _, s := range subnets {
			zones[aws.ToString(s.AvailabilityZone)] = true
		}
		offered, err := zonesOffering(ctx, api, slices.Sorted(maps.Keys(zones)), instanceTypes)
		switch {
		case err != nil:
			o.logf("cannot read which zones offer %s, so a subnet may be chosen in a zone without it: %v", instanceType, err)
		case len(offered) == 0:
			o.logf("no zone of %s offers %s; choosing among all its subnets", vpcID, instanceType)
		default:
			if in := slices.DeleteFunc(slices.Clone(subnets), func(s types.Subnet) bool { return !offered[aws.ToString(s.AvailabilityZone)] }); len(in) > 0 {
				subnets = in
			}
		}
	}
	return mostFree(subnets), nil
}

// zonesOffering returns which of zones offer any of instanceTypes.
func zonesOffering(ctx context.Context, api NetworkAPI, zones []string, instanceTypes []string) (map[string]bool, error) {
	offered := map[string]bool{}
	p := ec2.NewDescribeInstanceTypeOfferingsPaginator(api, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: types.LocationTypeAvailabilityZone,
		Filters:      ec2Filters(map[string][]string{"location": zones, "instance-type": instanceTypes}),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, off := range page.InstanceTypeOfferings {
			if slices.Contains(instanceTypes, string(off.InstanceType)) {
				offered[aws.ToString(off.Location)] = true
			}
		}
	}
	return offered, nil
}

// FindSecurityGroupsInput finds security groups by DescribeSecurityGroups
// filters.
type FindSecurityGroupsInput struct {
	// Filters map a filter name (such as "tag:Class" or "group-name") to
	// its values. Required.
	Filters map[string][]string
	// VPCID, when set, limits the search to the groups of that VPC, where
	// the instance runs.
	VPCID string
}

// FindSecurityGroupsOutput is the result of FindSecurityGroups.
type FindSecurityGroupsOutput struct {
	// GroupIDs are the matching groups, in AWS's order.
	GroupIDs []string
}

// FindSecurityGroups returns every security group that matches the
// filters (in the VPC, when given). No match is an error: an instance
// launched without groups would get the VPC's default group instead.
func FindSecurityGroups(ctx context.Context, api DescribeSecurityGroupsAPI, in *FindSecurityGroupsInput, optFns ...func(*Options)) (*FindSecurityGroupsOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	if len(in.Filters) == 0 {
		return nil, fmt.Errorf("find security groups in %s: no filters given", region)
	}
	filters := maps.Clone(in.Filters)
	if in.VPCID != "" {
		filters["vpc-id"] = []string{in.VPCID}
	}
	var ids []string
	p := ec2.NewDescribeSecurityGroupsPaginator(api, &ec2.DescribeSecurityGroupsInput{Filters: ec2Filters(filters)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find security groups matching %s in %s: %w", filterString(filters), region, err)
		}
		for _, g := range page.SecurityGroups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("find security groups matching %s in %s: no security group matches", filterString(filters), region)
	}
	o.logf("security groups %s in %s match %s", strings.Join(ids, ", "), region, filterString(filters))
	return &FindSecurityGroupsOutput{GroupIDs: ids}, nil
}

func describeVPCs(ctx context.Context, api NetworkAPI, in *ec2.DescribeVpcsInput) ([]types.Vpc, error) {
	var vpcs []types.Vpc
	if len(in.VpcIds) > 0 {
		// A VPC ID lookup cannot be paginated.
		out, err := api.DescribeVpcs(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Vpcs, nil
	}
	p := ec2.NewDescribeVpcsPaginator(api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		vpcs = append(vpcs, page.Vpcs...)
	}
	return vpcs, nil
}

func describeSubnets(ctx context.Context, api NetworkAPI, in *ec2.DescribeSubnetsInput) ([]types.Subnet, error) {
	var subnets []types.Subnet
	p := ec2.NewDescribeSubnetsPaginator(api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		subnets = append(subnets, page.Subnets...)
	}
	return subnets, nil
}

// ec2Filters returns the filters sorted by name, so that requests are
// reproducible.
func ec2Filters(m map[string][]string) []types.Filter {
	names := slices.Sorted(maps.Keys(m))
	out := make([]types.Filter, len(names))
	for i, n := range names {
		out[i] = types.Filter{Name: aws.String(n), Values: m[n]}
	}
	return out
}

// filterString describes filters for errors and logs, as
// {name=value|value, …} sorted by name.
func filterString(m map[string][]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+strings.Join(v, "|"))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}

func vpcIDs(vpcs []types.Vpc) string {
	if len(vpcs) == 0 {
		return "(none)"
	}
	ids := make([]string, len(vpcs))
	for i, v := range vpcs {
		ids[i] = aws.ToString(v.VpcId)
	}
	return "(" + strings.Join(ids, ", ") + ")"
}
