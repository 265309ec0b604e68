//go:build unix

package awscfg_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
)

func Example() {
	cfg := awscfg.Config{
		Region:    "us-east-1",
		RetryMode: awscfg.RetryModeAdaptive,
		AssumeRole: &awscfg.AssumeRole{
			RoleARN:     "arn:aws:iam::123456789012:role/image-builder",
			SessionName: "ami-build",
		},
	}
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	sess, err := awscfg.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	out, err := sess.EC2("eu-west-1").DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(out.Regions), "regions")
}

func ExampleConfig_Validate() {
	cfg := awscfg.Config{Region: "us-east", AccessKey: "AKIAIOSFODNN7EXAMPLE", RetryMode: "fast"}
	fmt.Println(cfg.Validate())
	// Output:
	// Region: "us-east" is not a region name; want lower-case words and a number joined by dashes, like "us-east-1"
	// SecretKey: must be set when AccessKey is set
	// RetryMode: "fast" is unknown; want "standard", "adaptive" or empty
}

func ExampleConfig_String() {
	cfg := awscfg.Config{Region: "us-east-1", AccessKey: "AKIAIOSFODNN7EXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG"}
	fmt.Println(cfg)
	// Output:
	// awscfg.Config{Region: "us-east-1", AccessKey: "****************MPLE", SecretKey: "<redacted>"}
}
