//go:build unix

package instance_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/instance"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// instancePolicyPath is the least-privilege policy documented for
// ami-instance.
var instancePolicyPath = filepath.Join("..", "..", "example", "iam", "ami-instance-policy.json")

// optionalInstanceActions are actions of the policy that the build below
// does not call, each with the code path that needs it.
var optionalInstanceActions = map[string]string{
	"ec2:CreateKeyPair":                 "the temporary key pair, made when neither ssh_private_key_file nor ssh_keypair_name is set (the build below uses the test sshd's key)",
	"ec2:DeleteKeyPair":                 "deleting the temporary key pair",
	"ec2:DescribeSubnets":               "subnet_id: the temporary security group goes into the subnet's VPC",
	"ec2:DescribeKeyPairs":              "finding the temporary key pair a CreateKeyPair with a lost answer made",
	"ec2:DescribeSecurityGroups":        "finding the temporary security group a CreateSecurityGroup with a lost answer made",
	"iam:GetInstanceProfile":            "iam_instance_profile: the profile is checked before the launch unless skip_profile_validation",
	"s3:ListBucket":                     "HeadBucket when GetBucketLocation is denied, HeadObject answering 404 rather than 403 for a key not yet stored (the check that no bundle manifest is at s3_prefix fails without it on AWS), and deleting a bundle by prefix when its manifest is gone",
	"ec2:DescribeVpcs":                  "vpc_filter finds the VPC; a vpc_id without a subnet must be the default VPC; associate_public_ip_address without a subnet looks for the default VPC",
	"ec2:DescribeInstanceTypeOfferings": "associate_public_ip_address without a subnet: the subnet is chosen in a zone that offers the instance type",
	"ec2:CreateLaunchTemplate":          "spot_price: the launch template of the spot build instance",
	"ec2:CreateFleet":                   "spot_price: the instant fleet that launches the spot build instance",
	"ec2:DeleteFleets":                  "spot_price: ending the fleet, with its instance, when the build ends",
	"ec2:DeleteLaunchTemplate":          "spot_price: deleting the launch template when the build ends",
	"ec2:DescribeLaunchTemplates":       "spot_price: finding the launch template a CreateLaunchTemplate with a lost answer made",
	"ec2:DescribeFleets":                "spot_price: finding the fleet a CreateFleet with a lost answer made",
}

// TestE2EPolicy builds an instance-store AMI through the recording proxy,
// then destroys the artifact through it, and checks that every AWS call is
// allowed by example/iam/ami-instance-policy.json and that every action of
// the policy was needed.
func TestE2EPolicy(t *testing.T) {
	e := newE2EEnv(t)
	provision, img := e.makeImage("policy-check")
	const prefix = "builds/policy"
	tpl := e.template(tmpl{
		Prefix: prefix,
		Source: fmt.Sprintf(`
  bundle_source   = %q
  ami_description = "policy check"
  tags = {
    Name = "policy-check"
  }`, img),
		Provision: provision,
	})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	ids := packertest.ArtifactIDs(res.Stdout)["ami-instance.e2e"]
	if len(ids) != 1 {
		t.Fatalf("artifact ids = %q, want one", ids)
	}
	_, ami, _ := strings.Cut(ids[0], ":")

	// Destroy the artifact through the proxy, so that its calls are
	// checked too.
	pec2, ps3 := awstest.Clients(e.proxy.URL, e2eRegion)
	art := &instance.Artifact{
		Artifact: &amibuild.Artifact{Amis: map[string]string{e2eRegion: ami}, BuilderIdValue: instance.BuilderId},
		Bundle:   bundlestore.Location{Bucket: e2eBucket, Prefix: prefix, Name: "image"},
		EC2:      func(string) bundlestore.DeregisterAPI { return pec2 },
		S3:       func(string) bundlestore.DeleteAPI { return ps3 },
	}
	if err := art.Destroy(); err != nil {
		t.Fatalf("destroy the artifact: %v", err)
	}

	t.Logf("AWS actions: %v", e.proxy.Actions())
	awstest.CheckPolicy(t, instancePolicyPath, map[string]string{"BUNDLE_BUCKET": e2eBucket}, e.proxy.Calls(), optionalInstanceActions)
	l, err := awstest.ListLeaks(context.Background(), e.moto.Endpoint, []string{e2eRegion}, nil)
	if err != nil {
		t.Fatalf("list leaks: %v", err)
	}
	if len(l.S3Objects) > 0 {
		t.Errorf("bundle objects left after Destroy: %q", l.S3Objects)
	}
}
