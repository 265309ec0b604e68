//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// What distribute.pkr.hcl publishes: the names are the template's.
const (
	demoTemplate  = "demo-web"
	demoParameter = "/demo/web/latest"
	demoAccount   = "222222222222"
	demoRole      = "arn:aws:iam::222222222222:role/ami-publisher"
)

// account is this account or the demo's other account, with its regions.
type account struct {
	id      string
	cfg     func(region string) aws.Config
	regions []string
}

// demoAccounts returns this account (regions) and the other account of
// distribute.pkr.hcl (its copies are in eu-west-1), both straight on moto.
func demoAccounts(endpoint string, regions []string) []account {
	own := func(region string) aws.Config { return awstest.Config(endpoint, region) }
	other := func(region string) aws.Config {
		cfg := awstest.Config(endpoint, region)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), demoRole))
		return cfg
	}
	return []account{
		{id: "this", cfg: own, regions: regions},
		{id: demoAccount, cfg: other, regions: []string{"eu-west-1"}},
	}
}

// preparePublish makes the launch template distribute.pkr.hcl bumps, in
// every region of this account and in the other account's region, as a
// team would have it before its first release: version 1 with an older
// AMI.
func preparePublish(ctx context.Context, endpoint string, regions []string) error {
	for _, a := range demoAccounts(endpoint, regions) {
		for _, r := range a.regions {
			_, err := ec2.NewFromConfig(a.cfg(r)).CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
				LaunchTemplateName: aws.String(demoTemplate),
				LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: ec2types.InstanceTypeT3Micro},
			})
			if err != nil {
				return fmt.Errorf("create launch template %s in %s (account %s): %w", demoTemplate, r, a.id, err)
			}
		}
	}
	return nil
}

// writePublished prints, per account and region, the AMIs the account
// owns, what the parameter holds and the template's default version.
func writePublished(ctx context.Context, w io.Writer, endpoint string, regions []string) error {
	tw := tabwriter.NewWriter(newIndent(w), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ACCOUNT\tREGION\tOWNS\t%s\t%s DEFAULT\n", demoParameter, demoTemplate)
	for _, a := range demoAccounts(endpoint, regions) {
		for _, r := range a.regions {
			c := ec2.NewFromConfig(a.cfg(r))
			imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
			if err != nil {
				return fmt.Errorf("AMIs of account %s in %s: %w", a.id, r, err)
			}
			var owned []string
			for _, img := range imgs.Images {
				owned = append(owned, aws.ToString(img.ImageId))
			}
			slices.Sort(owned)
			p, err := ssm.NewFromConfig(a.cfg(r)).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(demoParameter)})
			if err != nil {
				return fmt.Errorf("%s of account %s in %s: %w", demoParameter, a.id, r, err)
			}
			v, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
				LaunchTemplateName: aws.String(demoTemplate), Versions: []string{"$Default"},
			})
			if err != nil || len(v.LaunchTemplateVersions) != 1 {
				return fmt.Errorf("default version of %s of account %s in %s: %v", demoTemplate, a.id, r, err)
			}
			def := v.LaunchTemplateVersions[0]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tversion %d: %s\n", a.id, r, dash(fmt.Sprint(owned)), aws.ToString(p.Parameter.Value),
				aws.ToInt64(def.VersionNumber), aws.ToString(def.LaunchTemplateData.ImageId))
		}
	}
	return tw.Flush()
}
