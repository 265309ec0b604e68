//go:build unix

package awstest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// assumedConfig returns a Config for endpoint whose credentials come from
// STS AssumeRole of roleARN through endpoint; moto maps them to the role's
// account.
func assumedConfig(t *testing.T, endpoint, region, roleARN string) aws.Config {
	t.Helper()
	out, err := STSClient(endpoint, region).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("awstest"),
	})
	if err != nil {
		t.Fatalf("AssumeRole %s: %v", roleARN, err)
	}
	cfg := Config(endpoint, region)
	cr := out.Credentials
	cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))
	return cfg
}

// accountHeaderClient adds moto's x-moto-account-id header to every request.
type accountHeaderClient struct{ account string }

func (c accountHeaderClient) Do(r *http.Request) (*http.Response, error) {
	r.Header.Set("X-Moto-Account-Id", c.account)
	return http.DefaultClient.Do(r)
}

// share grants account launch permission on img and, when snapshots is
// set, create-volume permission on its snapshots (flat form: moto ignores
// the structured one).
func share(t *testing.T, owner *ec2.Client, img, account string, snapshots bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := owner.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(img),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{UserId: aws.String(account)}}},
	}); err != nil {
		t.Fatalf("share %s with %s: %v", img, account, err)
	}
	if !snapshots {
		return
	}
	out, err := owner.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{img}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("DescribeImages %s: %v", img, err)
	}
	for _, m := range out.Images[0].BlockDeviceMappings {
		if m.Ebs == nil || m.Ebs.SnapshotId == nil {
			continue
		}
		if _, err := owner.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
			SnapshotId: m.Ebs.SnapshotId, Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
			OperationType: ec2types.OperationTypeAdd, UserIds: []string{account},
		}); err != nil {
			t.Fatalf("share snapshot %s with %s: %v", *m.Ebs.SnapshotId, account, err)
		}
	}
}

func TestProxyCrossAccountCopyImage(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	const (
		srcRegion = "ap-southeast-1"
		dstRegion = "ap-northeast-2"
		accountB  = "111111111111"
	)
	owner, _ := Clients(p.URL, srcRegion)
	bCfg := assumedConfig(t, p.URL, dstRegion, "arn:aws:iam::"+accountB+":role/x")
	b := ec2.NewFromConfig(bCfg)
	bSrc := ec2.NewFromConfig(bCfg, func(o *ec2.Options) { o.Region = srcRegion })
	input := func(src, name string) *ec2.CopyImageInput {
		return &ec2.CopyImageInput{
			SourceImageId: aws.String(src), SourceRegion: aws.String(srcRegion), Name: aws.String(name),
			Description: aws.String("copy of " + src), ClientToken: aws.String("token-" + name),
			TagSpecifications: []ec2types.TagSpecification{
				{ResourceType: ec2types.ResourceTypeImage, Tags: []ec2types.Tag{{Key: aws.String("run"), Value: aws.String(name)}}},
			},
		}
	}

	tests := []struct {
		name             string
		launch, snapshot bool
		wantCode         string
	}{
		{name: "shared", launch: true, snapshot: true},
		{name: "not shared", wantCode: "InvalidAMIID.NotFound"},
		{name: "snapshots not shared", launch: true, wantCode: "InvalidRequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "xacct-" + strings.ReplaceAll(tc.name, " ", "-")
			src := sourceImage(t, owner, srcRegion, name+"-src")
			if tc.launch {
				share(t, owner, src, accountB, tc.snapshot)
			}
			// The grantee sees a shared AMI by its ID, and only then.
			seen, err := bSrc.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{src}})
			if tc.launch {
				if err != nil || len(seen.Images) != 1 || aws.ToString(seen.Images[0].OwnerId) != TestAccountID {
					t.Errorf("grantee's DescribeImages of %s: %v", src, err)
				}
			} else if code := errorCode(err); code != "InvalidAMIID.NotFound" {
				t.Errorf("grantee's DescribeImages of unshared %s: %v", src, err)
			}

			out, err := b.CopyImage(ctx, input(src, name))
			if tc.wantCode != "" {
				if code := errorCode(err); code != tc.wantCode {
					t.Fatalf("CopyImage: %v, want code %s", err, tc.wantCode)
				}
				mine, err := b.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
					Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
				if err != nil || len(mine.Images) != 0 {
					t.Errorf("refused copy left %d images: %v", len(mine.Images), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CopyImage: %v", err)
			}
			again, err := b.CopyImage(ctx, input(src, name))
			if err != nil || aws.ToString(again.ImageId) != aws.ToString(out.ImageId) {
				t.Fatalf("replayed token: %v, %v; want %s", again, err, aws.ToString(out.ImageId))
			}
			mine, err := b.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
				Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
			if err != nil || len(mine.Images) != 1 {
				t.Fatalf("copies named %s in account B: %d, %v", name, len(mine.Images), err)
			}
			img := mine.Images[0]
			if aws.ToString(img.ImageId) != aws.ToString(out.ImageId) || aws.ToString(img.OwnerId) != accountB {
				t.Errorf("copy %s owned by %s, want %s owned by %s", aws.ToString(img.ImageId), aws.ToString(img.OwnerId), aws.ToString(out.ImageId), accountB)
			}
			if got := aws.ToString(img.Description); got != "copy of "+src {
				t.Errorf("copy's description %q", got)
			}
			if got := tagValue(img.Tags, "run"); got != name {
				t.Errorf("copy's tag run = %q, want %s", got, name)
			}
			calls := p.CallsFor("ec2", "CopyImage")
			first := calls[len(calls)-2]
			if want := "cross-account copy of " + src + " owned by " + TestAccountID; !strings.HasPrefix(first.Emulated, want) {
				t.Errorf("CopyImage recorded as emulated %q, want it to start with %q", first.Emulated, want)
			}
		})
	}

	// An account chosen with moto's x-moto-account-id header is the caller
	// as well.
	t.Run("account from header", func(t *testing.T) {
		const accountC = "222222222222"
		src := sourceImage(t, owner, srcRegion, "xacct-header-src")
		share(t, owner, src, accountC, true)
		cfg := Config(p.URL, dstRegion)
		cfg.HTTPClient = accountHeaderClient{account: accountC}
		c := ec2.NewFromConfig(cfg)
		out, err := c.CopyImage(ctx, input(src, "xacct-header"))
		if err != nil {
			t.Fatalf("CopyImage as %s: %v", accountC, err)
		}
		got, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(out.ImageId)}})
		if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].OwnerId) != accountC {
			t.Fatalf("copy %s as seen by %s: %v", aws.ToString(out.ImageId), accountC, err)
		}
		// The tags are applied in the header's account too.
		if v := tagValue(got.Images[0].Tags, "run"); v != "xacct-header" {
			t.Errorf("copy's tag run = %q, want xacct-header", v)
		}
	})
}

// With RawCrossAccountCopy, moto answers as it does: it looks for the
// source only in the caller's account.
func TestProxyRawCrossAccountCopy(t *testing.T) {
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{RawCrossAccountCopy: true})
	const srcRegion, dstRegion = "ap-southeast-1", "ap-northeast-2"
	owner, _ := Clients(p.URL, srcRegion)
	src := sourceImage(t, owner, srcRegion, "xacct-raw-src")
	share(t, owner, src, "111111111111", true)
	b := ec2.NewFromConfig(assumedConfig(t, p.URL, dstRegion, "arn:aws:iam::111111111111:role/x"))
	_, err := b.CopyImage(context.Background(), &ec2.CopyImageInput{
		SourceImageId: aws.String(src), SourceRegion: aws.String(srcRegion), Name: aws.String("xacct-raw"),
	})
	if code := errorCode(err); code != "InvalidAMIID.NotFound" {
		t.Fatalf("CopyImage: %v, want moto's InvalidAMIID.NotFound", err)
	}
}
