package image_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// pendingTwice answers DescribeImages for one image: pending twice, then
// available (or failed, when fail is set). Any narrow client works with
// the SDK; a struct with one method is enough for a test.
type pendingTwice struct {
	calls int
	fail  bool
}

func (p *pendingTwice) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	p.calls++
	state := types.ImageStatePending
	switch {
	case p.calls > 2 && p.fail:
		state = types.ImageStateFailed
	case p.calls > 2:
		state = types.ImageStateAvailable
	}
	return &ec2.DescribeImagesOutput{Images: []types.Image{{
		ImageId: aws.String(in.ImageIds[0]), State: state,
		StateReason: &types.StateReason{Code: aws.String("Client.Example"), Message: aws.String("snapshot copy failed")},
	}}}, nil
}

// Wait for an image to become available; a failed image is a *StateError.
func ExampleWait() {
	ctx := context.Background()
	fast := image.WaitOptions{MinDelay: time.Millisecond, MaxDelay: time.Millisecond}

	api := &pendingTwice{}
	out, err := image.Wait(ctx, api, &image.WaitInput{ImageID: "ami-0123456789abcdef0", Region: "eu-west-1", Wait: fast})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(aws.ToString(out.Image.ImageId), out.Image.State, "after", api.calls, "checks")

	_, err = image.Wait(ctx, &pendingTwice{fail: true}, &image.WaitInput{ImageID: "ami-0123456789abcdef0", Region: "eu-west-1", Wait: fast})
	var se *image.StateError
	if errors.As(err, &se) {
		fmt.Println(se.ImageID, se.State, se.Reason)
	}
	// Output:
	// ami-0123456789abcdef0 available after 3 checks
	// ami-0123456789abcdef0 failed snapshot copy failed
}
