//go:build unix

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// filteredNetwork is a VPC tagged Class=<class> with two subnets tagged
// Tier=private and a security group tagged Class=<class>, removed when the
// test ends.
type filteredNetwork struct {
	class   string
	vpc     string
	subnets []string
	sg      string
}

func (w *world) filteredNetwork(t *testing.T, cidr16 string) filteredNetwork {
	t.Helper()
	ctx := context.Background()
	c := w.ec2[buildRegion]
	n := filteredNetwork{class: uniqueName("net")}
	tag := func(rt types.ResourceType, k, v string) []types.TagSpecification {
		return []types.TagSpecification{{ResourceType: rt, Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}}
	}
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr16 + ".0.0/16"), TagSpecifications: tag(types.ResourceTypeVpc, "Class", n.class)})
	if err != nil {
		t.Fatal(err)
	}
	n.vpc = aws.ToString(vpc.Vpc.VpcId)
	for i, zone := range []string{"a", "b"} {
		s, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: aws.String(n.vpc), CidrBlock: aws.String(fmt.Sprintf("%s.%d.0/24", cidr16, i+1)), AvailabilityZone: aws.String(buildRegion + zone),
			TagSpecifications: tag(types.ResourceTypeSubnet, "Tier", "private"),
		})
		if err != nil {
			t.Fatal(err)
		}
		n.subnets = append(n.subnets, aws.ToString(s.Subnet.SubnetId))
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(n.class), Description: aws.String("ssh"), VpcId: aws.String(n.vpc),
		TagSpecifications: tag(types.ResourceTypeSecurityGroup, "Class", n.class),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.sg = aws.ToString(sg.GroupId)
	t.Cleanup(func() {
		_, _ = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(n.sg)})
		for _, s := range n.subnets {
			_, _ = c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(s)})
		}
		_, _ = c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(n.vpc)})
	})
	return n
}

// checkIPServer answers every GET with answer (and status) on loopback,
// as checkip.amazonaws.com does, and counts the requests.
func checkIPServer(t *testing.T, status int, answer string) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.WriteHeader(status)
		fmt.Fprintln(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// TestNetworkSelectionBuilds builds with the real packer on moto with the
// VPC and subnet found by filters, and either a temporary security group
// open only to the address a loopback check-IP service reports (IPv6
// here) or existing groups found by filter; it checks the requests and
// that nothing but the AMI is left. A check-IP service that fails stops
// the build before anything is launched, and nothing is left.
func TestNetworkSelectionBuilds(t *testing.T) {
	w := theWorld(t)
	tests := []struct {
		name     string
		extra    func(n filteredNetwork, checkIP string) string
		ipStatus int
		ip       string
		fail     bool
		check    func(t *testing.T, n filteredNetwork)
	}{
		{
			name: "temporary group open to this machine's IPv6 address",
			extra: func(n filteredNetwork, checkIP string) string {
				return fmt.Sprintf(`  vpc_filter {
    filters = { "tag:Class" = %q }
  }
  subnet_filter {
    filters = { "tag:Tier" = "private" }
    random  = true
  }
  temporary_security_group_source_public_ip     = true
  temporary_security_group_source_public_ip_url = %q
`, n.class, checkIP)
			},
			ipStatus: http.StatusOK, ip: "2001:db8::42",
			check: func(t *testing.T, n filteredNetwork) {
				if got := filterParams(w.proxy.CallsFor("ec2", "DescribeVpcs")[0].Params); got != "tag:Class="+n.class {
					t.Errorf("DescribeVpcs filters %q", got)
				}
				cs := w.proxy.CallsFor("ec2", "CreateSecurityGroup")
				if len(cs) != 1 || cs[0].Params.Get("VpcId") != n.vpc {
					t.Fatalf("CreateSecurityGroup calls %v, want one in %s", cs, n.vpc)
				}
				auth := w.proxy.CallsFor("ec2", "AuthorizeSecurityGroupIngress")
				if len(auth) != 1 || auth[0].Params.Get("IpPermissions.1.Ipv6Ranges.1.CidrIpv6") != "2001:db8::42/128" ||
					auth[0].Params.Get("IpPermissions.1.IpRanges.1.CidrIp") != "" || auth[0].Params.Get("IpPermissions.1.FromPort") != fmt.Sprint(w.sshd.Port) {
					t.Errorf("AuthorizeSecurityGroupIngress %v; want only 2001:db8::42/128 on the SSH port", auth)
				}
				run := w.proxy.CallsFor("ec2", "RunInstances")[0].Params
				if !slices.Contains(n.subnets, run.Get("SubnetId")) {
					t.Errorf("launched in subnet %q, not one of %v", run.Get("SubnetId"), n.subnets)
				}
			},
		},
		{
			name: "existing groups by filter",
			extra: func(n filteredNetwork, _ string) string {
				return fmt.Sprintf(`  vpc_filter {
    filter {
      name  = "tag:Class"
      value = %q
    }
  }
  subnet_filter {
    filters   = { "tag:Tier" = "private" }
    most_free = true
  }
  security_group_filter {
    filters = { "tag:Class" = %q }
  }
`, n.class, n.class)
			},
			check: func(t *testing.T, n filteredNetwork) {
				if c := w.proxy.CallsFor("ec2", "CreateSecurityGroup"); len(c) != 0 {
					t.Errorf("a security group was made: %v", c)
				}
				sg := w.proxy.CallsFor("ec2", "DescribeSecurityGroups")
				if len(sg) != 1 || filterParams(sg[0].Params) != "tag:Class="+n.class+" vpc-id="+n.vpc {
					t.Errorf("DescribeSecurityGroups %v", sg)
				}
				run := w.proxy.CallsFor("ec2", "RunInstances")[0].Params
				if run.Get("SecurityGroupId.1") != n.sg || run.Get("SecurityGroupId.2") != "" || run.Get("SubnetId") != n.subnets[0] {
					t.Errorf("RunInstances groups %q, subnet %q; want %s in %s", run.Get("SecurityGroupId.1"), run.Get("SubnetId"), n.sg, n.subnets[0])
				}
			},
		},
		{
			name: "failing check-IP service",
			extra: func(_ filteredNetwork, checkIP string) string {
				return fmt.Sprintf("  temporary_security_group_source_public_ip = true\n  temporary_security_group_source_public_ip_url = %q\n", checkIP)
			},
			ipStatus: http.StatusServiceUnavailable, ip: "try later", fail: true,
			check: func(t *testing.T, _ filteredNetwork) {
				for _, a := range []string{"CreateSecurityGroup", "RunInstances"} {
					if c := w.proxy.CallsFor("ec2", a); len(c) != 0 {
						t.Errorf("%s was called after the check-IP service failed", a)
					}
				}
			},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := w.filteredNetwork(t, fmt.Sprintf("10.%d", 81+i))
			url, asked := "", new(atomic.Int32)
			if tc.ip != "" {
				url, asked = checkIPServer(t, tc.ipStatus, tc.ip)
			}
			base := w.baseline(t)
			res := w.run(t, runSpec{Template: w.ebsTemplate(buildOpts{Extra: tc.extra(n, url), TempKey: true})})
			if tc.fail != (res.ExitCode != 0) {
				t.Fatalf("packer build exited %d; want failure %t", res.ExitCode, tc.fail)
			}
			if tc.ip != "" && asked.Load() != 1 {
				t.Errorf("the check-IP service was asked %d times, want once", asked.Load())
			}
			if tc.fail {
				mustContain(t, "packer output", res.Output(), "temporary_security_group_source_public_ip: ask "+url, "HTTP status 503")
			}
			tc.check(t, n)
			var keep []string
			if !tc.fail {
				amis := artifactAMIs(t, res, "ami-ebs.e2e")
				keep = w.artifactKeep(t, amis)
				defer w.removeAMIs(t, amis)
			}
			w.expectNoLeaks(t, base, keep...)
		})
	}
}
