//go:build unix

package ebs_test

// Acceptance test against real AWS: `make testacc` (PACKER_ACC=1) with
// credentials for an account where creating and deleting a t3.micro
// instance and an AMI is acceptable. It costs a few cents and never runs in
// CI. The region is AWS_REGION, else us-east-1.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

func TestAccBuild(t *testing.T) {
	if os.Getenv("PACKER_ACC") == "" {
		t.Skip("acceptance test against real AWS; run with PACKER_ACC=1 (make testacc)")
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	ctx := context.Background()
	sess, err := awscfg.New(ctx, awscfg.Config{Region: region})
	if err != nil {
		t.Fatalf("AWS configuration: %v", err)
	}
	ec2c := sess.EC2("")
	name := fmt.Sprintf("packer-plugin-ami-acc-%d", time.Now().Unix())

	// Whatever happens, remove every AMI this test made.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		found, err := image.FindByName(ctx, ec2c, &image.FindByNameInput{Name: name})
		if err != nil {
			t.Errorf("clean up: %v", err)
			return
		}
		for _, img := range found.Images {
			if _, err := image.Deregister(ctx, ec2c, &image.DeregisterInput{ImageID: aws.ToString(img.ImageId), DeleteSnapshots: true}); err != nil {
				t.Errorf("clean up %s: %v", aws.ToString(img.ImageId), err)
			}
		}
	})

	pk := packertest.New(t, packertest.Options{Env: packertest.HostAWSEnv()})
	tpl := fmt.Sprintf(`source "ami-ebs" "e2e" {
  region        = %q
  instance_type = "t3.micro"
  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-x86_64"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  ssh_username = "ec2-user"
  ami_name     = %q
  tags = {
    Name      = %q
    SourceAMI = "{{ .SourceAMI }}"
  }
}

build {
  sources = ["source.ami-ebs.e2e"]
  provisioner "shell" {
    inline = ["echo acceptance > /tmp/acceptance.txt", "cat /tmp/acceptance.txt"]
  }
}
`, region, name, name)
	res := pk.RunT(t, packertest.RunOptions{
		Args: []string{"build", "-machine-readable"}, Template: tpl, Timeout: 45 * time.Minute,
	})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	ids := packertest.ArtifactIDs(res.Stdout)["ami-ebs.e2e"]
	if len(ids) != 1 || !strings.HasPrefix(ids[0], region+":ami-") {
		t.Fatalf("artifact ids = %q, want one %s:ami-…", ids, region)
	}
	if !strings.Contains(res.Stdout, "acceptance") {
		t.Error("the provisioner's output is missing")
	}
	found, err := image.Find(ctx, ec2c, &image.FindInput{ImageIDs: []string{strings.TrimPrefix(ids[0], region+":")}})
	if err != nil {
		t.Fatalf("find the new AMI: %v", err)
	}
	if got := tagMap(found.Image.Tags)["Name"]; got != name {
		t.Errorf("AMI tag Name = %q, want %q", got, name)
	}
}
