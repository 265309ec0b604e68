//go:build unix

package instance_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// TestNetworkSelectionOnMoto finds a VPC, a subnet and security groups by
// tag on moto, which evaluates the filters itself, and opens a temporary
// group to an IPv4 and an IPv6 block.
func TestNetworkSelectionOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	client, _ := awstest.Clients(moto.Endpoint, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tags := func(rt types.ResourceType, kv ...string) []types.TagSpecification {
		var tt []types.Tag
		for i := 0; i < len(kv); i += 2 {
			tt = append(tt, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return []types.TagSpecification{{ResourceType: rt, Tags: tt}}
	}
	vpc, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16"), TagSpecifications: tags(types.ResourceTypeVpc, "Class", "build")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	mkSubnet := func(cidr, zone, tier string) string {
		t.Helper()
		out, err := client.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: aws.String(vpcID), CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(zone),
			TagSpecifications: tags(types.ResourceTypeSubnet, "Tier", tier),
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Subnet.SubnetId)
	}
	small := mkSubnet("10.20.1.0/26", "us-east-1a", "private")
	large := mkSubnet("10.20.2.0/24", "us-east-1b", "private")
	public := mkSubnet("10.20.4.0/22", "us-east-1c", "public")
	mkGroup := func(name, class string) string {
		t.Helper()
		out, err := client.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(name), Description: aws.String(name), VpcId: aws.String(vpcID),
			TagSpecifications: tags(types.ResourceTypeSecurityGroup, "Class", class),
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.GroupId)
	}
	sg1, sg2 := mkGroup("ssh-a", "packer"), mkGroup("ssh-b", "packer")
	mkGroup("web", "web")

	t.Run("most free tagged subnet of the tagged VPC", func(t *testing.T) {
		out, err := instance.SelectNetwork(ctx, client, &instance.SelectNetworkInput{
			VPCFilters:    map[string][]string{"tag:Class": {"build"}},
			SubnetFilters: map[string][]string{"tag:Tier": {"private"}},
			SubnetChoice:  instance.SubnetChoiceMostFree,
		})
		if err != nil {
			t.Fatal(err)
		}
		if out.VPCID != vpcID || out.SubnetID != large || out.AvailabilityZone != "us-east-1b" {
			t.Errorf("got %s/%s/%s, want %s/%s/us-east-1b (the /24 rather than the /26)", out.VPCID, out.SubnetID, out.AvailabilityZone, vpcID, large)
		}
	})
	t.Run("subnet filter in availability_zone", func(t *testing.T) {
		out, err := instance.SelectNetwork(ctx, client, &instance.SelectNetworkInput{
			AvailabilityZone: "us-east-1a",
			SubnetFilters:    map[string][]string{"tag:Tier": {"private"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if out.SubnetID != small || out.VPCID != vpcID {
			t.Errorf("got %s in %s, want %s in %s", out.SubnetID, out.VPCID, small, vpcID)
		}
	})
	t.Run("several matches need a choice", func(t *testing.T) {
		_, err := instance.SelectNetwork(ctx, client, &instance.SelectNetworkInput{SubnetFilters: map[string][]string{"tag:Tier": {"private", "public"}}})
		if err == nil || !strings.Contains(err.Error(), "3 subnets match") {
			t.Errorf("error = %v, want 3 subnets to match", err)
		}
	})
	t.Run("inferred subnet of the VPC", func(t *testing.T) {
		out, err := instance.SelectNetwork(ctx, client, &instance.SelectNetworkInput{VPCID: vpcID, InferSubnet: true, InstanceType: "t3.micro"})
		if err != nil {
			t.Fatal(err)
		}
		if out.SubnetID != public {
			t.Errorf("subnet = %s, want %s, the /22", out.SubnetID, public)
		}
	})
	t.Run("non-default VPC without a subnet", func(t *testing.T) {
		_, err := instance.SelectNetwork(ctx, client, &instance.SelectNetworkInput{VPCID: vpcID})
		if err == nil || !strings.Contains(err.Error(), "is not the default VPC") {
			t.Errorf("error = %v, want the VPC to be refused without a subnet", err)
		}
	})
	t.Run("security groups by tag in the VPC", func(t *testing.T) {
		out, err := instance.FindSecurityGroups(ctx, client, &instance.FindSecurityGroupsInput{Filters: map[string][]string{"tag:Class": {"packer"}}, VPCID: vpcID})
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(out.GroupIDs))
		if want := slices.Sorted(slices.Values([]string{sg1, sg2})); !slices.Equal(got, want) {
			t.Errorf("groups = %v, want %v", got, want)
		}
	})
	t.Run("temporary group open to IPv4 and IPv6 blocks", func(t *testing.T) {
		sg, err := instance.CreateSecurityGroup(ctx, client, &instance.CreateSecurityGroupInput{
			VPCID: vpcID, Port: 22, SourceCIDRs: []string{"198.51.100.0/24", "2001:db8:1234::/48"},
		})
		if err != nil {
			t.Fatal(err)
		}
		groups, err := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg.GroupID}})
		if err != nil {
			t.Fatal(err)
		}
		perms := groups.SecurityGroups[0].IpPermissions
		if len(perms) != 1 || len(perms[0].IpRanges) != 1 || len(perms[0].Ipv6Ranges) != 1 ||
			aws.ToString(perms[0].IpRanges[0].CidrIp) != "198.51.100.0/24" || aws.ToString(perms[0].Ipv6Ranges[0].CidrIpv6) != "2001:db8:1234::/48" {
			t.Errorf("permissions = %+v; want tcp/22 from 198.51.100.0/24 and 2001:db8:1234::/48", perms)
		}
		if _, err := instance.DeleteSecurityGroup(ctx, client, &instance.DeleteSecurityGroupInput{GroupID: sg.GroupID, MaxWait: time.Second}); err != nil {
			t.Fatal(err)
		}
	})
}
