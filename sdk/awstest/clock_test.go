//go:build unix

package awstest

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestNextSecondMovesToALaterSecond(t *testing.T) {
	before := time.Now()
	NextSecond(t)
	if after := time.Now(); after.Unix() <= before.Unix() {
		t.Fatalf("NextSecond returned at %s, in the second it was called (%s)", after.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano))
	}
}

// TestNextSecondOrdersCreationDates: an AMI registered after NextSecond
// has a strictly later CreationDate in moto than one registered before.
func TestNextSecondOrdersCreationDates(t *testing.T) {
	ctx := context.Background()
	ec2c, _ := Clients(sharedMoto.Endpoint, "ap-southeast-2")
	register := func(name string) time.Time {
		t.Helper()
		out, err := ec2c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String(name), RootDeviceName: aws.String("/dev/xvda")})
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		d, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(out.ImageId)}})
		if err != nil || len(d.Images) != 1 {
			t.Fatalf("describe %s: %v", aws.ToString(out.ImageId), err)
		}
		created, err := time.Parse(time.RFC3339, aws.ToString(d.Images[0].CreationDate))
		if err != nil {
			t.Fatalf("CreationDate of %s: %v", aws.ToString(out.ImageId), err)
		}
		return created
	}
	first := register("next-second-1")
	NextSecond(t)
	if second := register("next-second-2"); !second.After(first) {
		t.Errorf("image registered after NextSecond created at %s, the one before at %s; want a later second", second, first)
	}
}
