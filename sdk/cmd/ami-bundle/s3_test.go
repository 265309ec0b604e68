//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// s3Env points the standard credential chain and the S3 commands at a
// fresh moto server with a bucket, and returns the bucket's client.
func s3Env(t *testing.T, bucket string) (*s3.Client, string) {
	t.Helper()
	m := awstest.NewMoto(t, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	for _, kv := range awstest.Env(m.Endpoint, "us-east-1") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	_, s3c := awstest.Clients(m.Endpoint, "us-east-1")
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return s3c, m.Endpoint
}

func listKeys(t *testing.T, s3c *s3.Client, bucket string) []string {
	t.Helper()
	out, err := s3c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	slices.Sort(keys)
	return keys
}

// bundleVector copies a vector bundle into a directory of its own.
func bundleVector(t *testing.T) (dir, manifest string) {
	t.Helper()
	dir = t.TempDir()
	src := vec("v1-simple", "bundle")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(dir, e.Name()), readFile(t, filepath.Join(src, e.Name())), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, filepath.Join(dir, "root.img.manifest.xml")
}

func TestUploadDelete(t *testing.T) {
	const bucket = "cli-bundles"
	s3c, endpoint := s3Env(t, bucket)
	_, manifest := bundleVector(t)

	r := runCLI(t, "upload", "-b", bucket+"/images/v1", "-m", manifest, "--batch", "--retry")
	r.must(t, 0, "uploading root.img: 100%")
	want := []string{"images/v1/root.img.manifest.xml", "images/v1/root.img.part.0"}
	if got := listKeys(t, s3c, bucket); !slices.Equal(got, want) {
		t.Fatalf("bucket holds %v, want %v", got, want)
	}
	if !strings.Contains(r.stdout, "Image location for registration: "+bucket+"/images/v1/root.img.manifest.xml") {
		t.Errorf("stdout %q", r.stdout)
	}
	// Again: the part is there intact and is not sent again.
	r = runCLI(t, "upload", "-b", bucket+"/images/v1", "-m", manifest, "--endpoint-url", endpoint)
	r.must(t, 0)
	if !strings.Contains(r.stdout, "Already there s3://"+bucket+"/images/v1/root.img.part.0") {
		t.Errorf("second upload stdout %q", r.stdout)
	}

	// An unrelated object under the prefix survives both forms of delete.
	if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("images/v1/notes.txt"), Body: strings.NewReader("keep")}); err != nil {
		t.Fatal(err)
	}
	// A manifest in S3 that lists it is not trusted: it stays, with a warning.
	m, err := bundle.ParseManifest(readFile(t, manifest))
	if err != nil {
		t.Fatal(err)
	}
	m.Parts = append(m.Parts, bundle.PartInfo{Index: len(m.Parts), Filename: "notes.txt"})
	if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("images/v1/root.img.manifest.xml"), Body: bytes.NewReader(m.Marshal())}); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "delete", "-b", bucket+"/images/v1", "-m", manifest).must(t, 0, "s3://"+bucket+"/images/v1/notes.txt", "not a part of bundle root.img")
	if got := listKeys(t, s3c, bucket); !slices.Equal(got, []string{"images/v1/notes.txt"}) {
		t.Fatalf("after delete -m: %v", got)
	}
	runCLI(t, "upload", "-b", bucket+"/images/v1", "-m", manifest).must(t, 0)
	r = runCLI(t, "delete", "-b", bucket+"/images/v1", "-p", "root.img", "--batch")
	r.must(t, 0)
	if got := listKeys(t, s3c, bucket); !slices.Equal(got, []string{"images/v1/notes.txt"}) {
		t.Fatalf("after delete -p: %v", got)
	}
	if !strings.Contains(r.stdout, "Deleted bundle root.img (2 objects)") {
		t.Errorf("delete stdout %q", r.stdout)
	}
}

func TestS3UsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"upload without bucket", []string{"upload", "-m", "x.manifest.xml"}, "missing -b/--bucket"},
		{"upload without manifest", []string{"upload", "-b", "b"}, "missing -m/--manifest"},
		{"delete without bundle", []string{"delete", "-b", "b"}, "either -m/--manifest or -p/--prefix"},
		{"delete with both", []string{"delete", "-b", "b", "-m", "x.manifest.xml", "-p", "x"}, "either -m/--manifest or -p/--prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runCLI(t, tc.args...).must(t, 2, tc.want)
		})
	}
}
