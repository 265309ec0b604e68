//go:build unix

package awstest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStartMotoMissingBinary(t *testing.T) {
	_, err := StartMoto(context.Background(), MotoOptions{Binary: "moto_server_does_not_exist"})
	if err == nil {
		t.Fatal("StartMoto with a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), "pip install 'moto[server]'") {
		t.Errorf("error %q does not say how to install moto", err)
	}
}

func TestStartMotoExitsEarly(t *testing.T) {
	// "false" exits at once: the start must fail with the exit, not hang.
	start := time.Now()
	_, err := StartMoto(context.Background(), MotoOptions{Binary: "false", StartTimeout: 10 * time.Second})
	if err == nil {
		t.Fatal("StartMoto with an exiting binary succeeded")
	}
	if !strings.Contains(err.Error(), "exited before answering") {
		t.Errorf("error %q does not report the early exit", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("early exit detected after %s", d)
	}
}

func TestMotoLifecycle(t *testing.T) {
	f := false
	m := NewMoto(t, MotoOptions{LoadDefaultAMIs: &f, Env: map[string]string{"MOTO_ALLOW_NONEXISTENT_REGION": "false"}})
	if !strings.HasPrefix(m.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q", m.Endpoint)
	}
	ctx := context.Background()
	// S3 keeps the test quick: EC2's first call per region costs a second.
	_, s3c := Clients(m.Endpoint, "us-east-1")
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lifecycle")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	countBuckets := func() int {
		t.Helper()
		out, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatalf("ListBuckets: %v", err)
		}
		return len(out.Buckets)
	}
	if n := countBuckets(); n != 1 {
		t.Fatalf("buckets before reset = %d, want 1", n)
	}
	if err := m.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if n := countBuckets(); n != 0 {
		t.Fatalf("buckets after reset = %d, want 0", n)
	}

	if err := m.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := m.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	c := &http.Client{Timeout: time.Second}
	if resp, err := c.Get(m.Endpoint + "/moto-api/"); err == nil {
		resp.Body.Close()
		t.Fatalf("moto still answers after Stop")
	}
}

func TestEnv(t *testing.T) {
	env := Env("http://127.0.0.1:1234", "eu-west-1")
	want := map[string]string{
		"AWS_ACCESS_KEY_ID":         TestAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":     TestSecretAccessKey,
		"AWS_REGION":                "eu-west-1",
		"AWS_ENDPOINT_URL":          "http://127.0.0.1:1234",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("malformed entry %q", kv)
		}
		got[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestClientsTalkToMoto(t *testing.T) {
	ctx := context.Background()
	ec2c, s3c := Clients(sharedMoto.Endpoint, "ap-south-1")
	if _, err := ec2c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{}); err != nil {
		t.Errorf("EC2: %v", err)
	}
	if _, err := s3c.ListBuckets(ctx, nil); err != nil {
		t.Errorf("S3: %v", err)
	}
	id, err := STSClient(sharedMoto.Endpoint, "ap-south-1").GetCallerIdentity(ctx, nil)
	if err != nil {
		t.Fatalf("STS: %v", err)
	}
	if got := aws.ToString(id.Account); got != TestAccountID {
		t.Errorf("account = %q, want %q", got, TestAccountID)
	}
}
