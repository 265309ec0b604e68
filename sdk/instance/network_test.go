//go:build unix

package instance

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func subnet(id, vpc, zone string, free int32) types.Subnet {
	return types.Subnet{SubnetId: aws.String(id), VpcId: aws.String(vpc), AvailabilityZone: aws.String(zone), AvailableIpAddressCount: aws.Int32(free)}
}

func vpcs(isDefault bool, ids ...string) func(*ec2.DescribeVpcsInput) (*ec2.DescribeVpcsOutput, error) {
	return func(*ec2.DescribeVpcsInput) (*ec2.DescribeVpcsOutput, error) {
		out := &ec2.DescribeVpcsOutput{}
		for _, id := range ids {
			out.Vpcs = append(out.Vpcs, types.Vpc{VpcId: aws.String(id), IsDefault: aws.Bool(isDefault)})
		}
		return out, nil
	}
}

func subnets(s ...types.Subnet) func(*ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error) {
	return func(*ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error) {
		return &ec2.DescribeSubnetsOutput{Subnets: s}, nil
	}
}

func offerings(zones ...string) func(*ec2.DescribeInstanceTypeOfferingsInput) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	return func(in *ec2.DescribeInstanceTypeOfferingsInput) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
		out := &ec2.DescribeInstanceTypeOfferingsOutput{}
		for _, z := range zones {
			out.InstanceTypeOfferings = append(out.InstanceTypeOfferings, types.InstanceTypeOffering{Location: aws.String(z), InstanceType: "t3.micro", LocationType: types.LocationTypeAvailabilityZone})
		}
		return out, nil
	}
}

func TestSelectNetwork(t *testing.T) {
	tag := map[string][]string{"tag:Tier": {"private"}}
	tests := []struct {
		name      string
		in        SelectNetworkInput
		fake      *fakeEC2
		want      SelectNetworkOutput // Subnet is not compared
		wantCalls []string
		wantErr   []string
	}{
		{
			name: "nothing given: AWS defaults, no call",
			in:   SelectNetworkInput{},
		},
		{
			name: "every ID given: no call",
			in:   SelectNetworkInput{VPCID: "vpc-1", SubnetID: "subnet-1", AvailabilityZone: "us-east-1a"},
			want: SelectNetworkOutput{VPCID: "vpc-1", SubnetID: "subnet-1", AvailabilityZone: "us-east-1a"},
		},
		{
			name:      "subnet ID fills in the VPC and zone",
			in:        SelectNetworkInput{SubnetID: "subnet-1"},
			fake:      &fakeEC2{describeSubnets: subnets(subnet("subnet-1", "vpc-9", "us-east-1c", 10))},
			want:      SelectNetworkOutput{VPCID: "vpc-9", SubnetID: "subnet-1", AvailabilityZone: "us-east-1c"},
			wantCalls: []string{"DescribeSubnets subnet-1"},
		},
		{
			name:      "subnet filter with one match; the VPC and zone come from it",
			in:        SelectNetworkInput{SubnetFilters: tag},
			fake:      &fakeEC2{describeSubnets: subnets(subnet("subnet-1", "vpc-9", "us-east-1c", 10))},
			want:      SelectNetworkOutput{VPCID: "vpc-9", SubnetID: "subnet-1", AvailabilityZone: "us-east-1c"},
			wantCalls: []string{"DescribeSubnets state=available,tag:Tier=private"},
		},
		{
			name: "subnet filter in vpc_id and availability_zone, most free",
			in:   SelectNetworkInput{VPCID: "vpc-1", AvailabilityZone: "us-east-1b", SubnetFilters: tag, SubnetChoice: SubnetChoiceMostFree},
			fake: &fakeEC2{describeSubnets: subnets(
				subnet("subnet-a", "vpc-1", "us-east-1b", 10), subnet("subnet-b", "vpc-1", "us-east-1b", 250), subnet("subnet-c", "vpc-1", "us-east-1b", 250))},
			want:      SelectNetworkOutput{VPCID: "vpc-1", SubnetID: "subnet-b", AvailabilityZone: "us-east-1b"},
			wantCalls: []string{"DescribeSubnets availability-zone=us-east-1b,state=available,tag:Tier=private,vpc-id=vpc-1"},
		},
		{
			name:      "subnet filter matching several without a choice",
			in:        SelectNetworkInput{SubnetFilters: tag},
			fake:      &fakeEC2{describeSubnets: subnets(subnet("subnet-a", "vpc-1", "us-east-1a", 10), subnet("subnet-b", "vpc-1", "us-east-1b", 20))},
			wantCalls: []string{"DescribeSubnets state=available,tag:Tier=private"},
			wantErr:   []string{"2 subnets match (subnet-a, subnet-b)", "tag:Tier=private"},
		},
		{
			name:      "subnet filter matching none",
			in:        SelectNetworkInput{SubnetFilters: tag, SubnetChoice: SubnetChoiceRandom},
			fake:      &fakeEC2{describeSubnets: subnets()},
			wantCalls: []string{"DescribeSubnets state=available,tag:Tier=private"},
			wantErr:   []string{"no available subnet matches", "{state=available, tag:Tier=private}"},
		},
		{
			name: "VPC filter, then the subnet filter in that VPC",
			in: SelectNetworkInput{
				VPCFilters:    map[string][]string{"tag:Class": {"build"}, "cidr": {"10.1.0.0/16", "10.2.0.0/16"}},
				SubnetFilters: tag, SubnetChoice: SubnetChoiceMostFree,
			},
			fake: &fakeEC2{
				describeVpcs:    vpcs(false, "vpc-7"),
				describeSubnets: subnets(subnet("subnet-a", "vpc-7", "us-east-1a", 3), subnet("subnet-b", "vpc-7", "us-east-1b", 2)),
			},
			want: SelectNetworkOutput{VPCID: "vpc-7", SubnetID: "subnet-a", AvailabilityZone: "us-east-1a"},
			wantCalls: []string{
				"DescribeVpcs cidr=10.1.0.0/16|10.2.0.0/16,tag:Class=build",
				"DescribeSubnets state=available,tag:Tier=private,vpc-id=vpc-7",
			},
		},
		{
			name:      "VPC filter matching two",
			in:        SelectNetworkInput{VPCFilters: map[string][]string{"tag:Class": {"build"}}, SubnetFilters: tag},
			fake:      &fakeEC2{describeVpcs: vpcs(false, "vpc-1", "vpc-2")},
			wantCalls: []string{"DescribeVpcs tag:Class=build"},
			wantErr:   []string{"2 VPCs match (vpc-1, vpc-2); exactly one must"},
		},
		{
			name:      "vpc_id wins over the VPC filter",
			in:        SelectNetworkInput{VPCID: "vpc-1", VPCFilters: map[string][]string{"tag:Class": {"build"}}, SubnetID: "subnet-1", AvailabilityZone: "us-east-1a"},
			want:      SelectNetworkOutput{VPCID: "vpc-1", SubnetID: "subnet-1", AvailabilityZone: "us-east-1a"},
			wantCalls: nil,
		},
		{
			name:      "subnet_id wins over the subnet filter",
			in:        SelectNetworkInput{SubnetID: "subnet-1", SubnetFilters: tag},
			fake:      &fakeEC2{describeSubnets: subnets(subnet("subnet-1", "vpc-9", "us-east-1c", 10))},
			want:      SelectNetworkOutput{VPCID: "vpc-9", SubnetID: "subnet-1", AvailabilityZone: "us-east-1c"},
			wantCalls: []string{"DescribeSubnets subnet-1"},
		},
		{
			name:      "VPC filter finding a non-default VPC without a subnet",
			in:        SelectNetworkInput{VPCFilters: map[string][]string{"tag:Class": {"build"}}},
			fake:      &fakeEC2{describeVpcs: vpcs(false, "vpc-7")},
			wantCalls: []string{"DescribeVpcs tag:Class=build"},
			wantErr:   []string{"VPC vpc-7 in us-east-1 is not the default VPC", "name a subnet of vpc-7"},
		},
		{
			name:      "non-default vpc_id without a subnet",
			in:        SelectNetworkInput{VPCID: "vpc-7"},
			fake:      &fakeEC2{describeVpcs: vpcs(false, "vpc-7")},
			wantCalls: []string{"DescribeVpcs vpc-7"},
			wantErr:   []string{"VPC vpc-7 in us-east-1 is not the default VPC"},
		},
		{
			name:      "default vpc_id without a subnet: AWS chooses the default subnet",
			in:        SelectNetworkInput{VPCID: "vpc-d"},
			fake:      &fakeEC2{describeVpcs: vpcs(true, "vpc-d")},
			want:      SelectNetworkOutput{VPCID: "vpc-d"},
			wantCalls: []string{"DescribeVpcs vpc-d"},
		},
		{
			name: "inferred subnet of the default VPC, in a zone offering the type",
			in:   SelectNetworkInput{InferSubnet: true, InstanceType: "t3.micro"},
			fake: &fakeEC2{
				describeVpcs:      vpcs(true, "vpc-d"),
				describeSubnets:   subnets(subnet("subnet-a", "vpc-d", "us-east-1a", 4000), subnet("subnet-b", "vpc-d", "us-east-1b", 100), subnet("subnet-e", "vpc-d", "us-east-1e", 200)),
				describeOfferings: offerings("us-east-1b", "us-east-1e"),
			},
			want: SelectNetworkOutput{VPCID: "vpc-d", SubnetID: "subnet-e", AvailabilityZone: "us-east-1e"},
			wantCalls: []string{
				"DescribeVpcs is-default=true",
				"DescribeSubnets state=available,vpc-id=vpc-d",
				"DescribeInstanceTypeOfferings availability-zone,instance-type=t3.micro,location=us-east-1a|us-east-1b|us-east-1e",
			},
		},
		{
			name: "inferred subnet in a zone offering one of the spot types",
			in:   SelectNetworkInput{VPCID: "vpc-1", InferSubnet: true, InstanceTypes: []string{"m5.large", "t3.micro"}},
			fake: &fakeEC2{
				describeSubnets:   subnets(subnet("subnet-a", "vpc-1", "us-east-1a", 4000), subnet("subnet-b", "vpc-1", "us-east-1b", 100)),
				describeOfferings: offerings("us-east-1b"),
			},
			want: SelectNetworkOutput{VPCID: "vpc-1", SubnetID: "subnet-b", AvailabilityZone: "us-east-1b"},
			wantCalls: []string{
				"DescribeSubnets state=available,vpc-id=vpc-1",
				"DescribeInstanceTypeOfferings availability-zone,instance-type=m5.large|t3.micro,location=us-east-1a|us-east-1b",
			},
		},
		{
			name: "inferred subnet when the offerings cannot be read",
			in:   SelectNetworkInput{VPCID: "vpc-1", InferSubnet: true, InstanceType: "t3.micro"},
			fake: &fakeEC2{
				describeSubnets:   subnets(subnet("subnet-a", "vpc-1", "us-east-1a", 4000), subnet("subnet-b", "vpc-1", "us-east-1b", 100)),
				describeOfferings: errorsInOrder[ec2.DescribeInstanceTypeOfferingsInput, ec2.DescribeInstanceTypeOfferingsOutput](apiErr("UnauthorizedOperation")),
			},
			want: SelectNetworkOutput{VPCID: "vpc-1", SubnetID: "subnet-a", AvailabilityZone: "us-east-1a"},
			wantCalls: []string{
				"DescribeSubnets state=available,vpc-id=vpc-1",
				"DescribeInstanceTypeOfferings availability-zone,instance-type=t3.micro,location=us-east-1a|us-east-1b",
			},
		},
		{
			name:      "inferred subnet in availability_zone",
			in:        SelectNetworkInput{VPCID: "vpc-1", AvailabilityZone: "us-east-1b", InferSubnet: true},
			fake:      &fakeEC2{describeSubnets: subnets(subnet("subnet-b", "vpc-1", "us-east-1b", 100))},
			want:      SelectNetworkOutput{VPCID: "vpc-1", SubnetID: "subnet-b", AvailabilityZone: "us-east-1b"},
			wantCalls: []string{"DescribeSubnets availability-zone=us-east-1b,state=available,vpc-id=vpc-1"},
		},
		{
			name:      "inferring without a default VPC",
			in:        SelectNetworkInput{InferSubnet: true},
			fake:      &fakeEC2{describeVpcs: vpcs(true)},
			wantCalls: []string{"DescribeVpcs is-default=true"},
			wantErr:   []string{"us-east-1 has no default VPC"},
		},
		{
			name:      "a given subnet is not inferred",
			in:        SelectNetworkInput{SubnetID: "subnet-1", VPCID: "vpc-1", AvailabilityZone: "us-east-1a", InferSubnet: true},
			want:      SelectNetworkOutput{VPCID: "vpc-1", SubnetID: "subnet-1", AvailabilityZone: "us-east-1a"},
			wantCalls: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			if f == nil {
				f = &fakeEC2{}
			}
			out, err := SelectNetwork(context.Background(), regionAPI{f}, &tc.in)
			if got := f.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("calls:\n got %q\nwant %q", got, tc.wantCalls)
			}
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error; want one containing %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := *out
			got.Subnet = nil
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.SubnetID != "" && tc.in.SubnetID == "" && aws.ToString(out.Subnet.SubnetId) != got.SubnetID {
				t.Errorf("Subnet = %v, want the chosen subnet %s", out.Subnet, got.SubnetID)
			}
		})
	}
}

func TestSelectNetworkRandomSubnet(t *testing.T) {
	f := &fakeEC2{describeSubnets: subnets(subnet("subnet-a", "vpc-1", "us-east-1a", 1), subnet("subnet-b", "vpc-1", "us-east-1b", 1), subnet("subnet-c", "vpc-1", "us-east-1c", 1))}
	seen := map[string]bool{}
	for range 200 {
		out, err := SelectNetwork(context.Background(), regionAPI{f}, &SelectNetworkInput{SubnetFilters: map[string][]string{"tag:Tier": {"x"}}, SubnetChoice: SubnetChoiceRandom})
		if err != nil {
			t.Fatal(err)
		}
		seen[out.SubnetID] = true
	}
	// The chance that 200 uniform draws miss one of three is below 1e-34.
	if len(seen) != 3 {
		t.Errorf("random choice took only %v of three subnets in 200 draws", seen)
	}
}

func TestSelectNetworkErrorsWrap(t *testing.T) {
	f := &fakeEC2{describeVpcs: func(*ec2.DescribeVpcsInput) (*ec2.DescribeVpcsOutput, error) {
		return nil, apiErr("UnauthorizedOperation")
	}}
	_, err := SelectNetwork(context.Background(), regionAPI{f}, &SelectNetworkInput{VPCFilters: map[string][]string{"tag:A": {"b"}}})
	if awserr.Code(err) != "UnauthorizedOperation" || !strings.Contains(err.Error(), "find the VPC matching {tag:A=b} in us-east-1") {
		t.Errorf("error = %v; want the AWS error wrapped with what was done", err)
	}
}

func TestFindSecurityGroups(t *testing.T) {
	groups := func(ids ...string) func(*ec2.DescribeSecurityGroupsInput) (*ec2.DescribeSecurityGroupsOutput, error) {
		return func(*ec2.DescribeSecurityGroupsInput) (*ec2.DescribeSecurityGroupsOutput, error) {
			out := &ec2.DescribeSecurityGroupsOutput{}
			for _, id := range ids {
				out.SecurityGroups = append(out.SecurityGroups, types.SecurityGroup{GroupId: aws.String(id)})
			}
			return out, nil
		}
	}
	tests := []struct {
		name      string
		in        FindSecurityGroupsInput
		fake      *fakeEC2
		want      []string
		wantCalls []string
		wantErr   string
	}{
		{
			name:      "all matches, in the VPC",
			in:        FindSecurityGroupsInput{Filters: map[string][]string{"tag:Class": {"packer"}}, VPCID: "vpc-1"},
			fake:      &fakeEC2{describeSGs: groups("sg-1", "sg-2")},
			want:      []string{"sg-1", "sg-2"},
			wantCalls: []string{"DescribeSecurityGroups tag:Class=packer,vpc-id=vpc-1"},
		},
		{
			name:      "default VPC",
			in:        FindSecurityGroupsInput{Filters: map[string][]string{"group-name": {"ssh", "winrm"}}},
			fake:      &fakeEC2{describeSGs: groups("sg-3")},
			want:      []string{"sg-3"},
			wantCalls: []string{"DescribeSecurityGroups group-name=ssh|winrm"},
		},
		{
			name:      "no match",
			in:        FindSecurityGroupsInput{Filters: map[string][]string{"tag:Class": {"packer"}}, VPCID: "vpc-1"},
			fake:      &fakeEC2{describeSGs: groups()},
			wantCalls: []string{"DescribeSecurityGroups tag:Class=packer,vpc-id=vpc-1"},
			wantErr:   "find security groups matching {tag:Class=packer, vpc-id=vpc-1} in us-east-1: no security group matches",
		},
		{
			name:    "no filters",
			wantErr: "no filters given",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			if f == nil {
				f = &fakeEC2{}
			}
			out, err := FindSecurityGroups(context.Background(), regionAPI{f}, &tc.in)
			if got := f.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("calls:\n got %q\nwant %q", got, tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out.GroupIDs, tc.want) {
				t.Errorf("groups = %v, want %v", out.GroupIDs, tc.want)
			}
		})
	}
}

// regionAPI gives the fake a region, as *ec2.Client has.
type regionAPI struct{ *fakeEC2 }

func (regionAPI) Options() ec2.Options { return ec2.Options{Region: "us-east-1"} }
