//go:build unix

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// corpusSetup is what a corpus build's setup made in moto.
type corpusSetup struct {
	// replace maps IDs the template names to those of the resources made
	// for it; they are replaced in the template before it is built.
	replace map[string]string
	// ids are the resources made, by role, for the build's check.
	ids map[string]string
}

// The IDs private-subnet-network.pkr.hcl names.
const (
	privateTemplateVPC = "vpc-0a1b2c3d4e5f60718"
	privateTemplateSG  = "sg-0123456789abcdef0"
)

// setUpPrivateNetwork makes what private-subnet-network.pkr.hcl expects in
// the build region: a VPC with two subnets tagged Tier=private (a /26 and
// a /24, the most free), a public subnet, an existing security group, and
// the instance profile "packer-builder"; and, in the default VPC, a subnet
// tagged Tier=private that must not be chosen, being in another VPC. Every
// resource is removed when the test ends.
func setUpPrivateNetwork(t *testing.T, w *world) corpusSetup {
	t.Helper()
	ctx := context.Background()
	c := w.ec2[buildRegion]
	tag := func(rt types.ResourceType, k, v string) []types.TagSpecification {
		return []types.TagSpecification{{ResourceType: rt, Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}}
	}
	var undo []func() error
	t.Cleanup(func() {
		for i := len(undo) - 1; i >= 0; i-- {
			if err := undo[i](); err != nil {
				t.Logf("remove the private network: %v", err)
			}
		}
	})
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.77.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	undo = append(undo, func() error {
		_, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(vpcID)})
		return err
	})
	subnet := func(vpc, cidr, zone, tier string) string {
		t.Helper()
		out, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: aws.String(vpc), CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(zone),
			TagSpecifications: tag(types.ResourceTypeSubnet, "Tier", tier),
		})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.Subnet.SubnetId)
		undo = append(undo, func() error {
			_, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(id)})
			return err
		})
		return id
	}
	ids := map[string]string{"vpc": vpcID}
	ids["small"] = subnet(vpcID, "10.77.1.0/26", buildRegion+"a", "private")
	ids["large"] = subnet(vpcID, "10.77.2.0/24", buildRegion+"b", "private")
	ids["public"] = subnet(vpcID, "10.77.4.0/22", buildRegion+"c", "public")
	def, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil || len(def.Vpcs) != 1 {
		t.Fatalf("default VPC: %v", err)
	}
	// The default VPC's subnets are /20s; this /24 has more free addresses
	// than the chosen one.
	ids["elsewhere"] = subnet(aws.ToString(def.Vpcs[0].VpcId), "172.31.200.0/24", buildRegion+"d", "private")
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("private-ssh"), Description: aws.String("ssh from the CI runners"), VpcId: aws.String(vpcID),
	})
	if err != nil {
		t.Fatal(err)
	}
	ids["sg"] = aws.ToString(sg.GroupId)
	undo = append(undo, func() error {
		_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId})
		return err
	})
	if err := motoIAM(ctx, w, "CreateInstanceProfile", url.Values{"InstanceProfileName": {"packer-builder"}}); err != nil {
		t.Fatal(err)
	}
	undo = append(undo, func() error {
		return motoIAM(ctx, w, "DeleteInstanceProfile", url.Values{"InstanceProfileName": {"packer-builder"}})
	})
	return corpusSetup{
		replace: map[string]string{privateTemplateVPC: vpcID, privateTemplateSG: ids["sg"]},
		ids:     ids,
	}
}

// checkPrivateNetwork checks the requests of the private-subnet-network
// build: the subnet was looked for by the template's tag among the
// available subnets of its VPC, the most free one was taken, and the
// instance was launched there with the given security group, no public IP
// and the instance profile; no security group was made.
func checkPrivateNetwork(t *testing.T, w *world, s corpusSetup) {
	t.Helper()
	var lookup []string
	for _, c := range w.proxy.CallsFor("ec2", "DescribeSubnets") {
		if c.Params.Get("SubnetId.1") == "" {
			lookup = append(lookup, filterParams(c.Params))
		}
	}
	want := "state=available tag:Tier=private vpc-id=" + s.ids["vpc"]
	if len(lookup) != 1 || lookup[0] != want {
		t.Errorf("DescribeSubnets by filter: %q, want one with %q", lookup, want)
	}
	runs := w.proxy.CallsFor("ec2", "RunInstances")
	if len(runs) != 1 {
		t.Fatalf("%d RunInstances calls, want 1", len(runs))
	}
	p := runs[0].Params
	for k, want := range map[string]string{
		"NetworkInterface.1.SubnetId":                 s.ids["large"],
		"NetworkInterface.1.AssociatePublicIpAddress": "false",
		"NetworkInterface.1.SecurityGroupId.1":        s.ids["sg"],
		"NetworkInterface.1.SecurityGroupId.2":        "",
		"Placement.AvailabilityZone":                  buildRegion + "b",
		"IamInstanceProfile.Name":                     "packer-builder",
	} {
		if got := p.Get(k); got != want {
			t.Errorf("RunInstances %s = %q, want %q", k, got, want)
		}
	}
	if n := len(w.proxy.CallsFor("ec2", "CreateSecurityGroup")); n != 0 {
		t.Errorf("%d CreateSecurityGroup calls; the template names its group", n)
	}
	// moto's record of the launched (and terminated) instance.
	id := runInstanceID(t, w)
	out, err := w.ec2[buildRegion].DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) != 1 {
		t.Fatalf("describe the build instance %s: %v", id, err)
	}
	inst := out.Reservations[0].Instances[0]
	if aws.ToString(inst.VpcId) != s.ids["vpc"] || inst.State.Name != types.InstanceStateNameTerminated {
		t.Errorf("build instance %s: VPC %s, %s; want %s, terminated", id, aws.ToString(inst.VpcId), inst.State.Name, s.ids["vpc"])
	}
}

// runInstanceID returns the ID of the build instance, from the build's
// TerminateInstances call.
func runInstanceID(t *testing.T, w *world) string {
	t.Helper()
	for _, c := range w.proxy.CallsFor("ec2", "TerminateInstances") {
		if id := c.Params.Get("InstanceId.1"); id != "" {
			return id
		}
	}
	t.Fatal("the build terminated no instance")
	return ""
}

// filterParams renders the Filter.N.Name/Value.M parameters of a query
// request as "name=value|value …", sorted by name.
func filterParams(p url.Values) string {
	var parts []string
	for i := 1; ; i++ {
		name := p.Get(fmt.Sprintf("Filter.%d.Name", i))
		if name == "" {
			break
		}
		var vals []string
		for j := 1; ; j++ {
			v, ok := p[fmt.Sprintf("Filter.%d.Value.%d", i, j)]
			if !ok {
				break
			}
			vals = append(vals, v[0])
		}
		parts = append(parts, name+"="+strings.Join(vals, "|"))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// motoIAM calls an IAM query action on moto directly, signed with the test
// credentials (the module has no IAM client).
func motoIAM(ctx context.Context, w *world, action string, params url.Values) error {
	params.Set("Action", action)
	params.Set("Version", "2010-05-08")
	body := params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.moto.Endpoint+"/", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	key, secret := awstest.TestCredentials()
	creds, err := credentials.NewStaticCredentialsProvider(key, secret, "").Retrieve(ctx)
	if err != nil {
		return err
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "iam", "us-east-1", time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("IAM %s: %w", action, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("IAM %s: HTTP %d: %s", action, resp.StatusCode, b)
	}
	return nil
}
