//go:build unix

package instance_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
)

// lostResponse makes the request take effect in moto and the client see
// HTTP 500, as when AWS's answer never arrives.
var lostResponse = &awstest.Fault{Forward: true, Code: "InternalError", Status: http.StatusInternalServerError}

// retryingClient returns a client through proxy that retries like the
// SDK's default (3 attempts), with short backoff.
func retryingClient(t *testing.T, proxy *awstest.Proxy) *ec2.Client {
	t.Helper()
	c, _ := awstest.Clients(proxy.URL, region)
	return ec2.New(c.Options(), func(o *ec2.Options) { o.RetryMaxAttempts = 3 })
}

// TestLostCreateResponsesOnMoto loses the answer to each create of this
// package once (the SDK retries) or on every attempt: nothing is left
// behind that the caller does not know about.
func TestLostCreateResponsesOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	proxy := awstest.NewProxy(t, moto.Endpoint, awstest.ProxyOptions{})
	client := retryingClient(t, proxy)
	direct, _ := awstest.Clients(moto.Endpoint, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	countKeys := func(t *testing.T) int {
		t.Helper()
		out, err := direct.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.KeyPairs)
	}
	t.Run("key pair, lost once", func(t *testing.T) {
		proxy.Reset()
		proxy.SetFault(awstest.FailFirst(1, "ec2", "CreateKeyPair", lostResponse))
		defer proxy.SetFault(nil)
		key, err := instance.CreateKeyPair(ctx, client, &instance.CreateKeyPairInput{Name: "lost-once"})
		if err != nil {
			t.Fatalf("CreateKeyPair after one lost answer: %v", err)
		}
		if n := len(proxy.CallsFor("ec2", "CreateKeyPair")); n != 3 || len(proxy.CallsFor("ec2", "DeleteKeyPair")) != 1 {
			t.Errorf("actions %v: want a lost create, its Duplicate retry, a delete and one more create (%d creates)", proxy.Actions(), n)
		}
		if len(key.PrivateKeyPEM) == 0 || countKeys(t) != 1 {
			t.Fatalf("private key %d bytes, %d key pairs", len(key.PrivateKeyPEM), countKeys(t))
		}
		if _, err := instance.DeleteKeyPair(ctx, client, &instance.DeleteKeyPairInput{KeyName: key.Name}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("key pair, always lost", func(t *testing.T) {
		proxy.SetFault(awstest.FailAlways("ec2", "CreateKeyPair", lostResponse))
		defer proxy.SetFault(nil)
		if _, err := instance.CreateKeyPair(ctx, client, &instance.CreateKeyPairInput{Name: "lost-always"}); err == nil {
			t.Fatal("CreateKeyPair succeeded although every answer was lost")
		}
		if n := countKeys(t); n != 0 {
			t.Errorf("%d key pairs left", n)
		}
	})
	t.Run("key pair of someone else", func(t *testing.T) {
		if _, err := direct.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: awsString("theirs")}); err != nil {
			t.Fatal(err)
		}
		if _, err := instance.CreateKeyPair(ctx, client, &instance.CreateKeyPairInput{Name: "theirs"}); awserr.Code(err) != "InvalidKeyPair.Duplicate" {
			t.Fatalf("error = %v, want InvalidKeyPair.Duplicate", err)
		}
		if n := countKeys(t); n != 1 {
			t.Errorf("%d key pairs, want theirs kept", n)
		}
		_, _ = instance.DeleteKeyPair(ctx, direct, &instance.DeleteKeyPairInput{KeyName: "theirs"})
	})
	countGroups := func(t *testing.T) int {
		t.Helper()
		out, err := direct.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.SecurityGroups)
	}
	groups := countGroups(t)
	t.Run("security group, lost once", func(t *testing.T) {
		proxy.Reset()
		proxy.SetFault(awstest.FailFirst(1, "ec2", "CreateSecurityGroup", lostResponse))
		defer proxy.SetFault(nil)
		sg, err := instance.CreateSecurityGroup(ctx, client, &instance.CreateSecurityGroupInput{Name: "sg-lost-once", Port: 22}, fast)
		if err != nil {
			t.Fatalf("CreateSecurityGroup after one lost answer: %v", err)
		}
		if n := countGroups(t); n != groups+1 {
			t.Errorf("%d groups, want %d", n, groups+1)
		}
		if _, err := instance.DeleteSecurityGroup(ctx, client, &instance.DeleteSecurityGroupInput{GroupID: sg.GroupID, MaxWait: time.Second}, fast); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("security group, always lost", func(t *testing.T) {
		proxy.SetFault(awstest.FailAlways("ec2", "CreateSecurityGroup", lostResponse))
		defer proxy.SetFault(nil)
		sg, err := instance.CreateSecurityGroup(ctx, client, &instance.CreateSecurityGroupInput{Name: "sg-lost-always", Port: 22}, fast)
		if err != nil {
			t.Fatalf("CreateSecurityGroup: %v (the group the first attempt made can be used)", err)
		}
		if n := countGroups(t); n != groups+1 {
			t.Errorf("%d groups, want %d", n, groups+1)
		}
		if _, err := instance.DeleteSecurityGroup(ctx, client, &instance.DeleteSecurityGroupInput{GroupID: sg.GroupID, MaxWait: time.Second}, fast); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("run instances, always lost", func(t *testing.T) {
		ami := sourceAMI(t, ctx, direct)
		proxy.Reset()
		proxy.SetFault(awstest.FailAlways("ec2", "RunInstances", lostResponse))
		defer proxy.SetFault(nil)
		if _, err := instance.Run(ctx, client, &instance.RunInput{ImageID: ami, InstanceType: "t3.micro", ClientToken: "lost-tok", Wait: quick}, fast); err == nil {
			t.Fatal("Run succeeded although every answer was lost")
		}
		if n := len(proxy.CallsFor("ec2", "RunInstances")); n != 3 {
			t.Fatalf("%d RunInstances calls, want 3", n)
		}
		out, err := direct.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if awsValue(i.ClientToken) == "lost-tok" && i.State.Name != "terminated" {
					t.Errorf("instance %s launched by a lost call is %s", awsValue(i.InstanceId), i.State.Name)
				}
			}
		}
	})
}

func awsValue(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func awsString(s string) *string { return &s }
