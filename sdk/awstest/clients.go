//go:build unix

package awstest

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Static credentials the harness uses against the emulator. The secret is
// distinctive so that tests can scan logs for it.
const (
	TestAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	TestSecretAccessKey = "awstest/secret/NOT-A-REAL-KEY/wJalrXUtnFEMIK7MDENG"
	// TestAccountID is the account moto assigns to the test credentials.
	TestAccountID = "123456789012"
)

// TestCredentials returns the static access key and secret used by
// [Clients], [STSClient] and [Env].
func TestCredentials() (accessKey, secretKey string) {
	return TestAccessKeyID, TestSecretAccessKey
}

// Config returns an aws.Config for the emulator at endpoint: static test
// credentials, the given region, one attempt per call (no retries), and
// endpoint as the base endpoint of every service. It reads nothing from the
// environment or from shared config files.
func Config(endpoint, region string) aws.Config {
	return aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(TestAccessKeyID, TestSecretAccessKey, ""),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 1,
	}
}

// Clients returns EC2 and S3 clients for the emulator at endpoint (see
// [Config]); the S3 client uses path-style addressing.
func Clients(endpoint, region string) (*ec2.Client, *s3.Client) {
	return clientsFrom(Config(endpoint, region))
}

// clientsFrom returns EC2 and S3 clients for cfg, S3 with path-style
// addressing (a bucket name is not a resolvable host on loopback).
func clientsFrom(cfg aws.Config) (*ec2.Client, *s3.Client) {
	return ec2.NewFromConfig(cfg), s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// ObserverClients are like [Clients] for callers that set up or inspect
// the emulator's state beside the code under test (leak listings, decoys,
// assertions), not for the code under test: they retry a call up to four
// times on connection errors and throttling, which moto's threaded server
// answers with now and then under load, so that a check does not fail
// for a reason that has nothing to do with what it checks.
func ObserverClients(endpoint, region string) (*ec2.Client, *s3.Client) {
	return clientsFrom(observerConfig(endpoint, region))
}

// observerConfig is [Config] with the retries of [ObserverClients].
func observerConfig(endpoint, region string) aws.Config {
	cfg := Config(endpoint, region)
	cfg.RetryMaxAttempts = 4
	return cfg
}

// STSClient returns an STS client for the emulator at endpoint (see [Config]).
func STSClient(endpoint, region string) *sts.Client {
	return sts.NewFromConfig(Config(endpoint, region))
}

// IAMClient returns an IAM client for the emulator at endpoint (see
// [Config]).
func IAMClient(endpoint, region string) *iam.Client {
	return iam.NewFromConfig(Config(endpoint, region))
}

// Env returns the environment variables a subprocess (for example packer)
// needs to talk to the emulator at endpoint with the test credentials.
// Append them after os.Environ() so that they win:
//
//	cmd.Env = append(os.Environ(), awstest.Env(endpoint, region)...)
func Env(endpoint, region string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + TestAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + TestSecretAccessKey,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_REGION=" + region,
		"AWS_DEFAULT_REGION=" + region,
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}
