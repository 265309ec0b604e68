//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

const (
	region = "us-east-1"
	bucket = "sdk-example-bundles"
)

// writeImage writes an image file of 3 MiB: random data then zeros.
func writeImage(t *testing.T) string {
	t.Helper()
	data := make([]byte, 3<<20)
	if _, err := rand.Read(data[:1<<20]); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "root.img")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// objects lists the keys under prefix.
func objects(t *testing.T, c *s3.Client, prefix string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// imageExists reports whether the AMI is registered.
func imageExists(t *testing.T, c *ec2.Client, id string) bool {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if strings.Contains(err.Error(), "InvalidAMIID") {
			return false
		}
		t.Fatalf("describe %s: %v", id, err)
	}
	return len(out.Images) == 1 && out.Images[0].State != "deregistered"
}

var amiRE = regexp.MustCompile(`registered (ami-[0-9a-f]+) `)

func TestRun(t *testing.T) {
	noDefaults := false
	moto := awstest.NewMoto(t, awstest.MotoOptions{LoadDefaultAMIs: &noDefaults})
	for _, kv := range awstest.Env(moto.Endpoint, region) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	home := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	ec2c, s3c := awstest.Clients(moto.Endpoint, region)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{
		Bucket:          aws.String(bucket),
		ObjectOwnership: s3types.ObjectOwnershipBucketOwnerPreferred,
	}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	img := writeImage(t)

	tests := []struct {
		name    string
		args    []string
		wantErr string
		cleanup bool // -cleanup: nothing is left
	}{
		{name: "image, name and bucket are required", args: []string{"-name", "x"}, wantErr: "-image, -name and -bucket are required"},
		{name: "cert without key", args: []string{"-image", img, "-name", "x", "-bucket", bucket, "-cert", "c.pem"}, wantErr: "-cert and -key go together"},
		{name: "EC2 certificate required against AWS", args: []string{"-image", img, "-name", "x", "-bucket", bucket}, wantErr: "-ec2-cert is required"},
		{name: "EC2 certificate required with a VPC endpoint", args: []string{"-image", img, "-name", "x", "-bucket", bucket, "-endpoint", "https://vpce-123.ec2.us-east-1.vpce.amazonaws.com"}, wantErr: "-ec2-cert is required"},
		{name: "EC2 certificate required with a loopback endpoint alone", args: []string{"-image", img, "-name", "x", "-bucket", bucket, "-endpoint", moto.Endpoint}, wantErr: "-ec2-cert is required"},
		{name: "local emulator with a VPC endpoint", args: []string{"-image", img, "-name", "x", "-bucket", bucket, "-endpoint", "https://vpce-123.ec2.us-east-1.vpce.amazonaws.com", "-local-emulator"}, wantErr: "-local-emulator needs -endpoint on a loopback address"},
		{name: "unknown architecture", args: []string{"-image", img, "-name", "x", "-bucket", bucket, "-endpoint", moto.Endpoint, "-local-emulator", "-arch", "sparc"}, wantErr: "-arch"},
		{name: "missing bucket", args: []string{"-image", img, "-name", "x", "-bucket", "no-such-bucket", "-endpoint", moto.Endpoint, "-local-emulator"}, wantErr: "no-such-bucket"},
		{name: "bundle and register", args: []string{"-image", img, "-name", "sdk-example-kept", "-bucket", bucket, "-prefix", "kept", "-endpoint", moto.Endpoint, "-local-emulator"}},
		{name: "bundle, register and clean up", args: []string{"-image", img, "-name", "sdk-example-cleaned", "-bucket", bucket, "-prefix", "cleaned", "-endpoint", moto.Endpoint, "-local-emulator", "-cleanup"}, cleanup: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys := filepath.Join(t.TempDir(), "keys")
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append(tc.args, "-keys-dir", keys), &stdout, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("run: %v, want an error mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			m := amiRE.FindStringSubmatch(stdout.String())
			if m == nil {
				t.Fatalf("output names no registered AMI:\n%s", &stdout)
			}
			ami := m[1]
			for _, f := range []string{"x509-key.pem", "x509-cert.pem"} {
				st, err := os.Stat(filepath.Join(keys, f))
				if err != nil {
					t.Fatalf("generated file: %v", err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
				}
			}
			prefix := tc.args[slices.Index(tc.args, "-prefix")+1]
			got := objects(t, s3c, prefix)
			if tc.cleanup {
				if imageExists(t, ec2c, ami) {
					t.Errorf("%s is still registered after -cleanup", ami)
				}
				if len(got) != 0 {
					t.Errorf("objects left after -cleanup: %q", got)
				}
				if !strings.Contains(stdout.String(), "cleanup: deregistered "+ami) {
					t.Errorf("output does not report the cleanup:\n%s", &stdout)
				}
				return
			}
			if !imageExists(t, ec2c, ami) {
				t.Fatalf("%s is not registered", ami)
			}
			manifest := prefix + "/image.manifest.xml"
			if !slices.Contains(got, manifest) || !slices.Contains(got, prefix+"/image.part.0") {
				t.Errorf("objects = %q, want the manifest %s and part image.part.0", got, manifest)
			}
		})
	}
}
