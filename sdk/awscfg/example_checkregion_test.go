package awscfg_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
)

// regionList plays EC2's DescribeRegions for one account: it answers with
// the regions named in the request that exist, with their opt-in status.
// Any narrow client works with the SDK.
type regionList map[string]string // region name → opt-in status

func (l regionList) DescribeRegions(_ context.Context, in *ec2.DescribeRegionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	out := &ec2.DescribeRegionsOutput{}
	for _, name := range in.RegionNames {
		if status, ok := l[name]; ok {
			out.Regions = append(out.Regions, types.Region{
				RegionName:  aws.String(name),
				OptInStatus: aws.String(status),
				Endpoint:    aws.String("ec2." + name + ".amazonaws.com"),
			})
		}
	}
	return out, nil
}

// Check, before anything is built, that the build region and the regions
// an AMI is copied to exist and are enabled for the account.
func ExampleCheckRegion() {
	client := regionList{
		"us-east-1":  "opt-in-not-required",
		"eu-west-1":  "opt-in-not-required",
		"af-south-1": awscfg.OptInNotOptedIn,
	}
	for _, copyTo := range [][]string{{"eu-west-1"}, {"eu-west-1", "af-south-1"}, {"eu-west-9"}} {
		out, err := awscfg.CheckRegion(context.Background(), client, &awscfg.CheckRegionInput{Region: "us-east-1", Also: copyTo})
		var re *awscfg.RegionError
		switch {
		case errors.As(err, &re):
			fmt.Println("refused:", err)
		case err != nil:
			fmt.Println("error:", err)
		default:
			fmt.Println("ok:", aws.ToString(out.Region.RegionName), "and", aws.ToString(out.Also[0].Endpoint))
		}
	}
	// Output:
	// ok: us-east-1 and ec2.eu-west-1.amazonaws.com
	// refused: region af-south-1 is not enabled for this account (opt-in status "not-opted-in")
	// refused: region eu-west-9 does not exist
}
