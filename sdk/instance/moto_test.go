//go:build unix

package instance_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

const region = "us-east-1"

var quick = instance.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, MaxWait: 5 * time.Second}

func fast(o *instance.Options) {
	o.RetryDelay = 10 * time.Millisecond
	o.RetryMaxDelay = 50 * time.Millisecond
	o.UndoWait = 5 * time.Second
}

// sourceAMI returns a preloaded Amazon AMI.
func sourceAMI(t *testing.T, ctx context.Context, client *ec2.Client) string {
	t.Helper()
	out, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"amazon"},
		Filters: []types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}, {Name: aws.String("root-device-type"), Values: []string{"ebs"}}},
	})
	if err != nil || len(out.Images) == 0 {
		t.Fatalf("find a source AMI: %d images, %v", len(out.Images), err)
	}
	return aws.ToString(out.Images[0].ImageId)
}

func TestBuildInstanceLifecycleOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	client, _ := awstest.Clients(moto.Endpoint, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ami := sourceAMI(t, ctx, client)
	vpcs, err := client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil || len(vpcs.Vpcs) != 1 {
		t.Fatalf("default VPC: %v", err)
	}
	vpcID := aws.ToString(vpcs.Vpcs[0].VpcId)

	var l ledger.Ledger
	withLedger := func(o *instance.Options) { o.Ledger = &l; o.Logf = t.Logf }

	key, err := instance.CreateKeyPair(ctx, client, &instance.CreateKeyPairInput{Tags: map[string]string{"run": "r1"}}, withLedger)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key.PrivateKeyPEM)
	if err != nil {
		t.Fatalf("private key does not parse: %v", err)
	}
	if got := signer.PublicKey().Type(); got != ssh.KeyAlgoED25519 {
		t.Errorf("key type = %s, want ed25519", got)
	}

	sg, err := instance.CreateSecurityGroup(ctx, client, &instance.CreateSecurityGroupInput{
		VPCID: vpcID, Port: 22, SourceCIDRs: []string{"198.51.100.0/24"}, Tags: map[string]string{"run": "r1"},
	}, withLedger)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg.GroupID}})
	if err != nil {
		t.Fatal(err)
	}
	g := groups.SecurityGroups[0]
	if aws.ToString(g.VpcId) != vpcID || len(g.IpPermissions) != 1 || aws.ToInt32(g.IpPermissions[0].FromPort) != 22 ||
		len(g.IpPermissions[0].IpRanges) != 1 || aws.ToString(g.IpPermissions[0].IpRanges[0].CidrIp) != "198.51.100.0/24" {
		t.Errorf("security group = %+v", g)
	}

	run, err := instance.Run(ctx, client, &instance.RunInput{
		ImageID: ami, InstanceType: "t3.micro", KeyName: key.Name, SecurityGroupIDs: []string{sg.GroupID},
		UserData:        "#!/bin/sh\necho built\n",
		MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired},
		Tags:            map[string]string{"Name": "builder", "run": "r1"},
		Wait:            quick,
	}, withLedger)
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instance.InstanceId)
	if run.Instance.State.Name != types.InstanceStateNameRunning || aws.ToString(run.Instance.KeyName) != key.Name {
		t.Errorf("instance %s is %s with key %q", id, run.Instance.State.Name, aws.ToString(run.Instance.KeyName))
	}
	attr, err := client.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		t.Fatal(err)
	}
	if ud, _ := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value)); string(ud) != "#!/bin/sh\necho built\n" {
		t.Errorf("user data = %q", ud)
	}
	wantLedger := []ledger.Resource{
		{Kind: ledger.KindKeyPair, ID: key.Name, Region: region},
		{Kind: ledger.KindSecurityGroup, ID: sg.GroupID, Region: region},
		{Kind: ledger.KindInstance, ID: id, Region: region},
	}
	if got := l.Resources(); len(got) != 3 || got[0] != wantLedger[0] || got[1] != wantLedger[1] || got[2] != wantLedger[2] {
		t.Errorf("ledger = %v, want %v", got, wantLedger)
	}

	if _, err := instance.Stop(ctx, client, &instance.StopInput{InstanceID: id, Wait: quick}); err != nil {
		t.Fatal(err)
	}
	if _, err := instance.Terminate(ctx, client, &instance.TerminateInput{InstanceIDs: []string{id, "i-0123456789abcdef0"}, Wait: quick}); err != nil {
		t.Fatalf("Terminate with an unknown ID: %v", err)
	}
	desc, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if s := desc.Reservations[0].Instances[0].State.Name; s != types.InstanceStateNameTerminated {
		t.Errorf("instance is %s after Terminate", s)
	}
	if _, err := instance.DeleteSecurityGroup(ctx, client, &instance.DeleteSecurityGroupInput{GroupID: sg.GroupID, MaxWait: time.Second}, fast); err != nil {
		t.Fatal(err)
	}
	if _, err := instance.DeleteKeyPair(ctx, client, &instance.DeleteKeyPairInput{KeyName: key.Name}); err != nil {
		t.Fatal(err)
	}
	// Everything is gone already; undoing again must still succeed.
	if err := l.Undo(ctx); err != nil {
		t.Errorf("Undo after manual cleanup: %v", err)
	}
	_, err = client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg.GroupID}})
	if awserr.Code(err) != "InvalidGroup.NotFound" {
		t.Errorf("security group after delete: %v", err)
	}
}

func TestLedgerUndoOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	client, _ := awstest.Clients(moto.Endpoint, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ami := sourceAMI(t, ctx, client)

	var l ledger.Ledger
	opts := []func(*instance.Options){fast, func(o *instance.Options) { o.Ledger = &l }}
	key, err := instance.CreateKeyPair(ctx, client, &instance.CreateKeyPairInput{KeyType: instance.KeyTypeRSA}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(key.PrivateKeyPEM), "RSA PRIVATE KEY") {
		t.Errorf("rsa key is not PEM RSA: %.40q", key.PrivateKeyPEM)
	}
	sg, err := instance.CreateSecurityGroup(ctx, client, &instance.CreateSecurityGroupInput{Port: 5986}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	run, err := instance.Run(ctx, client, &instance.RunInput{ImageID: ami, InstanceType: "t3.micro", KeyName: key.Name, SecurityGroupIDs: []string{sg.GroupID}, Wait: quick}, opts...)
	if err != nil {
		t.Fatal(err)
	}

	// A failed build: undo with a fresh, bounded context.
	undoCtx, undoCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer undoCancel()
	if err := l.Undo(undoCtx); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 0 {
		t.Errorf("ledger keeps %v", l.Resources())
	}
	id := aws.ToString(run.Instance.InstanceId)
	desc, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if s := desc.Reservations[0].Instances[0].State.Name; s != types.InstanceStateNameTerminated {
		t.Errorf("instance is %s after Undo", s)
	}
	if _, err := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg.GroupID}}); awserr.Code(err) != "InvalidGroup.NotFound" {
		t.Errorf("security group after Undo: %v", err)
	}
	keys, err := client.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.KeyPairs {
		if aws.ToString(k.KeyName) == key.Name {
			t.Errorf("key pair %s left after Undo", key.Name)
		}
	}
}

// TestSubnetAndENAOnMoto looks up a default subnet's VPC and turns ENA
// support of a stopped instance off and on. moto accepts the attribute but
// does not report it back (DescribeInstanceAttribute enaSupport is an
// unknown attribute there), so the requests are checked through a
// recording proxy.
func TestSubnetAndENAOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	proxy := awstest.NewProxy(t, moto.Endpoint, awstest.ProxyOptions{})
	client, _ := awstest.Clients(proxy.URL, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	subnets, err := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil || len(subnets.Subnets) == 0 {
		t.Fatalf("default subnets: %v", err)
	}
	want := subnets.Subnets[0]
	got, err := instance.DescribeSubnet(ctx, client, &instance.DescribeSubnetInput{SubnetID: aws.ToString(want.SubnetId)})
	if err != nil {
		t.Fatal(err)
	}
	if got.VPCID == "" || got.VPCID != aws.ToString(want.VpcId) || got.AvailabilityZone != aws.ToString(want.AvailabilityZone) {
		t.Errorf("DescribeSubnet = VPC %q, zone %q; want %q, %q", got.VPCID, got.AvailabilityZone, aws.ToString(want.VpcId), aws.ToString(want.AvailabilityZone))
	}
	_, err = instance.DescribeSubnet(ctx, client, &instance.DescribeSubnetInput{SubnetID: "subnet-0123456789abcdef0"})
	if awserr.Code(err) != "InvalidSubnetID.NotFound" || !strings.Contains(err.Error(), "subnet-0123456789abcdef0 in "+region) {
		t.Errorf("DescribeSubnet of a missing subnet = %v, want InvalidSubnetID.NotFound naming subnet and region", err)
	}

	run, err := instance.Run(ctx, client, &instance.RunInput{ImageID: sourceAMI(t, ctx, client), InstanceType: "t3.micro", Wait: quick})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instance.InstanceId)
	t.Cleanup(func() {
		if _, err := instance.Terminate(context.Background(), client, &instance.TerminateInput{InstanceIDs: []string{id}, Wait: quick}); err != nil {
			t.Errorf("terminate %s: %v", id, err)
		}
	})
	if _, err := instance.Stop(ctx, client, &instance.StopInput{InstanceID: id, Wait: quick}); err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		proxy.Reset()
		if _, err := instance.SetENASupport(ctx, client, &instance.SetENASupportInput{InstanceID: id, Enabled: on}); err != nil {
			t.Fatal(err)
		}
		calls := proxy.CallsFor("ec2", "ModifyInstanceAttribute")
		if len(calls) != 1 || calls[0].Params.Get("InstanceId") != id || calls[0].Params.Get("EnaSupport.Value") != fmt.Sprint(on) || calls[0].Region != region {
			t.Errorf("SetENASupport(%t) sent %v", on, calls)
		}
	}
	_, err = instance.SetENASupport(ctx, client, &instance.SetENASupportInput{InstanceID: "i-0123456789abcdef0", Enabled: true})
	if awserr.Code(err) != "InvalidInstanceID.NotFound" || !strings.Contains(err.Error(), "i-0123456789abcdef0 in "+region) {
		t.Errorf("SetENASupport of a missing instance = %v, want InvalidInstanceID.NotFound naming instance and region", err)
	}
}

// TestGetWindowsPasswordOnMoto reads the password of an instance moto
// launched from a Linux AMI with a temporary RSA key pair: moto, like EC2,
// answers GetPasswordData with empty data, so the wait ends in a
// *PasswordUnavailableError.
func TestGetWindowsPasswordOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	client, _ := awstest.Clients(moto.Endpoint, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := instance.CreateKeyPair(ctx, client, &instance.CreateKeyPairInput{KeyType: instance.KeyTypeRSA})
	if err != nil {
		t.Fatal(err)
	}
	images, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil {
		t.Fatal(err)
	}
	var linux string
	for _, img := range images.Images {
		if img.Platform == "" {
			linux = aws.ToString(img.ImageId)
			break
		}
	}
	if linux == "" {
		t.Fatal("no preloaded Linux AMI")
	}
	run, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(linux), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), KeyName: aws.String(key.Name),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	_, err = instance.GetWindowsPassword(ctx, client, &instance.GetWindowsPasswordInput{
		InstanceID: id, PrivateKeyPEM: key.PrivateKeyPEM,
		Wait: instance.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, MaxWait: 3 * time.Second},
	})
	var pu *instance.PasswordUnavailableError
	if !errors.As(err, &pu) || pu.InstanceID != id || pu.Region != region {
		t.Fatalf("error = %v, want a *PasswordUnavailableError for %s in %s", err, id, region)
	}
}
