package image

import (
	"context"
	"fmt"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ModifyAttributeAPI is the client behaviour SetIMDSSupport and
// SetProductCodes need.
type ModifyAttributeAPI interface {
	ModifyImageAttribute(ctx context.Context, in *ec2.ModifyImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error)
}

var _ ModifyAttributeAPI = (*ec2.Client)(nil)

// IMDSv2 is the IMDS support value that makes instances launched from an
// image require IMDSv2; it is the only value EC2 accepts.
const IMDSv2 = "v2.0"

// SetIMDSSupportInput names an image and its IMDS support value.
type SetIMDSSupportInput struct {
	// ImageID is the image to change. Required.
	ImageID string
	// Value is the IMDS support value. Empty means IMDSv2 ("v2.0"), the
	// only value EC2 accepts. Once set, it cannot be unset.
	Value string
	// Region is used in messages; "" means the client's region.
	Region string
}

// SetIMDSSupportOutput is the result of SetIMDSSupport.
type SetIMDSSupportOutput struct{}

// SetIMDSSupport sets the IMDS support attribute of an image, which
// CreateImage cannot set: with "v2.0", instances launched from the image
// require IMDSv2 by default. It is one ModifyImageAttribute call, without
// retries of its own.
func SetIMDSSupport(ctx context.Context, api ModifyAttributeAPI, in *SetIMDSSupportInput, optFns ...func(*Options)) (*SetIMDSSupportOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, in.Region)
	value := in.Value
	if value == "" {
		value = IMDSv2
	}
	if in.ImageID == "" {
		return nil, fmt.Errorf("set IMDS support in %s: no image ID given", region)
	}
	o.logf("Setting IMDS support of %s in %s to %s", in.ImageID, region, value)
	_, err := api.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:     aws.String(in.ImageID),
		ImdsSupport: &types.AttributeValue{Value: aws.String(value)},
	})
	if err != nil {
		return nil, fmt.Errorf("set IMDS support of %s in %s to %s: %w", in.ImageID, region, value, err)
	}
	return &SetIMDSSupportOutput{}, nil
}

// SetProductCodesInput names an image and the product codes to add.
type SetProductCodesInput struct {
	// ImageID is the image to change. Required.
	ImageID string
	// ProductCodes are added to the image. Required.
	ProductCodes []string
	// Region is used in messages; "" means the client's region.
	Region string
}

// SetProductCodesOutput is the result of SetProductCodes.
type SetProductCodesOutput struct{}

// SetProductCodes associates product codes with an image. Once added, a
// product code cannot be removed. It is one ModifyImageAttribute call,
// without retries of its own.
func SetProductCodes(ctx context.Context, api ModifyAttributeAPI, in *SetProductCodesInput, optFns ...func(*Options)) (*SetProductCodesOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, in.Region)
	if in.ImageID == "" || len(in.ProductCodes) == 0 {
		return nil, fmt.Errorf("set product codes in %s: an image ID and at least one product code are required", region)
	}
	o.logf("Adding product codes %v to %s in %s", in.ProductCodes, in.ImageID, region)
	_, err := api.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:      aws.String(in.ImageID),
		ProductCodes: in.ProductCodes,
	})
	if err != nil {
		return nil, fmt.Errorf("add product codes %v to %s in %s: %w", in.ProductCodes, in.ImageID, region, err)
	}
	return &SetProductCodesOutput{}, nil
}
