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
