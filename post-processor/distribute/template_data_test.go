package distribute

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestTemplateDataHasBuildVariables: the post-processor's templates see
// the AMI being distributed under the builders' names for a source AMI,
// and their own variables besides.
func TestTemplateDataHasBuildVariables(t *testing.T) {
	src := types.Image{
		ImageId: aws.String("ami-0123456789abcdef0"), Name: aws.String("web-1"), Description: aws.String("web"),
		OwnerId: aws.String("111122223333"), ImageOwnerAlias: aws.String("amazon"), CreationDate: aws.String("2026-01-02T03:04:05.000Z"),
		Tags: []types.Tag{{Key: aws.String("Team"), Value: aws.String("edge")}},
	}
	var c Config
	got, err := c.render(`{{ .SourceAMI }} {{ .SourceAMIName }} {{ .SourceAMIDescription }} {{ .SourceAMIOwner }} {{ .SourceAMIOwnerName }} {{ .SourceAMICreationDate }} {{ index .SourceAMITags "Team" }} {{ .BuildRegion }} {{ .SourceRegion }} {{ .Region }}`,
		newTemplateData(src, "us-east-1", "eu-west-1"))
	want := "ami-0123456789abcdef0 web-1 web 111122223333 amazon 2026-01-02T03:04:05.000Z edge us-east-1 us-east-1 eu-west-1"
	if err != nil || got != want {
		t.Errorf("render = %q, %v; want %q", got, err, want)
	}
}
