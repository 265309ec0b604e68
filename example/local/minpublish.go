//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// minPublish makes the publishing calls of distribute.pkr.hcl (see the
// comment of minimums) for the AMIs ps, the source first. The other
// account's copy is not a product: the leak check looks at this account.
func minPublish(ctx context.Context, e *minEnv, ps []product) error {
	own := func(region string) aws.Config {
		cfg := awstest.Config(e.endpoint, region)
		cfg.AppID = amiconfig.AppIDDistribute
		return cfg
	}
	for _, p := range ps {
		if err := minPublishIn(ctx, own(p.region), p.id); err != nil {
			return err
		}
	}
	// The other account, in eu-west-1.
	const region = "eu-west-1"
	base := own(e.region)
	stsc := sts.NewFromConfig(base)
	cred, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(demoRole), RoleSessionName: aws.String("ami-distribute"), ExternalId: aws.String("demo-external-id")})
	if err != nil {
		return err
	}
	acct := own(region)
	acct.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		c := cred.Credentials
		return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken)}, nil
	}))
	if _, err := sts.NewFromConfig(acct).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return err
	}
	home := ec2.NewFromConfig(base)
	src := ps[0].id
	if _, err := home.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(src), Attribute: ec2types.ImageAttributeNameLaunchPermission}); err != nil {
		return err
	}
	snaps := e.srcSnaps
	for _, s := range snaps {
		if _, err := home.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(s), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission}); err != nil {
			return err
		}
	}
	share := func(op ec2types.OperationType) error {
		mods := &ec2types.LaunchPermissionModifications{}
		lp := []ec2types.LaunchPermission{{UserId: aws.String(demoAccount)}}
		if op == ec2types.OperationTypeAdd {
			mods.Add = lp
		} else {
			mods.Remove = lp
		}
		if _, err := home.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(src), LaunchPermission: mods}); err != nil {
			return err
		}
		for _, s := range snaps {
			if _, err := home.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(s),
				Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission, OperationType: op, UserIds: []string{demoAccount}}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := share(ec2types.OperationTypeAdd); err != nil {
		return err
	}
	c := ec2.NewFromConfig(acct)
	cp, err := c.CopyImage(ctx, &ec2.CopyImageInput{
		Name: aws.String(fmt.Sprintf("demo-web-minimum-%d", e.run)), SourceImageId: aws.String(src), SourceRegion: aws.String(e.region),
		TagSpecifications: tagSpecs(ec2types.ResourceTypeImage, map[string]string{"Name": "demo-web"}),
	})
	if err != nil {
		return err
	}
	copyID := aws.ToString(cp.ImageId)
	if _, err := waitImage(ctx, c, copyID); err != nil {
		return err
	}
	if err := share(ec2types.OperationTypeRemove); err != nil {
		return err
	}
	if err := minPublishIn(ctx, acct, copyID); err != nil {
		return err
	}
	return nil
}

// minPublishIn writes the parameter and bumps the template in cfg's
// account and region.
func minPublishIn(ctx context.Context, cfg aws.Config, id string) error {
	s := ssm.NewFromConfig(cfg)
	if _, err := s.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(demoParameter)}); err != nil {
		var nf *ssmtypes.ParameterNotFound
		if !errors.As(err, &nf) {
			return err
		}
	}
	if _, err := s.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(demoParameter), Value: aws.String(id),
		Type: ssmtypes.ParameterTypeString, DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(true)}); err != nil {
		return err
	}
	c := ec2.NewFromConfig(cfg)
	lt, err := c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{demoTemplate}})
	if err != nil || len(lt.LaunchTemplates) != 1 {
		return fmt.Errorf("launch template %s in %s: %v", demoTemplate, cfg.Region, err)
	}
	v, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId: lt.LaunchTemplates[0].LaunchTemplateId, SourceVersion: aws.String("$Default"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(id)},
	})
	if err != nil {
		return err
	}
	_, err = c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: lt.LaunchTemplates[0].LaunchTemplateId,
		DefaultVersion: aws.String(strconv.FormatInt(aws.ToInt64(v.LaunchTemplateVersion.VersionNumber), 10))})
	return err
}
