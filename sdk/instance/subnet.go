package instance

import (
	"context"
	"fmt"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// DescribeSubnetsAPI is the client behaviour DescribeSubnet needs.
type DescribeSubnetsAPI interface {
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
}

var _ DescribeSubnetsAPI = (*ec2.Client)(nil)

// codeSubnetNotFound is the AWS error code of an unknown subnet.
const codeSubnetNotFound = "InvalidSubnetID.NotFound"

// DescribeSubnetInput names a subnet.
type DescribeSubnetInput struct {
	// SubnetID is the subnet, such as "subnet-0123456789abcdef0". Required.
	SubnetID string
}

// DescribeSubnetOutput is the result of DescribeSubnet.
type DescribeSubnetOutput struct {
	// Subnet is the subnet as EC2 describes it.
	Subnet types.Subnet
	// VPCID is the VPC of the subnet, for example to create a security
	// group for an instance launched in it.
	VPCID string
	// AvailabilityZone is the zone of the subnet.
	AvailabilityZone string
}

// DescribeSubnet returns a subnet and its VPC. A subnet that does not
// exist yields an error with API code InvalidSubnetID.NotFound (also when
// AWS answers with an empty list), usable with errors.As and
// smithy.APIError.
func DescribeSubnet(ctx context.Context, api DescribeSubnetsAPI, in *DescribeSubnetInput, optFns ...func(*Options)) (*DescribeSubnetOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	if in.SubnetID == "" {
		return nil, fmt.Errorf("describe subnet in %s: no subnet ID given", region)
	}
	out, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{in.SubnetID}})
	if err != nil {
		return nil, fmt.Errorf("describe subnet %s in %s: %w", in.SubnetID, region, err)
	}
	for _, s := range out.Subnets {
		if aws.ToString(s.SubnetId) != in.SubnetID {
			continue
		}
		vpc := aws.ToString(s.VpcId)
		o.logf("Subnet %s in %s is in %s", in.SubnetID, region, vpc)
		return &DescribeSubnetOutput{Subnet: s, VPCID: vpc, AvailabilityZone: aws.ToString(s.AvailabilityZone)}, nil
	}
	return nil, fmt.Errorf("describe subnet %s in %s: %w", in.SubnetID, region, &smithy.GenericAPIError{
		Code:    codeSubnetNotFound,
		Message: fmt.Sprintf("subnet %s is not in the DescribeSubnets answer", in.SubnetID),
		Fault:   smithy.FaultClient,
	})
}
