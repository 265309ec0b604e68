package iamprofile_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/amiforge/packer-plugin-ami/sdk/iamprofile"
)

// profiles answers GetInstanceProfile from a fixed set of profiles, as IAM
// would: an unknown name is a NoSuchEntity error.
type profiles map[string]string // name → ARN

func (p profiles) GetInstanceProfile(_ context.Context, in *iam.GetInstanceProfileInput, _ ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	name := aws.ToString(in.InstanceProfileName)
	arn, ok := p[name]
	if !ok {
		return nil, &types.NoSuchEntityException{Message: aws.String("Instance Profile " + name + " cannot be found.")}
	}
	return &iam.GetInstanceProfileOutput{InstanceProfile: &types.InstanceProfile{InstanceProfileName: aws.String(name), Arn: aws.String(arn)}}, nil
}

// Check an existing instance profile, given by name or by ARN, before a
// build launches with it, so that a typo fails the build at once.
func ExampleCheck() {
	client := profiles{"builder": "arn:aws:iam::123456789012:instance-profile/ci/builder"}
	for _, p := range []string{"builder", "arn:aws:iam::123456789012:instance-profile/ci/builder", "biulder"} {
		out, err := iamprofile.Check(context.Background(), client, &iamprofile.CheckInput{Profile: p})
		switch {
		case errors.Is(err, iamprofile.ErrNotFound):
			fmt.Println("not found:", err)
		case err != nil:
			fmt.Println("error:", err)
		default:
			fmt.Println(out.ARN)
		}
	}
	// Output:
	// arn:aws:iam::123456789012:instance-profile/ci/builder
	// arn:aws:iam::123456789012:instance-profile/ci/builder
	// not found: look up IAM instance profile "biulder": the instance profile does not exist
}
