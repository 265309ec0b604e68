//go:build unix

package awscfg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestSessionOnMoto checks both ways of pointing a session at an emulator,
// the AWS_ENDPOINT_URL variable and explicit endpoints, end to end.
func TestSessionOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	accessKey, secretKey := awstest.TestCredentials()
	tests := []struct {
		name string
		env  map[string]string
		cfg  awscfg.Config
	}{
		{name: "environment", env: map[string]string{"AWS_ENDPOINT_URL": moto.Endpoint}},
		{name: "explicit", cfg: awscfg.Config{Endpoints: awscfg.Endpoints{EC2: moto.Endpoint, S3: moto.Endpoint, STS: moto.Endpoint}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
					t.Setenv(k, "")
					os.Unsetenv(k)
				}
			}
			dir := t.TempDir()
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg := tc.cfg
			cfg.Region, cfg.AccessKey, cfg.SecretKey, cfg.MaxAttempts = "eu-west-1", accessKey, secretKey, 1
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sess, err := awscfg.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !sess.CustomEndpoint() {
				t.Error("CustomEndpoint() = false with an emulator endpoint")
			}
			account, err := sess.AccountID(ctx)
			if err != nil || account != awstest.TestAccountID {
				t.Errorf("AccountID() = %q, %v; want %s", account, err, awstest.TestAccountID)
			}
			azs, err := sess.EC2("ap-southeast-2").DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
			if err != nil {
				t.Fatal(err)
			}
			if len(azs.AvailabilityZones) == 0 || !strings.HasPrefix(aws.ToString(azs.AvailabilityZones[0].ZoneName), "ap-southeast-2") {
				t.Errorf("zones of the ap-southeast-2 client = %+v", azs.AvailabilityZones)
			}
			bucket := "awscfg-" + tc.name
			if _, err := sess.S3("").CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
				CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraintEuWest1}}); err != nil {
				t.Fatalf("create bucket through the path-style S3 client: %v", err)
			}
			if _, err := sess.S3("").HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
				t.Errorf("head bucket: %v", err)
			}
		})
	}
}

// TestCheckRegionOnMoto checks a region moto knows, through a session's
// client of that region, and one that does not exist.
func TestCheckRegionOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, _ := awstest.Clients(moto.Endpoint, "eu-central-1")
	out, err := awscfg.CheckRegion(ctx, client, &awscfg.CheckRegionInput{Region: "eu-central-1"})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Region.RegionName) != "eu-central-1" || aws.ToString(out.Region.OptInStatus) == awscfg.OptInNotOptedIn {
		t.Errorf("CheckRegion(eu-central-1) = %+v", out.Region)
	}
	_, err = awscfg.CheckRegion(ctx, client, &awscfg.CheckRegionInput{Region: "xx-nowhere-1"})
	var re *awscfg.RegionError
	if !errors.As(err, &re) || re.Region != "xx-nowhere-1" || re.OptInStatus != "" {
		t.Errorf("CheckRegion(xx-nowhere-1) = %v, want a *RegionError saying it does not exist", err)
	}
}

// TestAssumeOnMoto assumes a role of another account from a session: the
// new session acts in that account (moto keeps resources per account), the
// first is unchanged, and a malformed role is refused before any call.
func TestAssumeOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	accessKey, secretKey := awstest.TestCredentials()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := awscfg.New(ctx, awscfg.Config{
		Region: "eu-west-1", AccessKey: accessKey, SecretKey: secretKey, MaxAttempts: 1,
		Endpoints: awscfg.Endpoints{EC2: moto.Endpoint, S3: moto.Endpoint, STS: moto.Endpoint},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Assume(awscfg.AssumeRole{RoleARN: "arn:aws:iam::1234:role/x"}); err == nil || !strings.Contains(err.Error(), "AssumeRole.RoleARN") {
		t.Errorf("Assume with a malformed role ARN: %v, want an error naming AssumeRole.RoleARN", err)
	}
	other, err := sess.Assume(awscfg.AssumeRole{RoleARN: "arn:aws:iam::111111111111:role/publisher", ExternalID: "team-web", SessionName: "ami-distribute"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := other.AccountID(ctx); err != nil || got != "111111111111" {
		t.Errorf("assumed session's AccountID() = %q, %v; want 111111111111", got, err)
	}
	if got, err := sess.AccountID(ctx); err != nil || got != awstest.TestAccountID {
		t.Errorf("base session's AccountID() = %q, %v; want %s", got, err, awstest.TestAccountID)
	}
	if other.Region() != sess.Region() || other.Endpoints() != sess.Endpoints() {
		t.Errorf("assumed session: region %q endpoints %+v, want the base's %q %+v", other.Region(), other.Endpoints(), sess.Region(), sess.Endpoints())
	}
	sg, err := other.EC2("eu-west-1").CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("assumed"), Description: aws.String("made in the role's account")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.EC2("eu-west-1").DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(sg.GroupId)}}); err == nil {
		t.Errorf("the base account sees %s, made with the assumed role", aws.ToString(sg.GroupId))
	}
	if _, err := other.EC2("eu-west-1").DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(sg.GroupId)}}); err != nil {
		t.Errorf("the assumed session does not see its own group: %v", err)
	}
}
