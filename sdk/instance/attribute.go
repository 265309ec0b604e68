package instance

import (
	"context"
	"fmt"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ModifyAttributeAPI is the client behaviour SetENASupport and
// SetSriovNetSupport need.
type ModifyAttributeAPI interface {
	ModifyInstanceAttribute(ctx context.Context, in *ec2.ModifyInstanceAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
}

var _ ModifyAttributeAPI = (*ec2.Client)(nil)

// SetENASupportInput names an instance and whether it supports ENA.
type SetENASupportInput struct {
	// InstanceID is the instance to change; it must be stopped. Required.
	InstanceID string
	// Enabled turns enhanced networking with ENA on (true) or off (false).
	Enabled bool
}

// SetENASupportOutput is the result of SetENASupport.
type SetENASupportOutput struct{}

// SetENASupport turns ENA support of a stopped instance on or off. An
// image created from the instance inherits the attribute. It is one
// ModifyInstanceAttribute call, without retries of its own.
func SetENASupport(ctx context.Context, api ModifyAttributeAPI, in *SetENASupportInput, optFns ...func(*Options)) (*SetENASupportOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	if in.InstanceID == "" {
		return nil, fmt.Errorf("set ENA support in %s: no instance ID given", region)
	}
	o.logf("Setting ENA support of %s in %s to %t", in.InstanceID, region, in.Enabled)
	_, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(in.InstanceID),
		EnaSupport: &types.AttributeBooleanValue{Value: aws.Bool(in.Enabled)},
	})
	if err != nil {
		return nil, fmt.Errorf("set ENA support of %s in %s to %t: %w", in.InstanceID, region, in.Enabled, err)
	}
	return &SetENASupportOutput{}, nil
}

// SetSriovNetSupportInput names an instance whose SR-IOV enhanced
// networking (the Intel 82599 VF interface) is turned on.
type SetSriovNetSupportInput struct {
	// InstanceID is the instance to change; it must be stopped. Required.
	InstanceID string
}

// SetSriovNetSupportOutput is the result of SetSriovNetSupport.
type SetSriovNetSupportOutput struct{}

// SetSriovNetSupport turns on SR-IOV enhanced networking ("simple") of a
// stopped instance; an image created from the instance inherits it. EC2
// offers no way to turn it off again. It is one ModifyInstanceAttribute
// call, without retries of its own.
func SetSriovNetSupport(ctx context.Context, api ModifyAttributeAPI, in *SetSriovNetSupportInput, optFns ...func(*Options)) (*SetSriovNetSupportOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	if in.InstanceID == "" {
		return nil, fmt.Errorf("set SR-IOV support in %s: no instance ID given", region)
	}
	o.logf("Turning on SR-IOV support of %s in %s", in.InstanceID, region)
	_, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId:      aws.String(in.InstanceID),
		SriovNetSupport: &types.AttributeValue{Value: aws.String("simple")},
	})
	if err != nil {
		return nil, fmt.Errorf("turn on SR-IOV support of %s in %s: %w", in.InstanceID, region, err)
	}
	return &SetSriovNetSupportOutput{}, nil
}
