//go:build unix

package amibuild

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// testNetwork is a VPC made for one test, with subnets and security groups
// tagged with the test's unique name.
type testNetwork struct {
	tag    string // value of the "Test" tag on everything
	vpc    string
	small  string // private subnet, /26 in us-east-1a
	large  string // private subnet, /24 in us-east-1b
	groups []string
}

func newTestNetwork(t *testing.T, e *testEnv, cidr16 string) *testNetwork {
	t.Helper()
	ctx := context.Background()
	// No commas: a comma separates filter values.
	n := &testNetwork{tag: "net-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	spec := func(rt types.ResourceType, kv ...string) []types.TagSpecification {
		tags := []types.Tag{{Key: aws.String("Test"), Value: aws.String(n.tag)}}
		for i := 0; i < len(kv); i += 2 {
			tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return []types.TagSpecification{{ResourceType: rt, Tags: tags}}
	}
	vpc, err := e.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr16 + ".0.0/16"), TagSpecifications: spec(types.ResourceTypeVpc)})
	if err != nil {
		t.Fatal(err)
	}
	n.vpc = aws.ToString(vpc.Vpc.VpcId)
	var subnets []string
	for _, s := range []struct{ cidr, zone, tier string }{
		{cidr16 + ".1.0/26", "us-east-1a", "private"},
		{cidr16 + ".2.0/24", "us-east-1b", "private"},
		{cidr16 + ".4.0/22", "us-east-1c", "public"},
	} {
		out, err := e.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: aws.String(n.vpc), CidrBlock: aws.String(s.cidr), AvailabilityZone: aws.String(s.zone),
			TagSpecifications: spec(types.ResourceTypeSubnet, "Tier", s.tier),
		})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, aws.ToString(out.Subnet.SubnetId))
	}
	n.small, n.large = subnets[0], subnets[1]
	for _, name := range []string{"a", "b"} {
		out, err := e.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(n.tag + name), Description: aws.String("test"), VpcId: aws.String(n.vpc),
			TagSpecifications: spec(types.ResourceTypeSecurityGroup, "Class", "packer"),
		})
		if err != nil {
			t.Fatal(err)
		}
		n.groups = append(n.groups, aws.ToString(out.GroupId))
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, g := range n.groups {
			_, _ = e.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(g)})
		}
		for _, s := range subnets {
			_, _ = e.ec2.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(s)})
		}
		_, _ = e.ec2.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(n.vpc)})
	})
	return n
}

// checkIP serves answer as a check-IP service on loopback and counts the
// requests.
func checkIP(t *testing.T, status int, answer string) (string, *int) {
	t.Helper()
	n := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*n++
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer + "\n"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, n
}

// TestStepsNetworkSelection runs the network, security group and instance
// steps with filters against moto and checks the requests and what is left.
func TestStepsNetworkSelection(t *testing.T) {
	comm := communicator.Config{Type: "ssh", SSH: communicator.SSH{SSHPort: 22}}
	tests := []struct {
		name string
		run  func(n *testNetwork, url string) RunConfig
		// answer of the check-IP service
		ipStatus int
		ip       string
		// check gets the RunInstances parameters and the temporary group's
		// permissions (nil when none was made).
		check func(t *testing.T, n *testNetwork, run map[string]string, perms []types.IpPermission)
	}{
		{
			name: "VPC and subnet filters, most free; temporary group in that VPC open to this machine",
			run: func(n *testNetwork, url string) RunConfig {
				return RunConfig{NetworkConfig: NetworkConfig{
					VpcFilter:                    NetworkFilter{Filters: map[string]string{"tag:Test": n.tag}},
					SubnetFilter:                 SubnetFilter{Filters: map[string]string{"tag:Tier": "private"}, MostFree: true},
					TemporarySGSourcePublicIP:    true,
					TemporarySGSourcePublicIPURL: url,
				}}
			},
			ipStatus: 200, ip: "203.0.113.9",
			check: func(t *testing.T, n *testNetwork, run map[string]string, perms []types.IpPermission) {
				if run["SubnetId"] != n.large || run["Placement.AvailabilityZone"] != "us-east-1b" {
					t.Errorf("launched in %s/%s, want the most free private subnet %s in us-east-1b", run["SubnetId"], run["Placement.AvailabilityZone"], n.large)
				}
				if len(perms) != 1 || len(perms[0].IpRanges) != 1 || aws.ToString(perms[0].IpRanges[0].CidrIp) != "203.0.113.9/32" || len(perms[0].Ipv6Ranges) != 0 {
					t.Errorf("temporary group admits %+v, want only 203.0.113.9/32", perms)
				}
			},
		},
		{
			name: "IPv6 public address",
			run: func(n *testNetwork, url string) RunConfig {
				return RunConfig{SubnetID: n.small, NetworkConfig: NetworkConfig{TemporarySGSourcePublicIP: true, TemporarySGSourcePublicIPURL: url}}
			},
			ipStatus: 200, ip: "2001:db8::9",
			check: func(t *testing.T, n *testNetwork, run map[string]string, perms []types.IpPermission) {
				if run["SubnetId"] != n.small {
					t.Errorf("subnet = %s, want %s", run["SubnetId"], n.small)
				}
				if len(perms) != 1 || len(perms[0].IpRanges) != 0 || len(perms[0].Ipv6Ranges) != 1 || aws.ToString(perms[0].Ipv6Ranges[0].CidrIpv6) != "2001:db8::9/128" {
					t.Errorf("temporary group admits %+v, want only 2001:db8::9/128", perms)
				}
			},
		},
		{
			name: "IPv6 source CIDRs win over the public IP",
			run: func(n *testNetwork, url string) RunConfig {
				return RunConfig{SubnetID: n.small, TemporarySGSourceCIDRs: []string{"2001:db8:5::/48", "198.51.100.0/24"},
					NetworkConfig: NetworkConfig{TemporarySGSourcePublicIP: true, TemporarySGSourcePublicIPURL: url}}
			},
			ipStatus: 200, ip: "203.0.113.9",
			check: func(t *testing.T, n *testNetwork, run map[string]string, perms []types.IpPermission) {
				if len(perms) != 1 || len(perms[0].IpRanges) != 1 || len(perms[0].Ipv6Ranges) != 1 ||
					aws.ToString(perms[0].IpRanges[0].CidrIp) != "198.51.100.0/24" || aws.ToString(perms[0].Ipv6Ranges[0].CidrIpv6) != "2001:db8:5::/48" {
					t.Errorf("temporary group admits %+v", perms)
				}
			},
		},
		{
			name: "security groups by filter in the subnet's VPC",
			run: func(n *testNetwork, url string) RunConfig {
				return RunConfig{NetworkConfig: NetworkConfig{
					SubnetFilter:        SubnetFilter{Filters: map[string]string{"tag:Test": n.tag, "tag:Tier": "private"}, Random: true},
					SecurityGroupFilter: NetworkFilter{Filters: map[string]string{"tag:Class": "packer", "tag:Test": n.tag}},
				}}
			},
			check: func(t *testing.T, n *testNetwork, run map[string]string, perms []types.IpPermission) {
				if perms != nil {
					t.Errorf("a temporary group was made: %+v", perms)
				}
				got := []string{run["SecurityGroupId.1"], run["SecurityGroupId.2"]}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(n.groups))
				if !slices.Equal(got, want) || run["SecurityGroupId.3"] != "" {
					t.Errorf("security groups %v, want %v", got, want)
				}
				if run["SubnetId"] != n.small && run["SubnetId"] != n.large {
					t.Errorf("subnet %s is not a private subnet of the test", run["SubnetId"])
				}
			},
		},
		{
			name: "associate_public_ip_address with vpc_id: the most free subnet of the VPC",
			run: func(n *testNetwork, url string) RunConfig {
				return RunConfig{VpcID: n.vpc, AssociatePublicIPAddress: config.TriFalse, SecurityGroupIDs: n.groups[:1]}
			},
			check: func(t *testing.T, n *testNetwork, run map[string]string, perms []types.IpPermission) {
				if run["NetworkInterface.1.SubnetId"] == n.small || run["NetworkInterface.1.SubnetId"] == n.large || run["NetworkInterface.1.SubnetId"] == "" ||
					run["NetworkInterface.1.AssociatePublicIpAddress"] != "false" || run["NetworkInterface.1.SecurityGroupId.1"] != n.groups[0] {
					t.Errorf("RunInstances network interface: %v; want the public /22 subnet without a public IP", run)
				}
			},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			n := newTestNetwork(t, e, "10."+string(rune('1'+i))+"0")
			url, asked := "", new(int)
			if tc.ip != "" {
				url, asked = checkIP(t, tc.ipStatus, tc.ip)
			}
			src := sourceImage(t, e.ec2)
			StateSourceImage.Put(e.state, src)
			run := tc.run(n, url)
			run.InstanceType = "t3.micro"
			run.Comm = comm
			steps := run.LaunchSteps(LaunchInput{Region: testRegion, Ctx: interpolate.Context{Funcs: amiconfig.TemplateFuncs}})
			var ran []multistep.Step
			for _, s := range steps {
				if _, ok := s.(*StepCreateKeyPair); ok {
					continue
				}
				ran = append(ran, s)
				e.run(t, s)
				if _, ok := s.(*StepRunInstance); ok {
					break
				}
			}
			if tc.ip != "" && run.TemporarySGSourceCIDRs == nil && *asked != 1 {
				t.Errorf("the check-IP service was asked %d times, want once", *asked)
			}
			calls := e.proxy.CallsFor("ec2", "RunInstances")
			if len(calls) != 1 {
				t.Fatalf("%d RunInstances calls", len(calls))
			}
			params := map[string]string{}
			for k, v := range calls[0].Params {
				params[k] = v[0]
			}
			var perms []types.IpPermission
			var tempGroup string
			if c := e.proxy.CallsFor("ec2", "CreateSecurityGroup"); len(c) == 1 {
				if c[0].Params.Get("VpcId") != n.vpc {
					t.Errorf("temporary group made in %q, want %s", c[0].Params.Get("VpcId"), n.vpc)
				}
				groups, _ := StateSecurityGroupIDs.Get(e.state)
				tempGroup = groups[0]
				out, err := e.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: groups})
				if err != nil {
					t.Fatal(err)
				}
				perms = out.SecurityGroups[0].IpPermissions
			}
			tc.check(t, n, params, perms)

			for i := len(ran) - 1; i >= 0; i-- {
				ran[i].Cleanup(e.state)
			}
			if tempGroup != "" {
				_, err := e.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{tempGroup}})
				if err == nil {
					t.Errorf("temporary group %s is left", tempGroup)
				}
			}
		})
	}
}

// TestStepsNetworkSelectionFailures checks that bad network choices halt
// before anything is created.
func TestStepsNetworkSelectionFailures(t *testing.T) {
	tests := []struct {
		name    string
		run     func(n *testNetwork, url string) RunConfig
		ip      string
		status  int
		wantErr []string
	}{
		{
			name: "non-default VPC without a subnet",
			run: func(n *testNetwork, _ string) RunConfig {
				return RunConfig{NetworkConfig: NetworkConfig{VpcFilter: NetworkFilter{Filters: map[string]string{"tag:Test": n.tag}}}}
			},
			wantErr: []string{"choose the network of the build instance", "is not the default VPC", "name a subnet of"},
		},
		{
			name: "subnet filter matching two without a choice",
			run: func(n *testNetwork, _ string) RunConfig {
				return RunConfig{NetworkConfig: NetworkConfig{SubnetFilter: SubnetFilter{Filters: map[string]string{"tag:Test": n.tag, "tag:Tier": "private"}}}}
			},
			wantErr: []string{"2 subnets match"},
		},
		{
			name: "security group filter matching none",
			run: func(n *testNetwork, _ string) RunConfig {
				return RunConfig{SubnetID: n.small, NetworkConfig: NetworkConfig{SecurityGroupFilter: NetworkFilter{Filters: map[string]string{"tag:Test": n.tag, "tag:Class": "nothing"}}}}
			},
			wantErr: []string{"security_group_filter: find security groups matching", "no security group matches"},
		},
		{
			name: "check-IP service failing",
			run: func(n *testNetwork, url string) RunConfig {
				return RunConfig{SubnetID: n.small, NetworkConfig: NetworkConfig{TemporarySGSourcePublicIP: true, TemporarySGSourcePublicIPURL: url}}
			},
			ip: "203.0.113.9", status: http.StatusBadGateway,
			wantErr: []string{"temporary_security_group_source_public_ip: ask http://127.0.0.1", "HTTP status 502"},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			n := newTestNetwork(t, e, "10."+string(rune('1'+i))+"5")
			url := ""
			if tc.ip != "" {
				url, _ = checkIP(t, tc.status, tc.ip)
			}
			run := tc.run(n, url)
			run.InstanceType = "t3.micro"
			run.Comm = communicator.Config{Type: "ssh", SSH: communicator.SSH{SSHPort: 22}}
			var err error
			for _, s := range run.LaunchSteps(LaunchInput{Region: testRegion}) {
				if _, ok := s.(*StepCreateKeyPair); ok {
					continue
				}
				if _, ok := s.(*StepRunInstance); ok {
					t.Fatal("every step before the launch continued")
				}
				if s.Run(context.Background(), e.state) == multistep.ActionHalt {
					err = e.runHalt(t, s)
					break
				}
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
			for _, a := range e.actions() {
				if strings.HasPrefix(a, "Create") || a == "RunInstances" || a == "AuthorizeSecurityGroupIngress" {
					t.Errorf("%s was called; nothing may be created", a)
				}
			}
		})
	}
}
