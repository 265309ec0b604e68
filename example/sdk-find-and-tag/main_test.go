//go:build unix

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

func TestRun(t *testing.T) {
	const region = "us-east-1"
	noDefaults := false
	moto := awstest.NewMoto(t, awstest.MotoOptions{LoadDefaultAMIs: &noDefaults})
	for _, kv := range awstest.Env(moto.Endpoint, region) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")

	ec2c, _ := awstest.Clients(moto.Endpoint, region)
	register := func(name string) string {
		t.Helper()
		out, err := ec2c.RegisterImage(context.Background(), &ec2.RegisterImageInput{Name: aws.String(name)})
		if err != nil {
			t.Fatalf("RegisterImage %s: %v", name, err)
		}
		return aws.ToString(out.ImageId)
	}
	web := register("sdk-example-web")
	register("sdk-example-db")

	tests := []struct {
		name      string
		args      []string
		wantErr   string   // substring of the error; empty means success
		wantOut   []string // substrings of stdout
		wantTags  map[string]string
		tagsImage string
	}{
		{
			name:    "needs a filter or id",
			args:    []string{"-tag", "a=b"},
			wantErr: "-image-id or at least one -filter",
		},
		{
			name:    "tag must be key=value",
			args:    []string{"-image-id", "ami-1", "-tag", "novalue"},
			wantErr: "not key=value",
		},
		{
			name:    "ambiguous filter",
			args:    []string{"-filter", "name=sdk-example-*", "-owner", "self", "-tag", "a=b"},
			wantErr: "sdk-example-*",
		},
		{
			name:    "dry run tags nothing",
			args:    []string{"-filter", "name=sdk-example-web", "-owner", "self", "-dry-run"},
			wantOut: []string{"found " + web, `"sdk-example-web"`},
		},
		{
			name:      "find by filter and tag image and snapshots",
			args:      []string{"-filter", "name=sdk-example-web", "-owner", "self", "-tag", "Team=platform", "-tag", "Release=7"},
			wantOut:   []string{"found " + web, "tagged Release=7", "tagged Team=platform"},
			wantTags:  map[string]string{"Team": "platform", "Release": "7"},
			tagsImage: web,
		},
		{
			name:      "find by id",
			args:      []string{"-image-id", web, "-tag", "Stage=prod"},
			wantOut:   []string{"found " + web},
			wantTags:  map[string]string{"Stage": "prod"},
			tagsImage: web,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-region", region, "-endpoint", moto.Endpoint}, tc.args...)
			err := run(context.Background(), args, &stdout, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("run error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			for _, s := range tc.wantOut {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			if tc.tagsImage == "" {
				return
			}
			out, err := ec2c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{tc.tagsImage}})
			if err != nil || len(out.Images) != 1 {
				t.Fatalf("DescribeImages %s: %v", tc.tagsImage, err)
			}
			img := out.Images[0]
			checkTags(t, "image "+tc.tagsImage, img.Tags, tc.wantTags)
			var snaps []string
			for _, b := range img.BlockDeviceMappings {
				if b.Ebs != nil && b.Ebs.SnapshotId != nil {
					snaps = append(snaps, *b.Ebs.SnapshotId)
				}
			}
			if len(snaps) == 0 {
				t.Fatalf("image %s has no snapshots", tc.tagsImage)
			}
			so, err := ec2c.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
			if err != nil {
				t.Fatalf("DescribeSnapshots: %v", err)
			}
			for _, s := range so.Snapshots {
				checkTags(t, "snapshot "+aws.ToString(s.SnapshotId), s.Tags, tc.wantTags)
			}
		})
	}
}

func checkTags(t *testing.T, what string, tags []types.Tag, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, tg := range tags {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s tags = %v, want %s=%s", what, got, k, v)
		}
	}
}
