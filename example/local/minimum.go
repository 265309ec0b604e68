//go:build unix

package main

// The minimum: for each local example, the AWS calls a build with exactly
// that template's settings must make, as plain aws-sdk-go-v2 calls. Bench
// mode makes them through the same proxy as packer's builds, so that the
// proxy counts them and their wall time is measured in the same run. moto
// changes states at once, so each wait is a single successful Describe.
// Nothing here checks, recovers or cleans up after a failure: it is the
// floor a careful build is measured against, not a build.
//
// Every call carries the app id of the component whose work it stands
// for, so that it is counted against that component.
//
// ebs.pkr.hcl, ami-ebs (13 calls; ssh_private_key_file, so no key pair;
// no security group given, so a temporary one):
//
//	DescribeImages (source_ami_filter), CreateSecurityGroup,
//	AuthorizeSecurityGroupIngress, RunInstances (run_tags as tag
//	specifications), DescribeInstances (running), StopInstances,
//	DescribeInstances (stopped), CreateImage (tags as tag
//	specifications), DescribeImages (available), CreateTags (tags and
//	snapshot_tags on the snapshots; AWS would take them as a tag
//	specification of CreateImage, moto does not), TerminateInstances,
//	DescribeInstances (terminated), DeleteSecurityGroup
//
// distribute.pkr.hcl: ami-ebs as above (13 calls), then
// ami-distribute (14 calls) to eu-west-1 and ap-southeast-2, sharing with
// two accounts and an organization, snapshots with one account, tags per
// region (one snapshot per AMI):
//
//	DescribeImages (the source's name and snapshots);
//	in each target region: CopyImage, DescribeImages (available),
//	ModifyImageAttribute (accounts and organization in one call),
//	ModifySnapshotAttribute, CreateTags (AMI and snapshot in one call);
//	in the source region: ModifyImageAttribute, ModifySnapshotAttribute,
//	CreateTags
//
// then it publishes (30 calls): in each of the three regions,
// GetParameter (the value to put back on failure), PutParameter,
// DescribeLaunchTemplates (the default to put back), CreateLaunchTemplateVersion,
// ModifyLaunchTemplate; for the other account, AssumeRole,
// GetCallerIdentity (the role acts in that account), DescribeImageAttribute
// and DescribeSnapshotAttribute (what to revoke afterwards),
// ModifyImageAttribute and ModifySnapshotAttribute (share),
// CopyImage with the account's credentials (tags as tag specifications),
// DescribeImages (available), ModifyImageAttribute and
// ModifySnapshotAttribute (revoke), and the account's GetParameter,
// PutParameter, DescribeLaunchTemplates, CreateLaunchTemplateVersion and
// ModifyLaunchTemplate in eu-west-1
//
// instance.pkr.hcl, ami-instance (13 calls + one PutObject per bundle
// part):
//
//	GetCallerIdentity (no account_id: the bundle's manifest names the
//	account), DescribeImages (source_ami_filter), CreateSecurityGroup,
//	AuthorizeSecurityGroupIngress, RunInstances, DescribeInstances
//	(running), PutObject per part and of the manifest (the aws-exec-read
//	ACL as a header), RegisterImage (tags as tag specifications),
//	DescribeImages (available), TerminateInstances, DescribeInstances
//	(terminated), DeleteSecurityGroup
//
// The parts have the sizes of the parts our build of the same run
// uploaded; their bytes are zeros.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/errgroup"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// minEnv is what a minimum call sequence works with.
type minEnv struct {
	endpoint, region, bucket string
	run                      int            // numbers names of this run
	ours                     []awstest.Call // our build's calls in this run
	srcSnaps                 []string       // the distributed source's snapshots (minDistribute)
}

func (e *minEnv) ec2(appID, region string) *ec2.Client {
	cfg := awstest.Config(e.endpoint, region)
	cfg.AppID = appID
	return ec2.NewFromConfig(cfg)
}

func (e *minEnv) s3(appID string) *s3.Client {
	cfg := awstest.Config(e.endpoint, e.region)
	cfg.AppID = appID
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// minimums are the minimum call sequences by template file name.
var minimums = map[string]func(context.Context, *minEnv) ([]product, error){
	"ebs.pkr.hcl": func(ctx context.Context, e *minEnv) ([]product, error) {
		img, err := minEBS(ctx, e, ebsSettings{
			runTags:  map[string]string{"Purpose": "demo-build"},
			tags:     map[string]string{"Name": "demo-web", "BuiltBy": "packer-plugin-ami"},
			withSrc:  true,
			snapTags: map[string]string{"Name": "demo-web"}, // over tags
		})
		if err != nil {
			return nil, err
		}
		return []product{{region: e.region, id: aws.ToString(img.ImageId), kind: "ebs", build: "minimum"}}, nil
	},
	"distribute.pkr.hcl": func(ctx context.Context, e *minEnv) ([]product, error) {
		img, err := minEBS(ctx, e, ebsSettings{
			tags: map[string]string{"Name": "demo-web", "BuiltBy": "packer-plugin-ami"},
		})
		if err != nil {
			return nil, err
		}
		ps, err := minDistribute(ctx, e, aws.ToString(img.ImageId), []string{"eu-west-1", "ap-southeast-2"})
		if err != nil {
			return ps, err
		}
		return ps, minPublish(ctx, e, ps)
	},
	"instance.pkr.hcl": minInstance,
	"copies.pkr.hcl": func(ctx context.Context, e *minEnv) ([]product, error) {
		img, err := minEBS(ctx, e, ebsSettings{tags: map[string]string{"Name": "demo-copies"}})
		if err != nil {
			return nil, err
		}
		return minCopies(ctx, e, *img, []string{"eu-west-1", "eu-central-1", "us-west-2", "ap-southeast-2"})
	},
}

// minCopies is what ami-ebs's ami_regions needs at least (8 calls for four
// regions): in each region CopyImage (the tags as tag specifications of
// the copy and its snapshots) and DescribeImages (available).
func minCopies(ctx context.Context, e *minEnv, src ec2types.Image, regions []string) ([]product, error) {
	ps := []product{{region: e.region, id: aws.ToString(src.ImageId), kind: "ebs", build: "minimum"}}
	ps = append(ps, make([]product, len(regions))...)
	var g errgroup.Group
	for i, region := range regions {
		g.Go(func() error {
			c := e.ec2(amiconfig.AppIDEBS, region)
			tags := map[string]string{"Name": "demo-copies"}
			cp, err := c.CopyImage(ctx, &ec2.CopyImageInput{
				Name: src.Name, SourceImageId: src.ImageId, SourceRegion: aws.String(e.region),
				TagSpecifications: append(tagSpecs(ec2types.ResourceTypeImage, tags), tagSpecs(ec2types.ResourceTypeSnapshot, tags)...),
			})
			if err != nil {
				return fmt.Errorf("copy to %s: %w", region, err)
			}
			ps[i+1] = product{region: region, id: aws.ToString(cp.ImageId), kind: "ebs", build: "minimum"}
			_, err = waitImage(ctx, c, aws.ToString(cp.ImageId))
			return err
		})
	}
	return ps, g.Wait()
}

// ebsSettings are the settings of an ami-ebs source block that change its
// calls.
type ebsSettings struct {
	runTags, tags, snapTags map[string]string
	withSrc                 bool // tags has SourceAMI = {{ .SourceAMI }}
}

func minEBS(ctx context.Context, e *minEnv, s ebsSettings) (*ec2types.Image, error) {
	c := e.ec2(amiconfig.AppIDEBS, e.region)
	src, err := findSource(ctx, c, map[string]string{
		"name":                "al2023-ami-2023.*-kernel-6.1-x86_64",
		"virtualization-type": "hvm",
	})
	if err != nil {
		return nil, err
	}
	inst, sg, err := launch(ctx, c, aws.ToString(src.ImageId), ec2types.InstanceTypeT3Micro, s.runTags, e.run)
	if err != nil {
		return nil, err
	}
	if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{inst}}); err != nil {
		return nil, err
	}
	if err := waitInstance(ctx, c, inst, ec2types.InstanceStateNameStopped); err != nil {
		return nil, err
	}
	tags := s.tags
	if s.withSrc {
		tags = withTag(tags, "SourceAMI", aws.ToString(src.ImageId))
	}
	made, err := c.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId:        aws.String(inst),
		Name:              aws.String(fmt.Sprintf("minimum-web-%d", e.run)),
		Description:       aws.String("Demo AMI built against the local emulator"),
		TagSpecifications: tagSpecs(ec2types.ResourceTypeImage, tags),
	})
	if err != nil {
		return nil, err
	}
	img, err := waitImage(ctx, c, aws.ToString(made.ImageId))
	if err != nil {
		return nil, err
	}
	// tags go on the snapshots too, snapshot_tags over them. AWS would
	// take them as a tag specification of CreateImage too; moto answers
	// that with HTTP 500.
	snapTags := map[string]string{}
	maps.Copy(snapTags, tags)
	maps.Copy(snapTags, s.snapTags)
	if snaps := snapshotsOf(*img); len(snapTags) > 0 && len(snaps) > 0 {
		if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: snaps, Tags: toTags(snapTags)}); err != nil {
			return nil, err
		}
	}
	return img, teardown(ctx, c, inst, sg)
}

func minDistribute(ctx context.Context, e *minEnv, src string, targets []string) ([]product, error) {
	home := e.ec2(amiconfig.AppIDDistribute, e.region)
	out, err := home.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{src}})
	if err != nil {
		return nil, err
	}
	if len(out.Images) != 1 {
		return nil, fmt.Errorf("source %s not found", src)
	}
	srcImg := out.Images[0]
	e.srcSnaps = snapshotsOf(srcImg)
	ps := make([]product, len(targets)+1)
	var g errgroup.Group
	tags := func(region string) map[string]string {
		return map[string]string{"Name": "demo-web", "Region": region, "SourceRegion": e.region, "SourceAMI": src}
	}
	// finish shares an AMI and its snapshots and, when tag is set, tags
	// them (a copy is tagged by its CopyImage).
	finish := func(c *ec2.Client, region string, img ec2types.Image, tag bool) error {
		id := aws.ToString(img.ImageId)
		if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
			ImageId: img.ImageId,
			LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{
				{UserId: aws.String("111122223333")},
				{UserId: aws.String("444455556666")},
				{OrganizationArn: aws.String("arn:aws:organizations::123456789012:organization/o-abcdefghij")},
			}},
		}); err != nil {
			return err
		}
		resources := []string{id}
		for _, snap := range snapshotsOf(img) {
			if _, err := c.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
				SnapshotId:    aws.String(snap),
				Attribute:     ec2types.SnapshotAttributeNameCreateVolumePermission,
				OperationType: ec2types.OperationTypeAdd,
				UserIds:       []string{"111122223333"},
			}); err != nil {
				return err
			}
			resources = append(resources, snap)
		}
		if !tag {
			return nil
		}
		_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: resources, Tags: toTags(tags(region))})
		return err
	}
	g.Go(func() error {
		ps[0] = product{region: e.region, id: src, kind: "ebs", build: "minimum"}
		return finish(home, e.region, srcImg, true)
	})
	for i, region := range targets {
		g.Go(func() error {
			c := e.ec2(amiconfig.AppIDDistribute, region)
			cp, err := c.CopyImage(ctx, &ec2.CopyImageInput{
				Name:          srcImg.Name,
				SourceImageId: aws.String(src),
				SourceRegion:  aws.String(e.region),
				TagSpecifications: append(tagSpecs(ec2types.ResourceTypeImage, tags(region)),
					tagSpecs(ec2types.ResourceTypeSnapshot, tags(region))...),
			})
			if err != nil {
				return fmt.Errorf("copy to %s: %w", region, err)
			}
			ps[i+1] = product{region: region, id: aws.ToString(cp.ImageId), kind: "ebs", build: "minimum"}
			img, err := waitImage(ctx, c, aws.ToString(cp.ImageId))
			if err != nil {
				return err
			}
			return finish(c, region, *img, false)
		})
	}
	return ps, g.Wait()
}

var partKeyRE = regexp.MustCompile(`\.part\.\d+$`)

func minInstance(ctx context.Context, e *minEnv) ([]product, error) {
	var parts []int64
	for _, c := range e.ours {
		if c.Action == "PutObject" && partKeyRE.MatchString(c.Key) {
			parts = append(parts, c.ContentLength)
		}
	}
	if len(parts) == 0 {
		return nil, errors.New("our build of the same run uploaded no bundle part")
	}
	stsCfg := awstest.Config(e.endpoint, e.region)
	stsCfg.AppID = amiconfig.AppIDInstance
	if _, err := sts.NewFromConfig(stsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return nil, err
	}
	c := e.ec2(amiconfig.AppIDInstance, e.region)
	src, err := findSource(ctx, c, map[string]string{
		"name":             "amzn-ami-minimal-pv-*",
		"root-device-type": "instance-store",
	})
	if err != nil {
		return nil, err
	}
	inst, sg, err := launch(ctx, c, aws.ToString(src.ImageId), ec2types.InstanceTypeM3Medium, nil, e.run)
	if err != nil {
		return nil, err
	}
	s3c := e.s3(amiconfig.AppIDInstance)
	prefix := fmt.Sprintf("minimum/%d/", e.run)
	put := func(key string, body []byte) error {
		_, err := s3c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(e.bucket), Key: aws.String(prefix + key),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
			ACL: s3types.ObjectCannedACLAwsExecRead,
		})
		return err
	}
	var manifest strings.Builder
	manifest.WriteString("<manifest><image><parts>")
	for i, n := range parts {
		if err := put(fmt.Sprintf("image.part.%d", i), make([]byte, n)); err != nil {
			return nil, err
		}
		fmt.Fprintf(&manifest, "<part index=\"%d\"><filename>image.part.%d</filename></part>", i, i)
	}
	manifest.WriteString("</parts></image></manifest>")
	if err := put("image.manifest.xml", []byte(manifest.String())); err != nil {
		return nil, err
	}
	reg, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:           aws.String(fmt.Sprintf("minimum-instance-%d", e.run)),
		Description:    aws.String("Demo instance-store AMI built against the local emulator"),
		ImageLocation:  aws.String(e.bucket + "/" + prefix + "image.manifest.xml"),
		Architecture:   ec2types.ArchitectureValuesX8664,
		RootDeviceName: aws.String("/dev/sda1"),
		TagSpecifications: tagSpecs(ec2types.ResourceTypeImage, map[string]string{
			"Name": "demo-instance", "SourceAMI": aws.ToString(src.ImageId), "BuiltBy": "packer-plugin-ami",
		}),
	})
	if err != nil {
		return nil, err
	}
	if _, err := waitImage(ctx, c, aws.ToString(reg.ImageId)); err != nil {
		return nil, err
	}
	p := product{region: e.region, id: aws.ToString(reg.ImageId), kind: "instance-store", build: "minimum"}
	return []product{p}, teardown(ctx, c, inst, sg)
}

// findSource is source_ami_filter with most_recent and owners amazon.
func findSource(ctx context.Context, c *ec2.Client, filters map[string]string) (*ec2types.Image, error) {
	in := &ec2.DescribeImagesInput{Owners: []string{"amazon"}}
	for k, v := range filters {
		in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String(k), Values: []string{v}})
	}
	out, err := c.DescribeImages(ctx, in)
	if err != nil {
		return nil, err
	}
	var best *ec2types.Image
	for i, img := range out.Images {
		if best == nil || aws.ToString(img.CreationDate) > aws.ToString(best.CreationDate) {
			best = &out.Images[i]
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no source image matches %v", filters)
	}
	return best, nil
}

// launch makes a temporary security group open to SSH and runs one
// instance in it, waiting until it runs.
func launch(ctx context.Context, c *ec2.Client, ami string, typ ec2types.InstanceType, runTags map[string]string, run int) (inst, sg string, err error) {
	g, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(fmt.Sprintf("minimum-%d", run)),
		Description: aws.String("temporary group for a build"),
	})
	if err != nil {
		return "", "", err
	}
	sg = aws.ToString(g.GroupId)
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(sg), IpProtocol: aws.String("tcp"),
		FromPort: aws.Int32(22), ToPort: aws.Int32(22), CidrIp: aws.String("0.0.0.0/0"),
	}); err != nil {
		return "", "", err
	}
	r, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(ami), InstanceType: typ, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SecurityGroupIds:  []string{sg},
		TagSpecifications: tagSpecs(ec2types.ResourceTypeInstance, runTags),
	})
	if err != nil {
		return "", "", err
	}
	inst = aws.ToString(r.Instances[0].InstanceId)
	return inst, sg, waitInstance(ctx, c, inst, ec2types.InstanceStateNameRunning)
}

// teardown terminates the instance, waits until it is gone and deletes
// its security group.
func teardown(ctx context.Context, c *ec2.Client, inst, sg string) error {
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{inst}}); err != nil {
		return err
	}
	if err := waitInstance(ctx, c, inst, ec2types.InstanceStateNameTerminated); err != nil {
		return err
	}
	_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sg)})
	return err
}

// waitInstance describes the instance until it is in state; against moto
// the first answer is the one.
func waitInstance(ctx context.Context, c *ec2.Client, id string, state ec2types.InstanceStateName) error {
	for range 10 {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return err
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if i.State != nil && i.State.Name == state {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("instance %s is not %s", id, state)
}

// waitImage describes the image until it is available.
func waitImage(ctx context.Context, c *ec2.Client, id string) (*ec2types.Image, error) {
	for range 10 {
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err != nil {
			return nil, err
		}
		if len(out.Images) == 1 && out.Images[0].State == ec2types.ImageStateAvailable {
			return &out.Images[0], nil
		}
	}
	return nil, fmt.Errorf("image %s is not available", id)
}

func snapshotsOf(img ec2types.Image) []string {
	var ids []string
	for _, b := range img.BlockDeviceMappings {
		if b.Ebs != nil && b.Ebs.SnapshotId != nil {
			ids = append(ids, aws.ToString(b.Ebs.SnapshotId))
		}
	}
	return ids
}

func toTags(m map[string]string) []ec2types.Tag {
	var ts []ec2types.Tag
	for k, v := range m {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return ts
}

func tagSpecs(rt ec2types.ResourceType, m map[string]string) []ec2types.TagSpecification {
	if len(m) == 0 {
		return nil
	}
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: toTags(m)}}
}

func withTag(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range m {
		out[key] = val
	}
	return out
}
