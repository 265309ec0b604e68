package amibuild

// The few EC2 calls below are not part of the sdk packages' API (yet). Each
// is one request with no retry or wait logic of its own, kept behind a
// narrow interface so that it can move into sdk/ unchanged.

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type regionDescriber interface {
	DescribeRegions(context.Context, *ec2.DescribeRegionsInput, ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
}

type subnetDescriber interface {
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
}

type instanceAttributeModifier interface {
	ModifyInstanceAttribute(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
}

// ImageAttributeModifier is the EC2 call that sets an AMI attribute.
type ImageAttributeModifier interface {
	ModifyImageAttribute(context.Context, *ec2.ModifyImageAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error)
}

var (
	_ regionDescriber           = (*ec2.Client)(nil)
	_ subnetDescriber           = (*ec2.Client)(nil)
	_ instanceAttributeModifier = (*ec2.Client)(nil)
	_ ImageAttributeModifier    = (*ec2.Client)(nil)
)

// checkRegionEnabled returns an error unless region exists and is enabled
// for the account.
func checkRegionEnabled(ctx context.Context, api regionDescriber, region string) error {
	out, err := api.DescribeRegions(ctx, &ec2.DescribeRegionsInput{
		AllRegions:  aws.Bool(true),
		RegionNames: []string{region},
	})
	if err != nil {
		return fmt.Errorf("region: cannot reach EC2 in %q; check that the region exists and the endpoint is right: %w", region, err)
	}
	for _, r := range out.Regions {
		if aws.ToString(r.RegionName) != region {
			continue
		}
		if s := aws.ToString(r.OptInStatus); s == "not-opted-in" {
			return fmt.Errorf("region: %s is not enabled for this account (opt-in status %q)", region, s)
		}
		return nil
	}
	return fmt.Errorf("region: %s does not exist", region)
}

// subnetVPC returns the VPC of a subnet.
func subnetVPC(ctx context.Context, api subnetDescriber, subnetID string) (string, error) {
	out, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnetID}})
	if err != nil {
		return "", fmt.Errorf("describe subnet %s: %w", subnetID, err)
	}
	if len(out.Subnets) == 0 {
		return "", fmt.Errorf("subnet %s not found", subnetID)
	}
	return aws.ToString(out.Subnets[0].VpcId), nil
}

// setInstanceENA turns ENA support of a stopped instance on or off.
func setInstanceENA(ctx context.Context, api instanceAttributeModifier, instanceID string, on bool) error {
	_, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(instanceID),
		EnaSupport: &types.AttributeBooleanValue{Value: aws.Bool(on)},
	})
	if err != nil {
		return fmt.Errorf("set ENA support of %s to %t: %w", instanceID, on, err)
	}
	return nil
}

// SetImageIMDSSupport sets the IMDS support attribute of an AMI (only
// "v2.0" exists).
func SetImageIMDSSupport(ctx context.Context, api ImageAttributeModifier, imageID, region, value string) error {
	_, err := api.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:     aws.String(imageID),
		ImdsSupport: &types.AttributeValue{Value: aws.String(value)},
	})
	if err != nil {
		return fmt.Errorf("set IMDS support of %s in %s to %s: %w", imageID, region, value, err)
	}
	return nil
}
