//go:build unix

package iamprofile_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/iamprofile"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

const (
	region = "us-east-1"
	doc    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::artifacts/*"]}]}`
)

func fast(o *iamprofile.Options) {
	o.RetryDelay = 10 * time.Millisecond
	o.RetryMaxDelay = 50 * time.Millisecond
}

// TestProfileLifecycleOnMoto makes a temporary profile, launches an
// instance with it and undoes the ledger: the role, its policy and the
// profile are gone, and a profile and role of somebody else are untouched.
func TestProfileLifecycleOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	proxy := awstest.NewProxy(t, moto.Endpoint, awstest.ProxyOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := awstest.IAMClient(proxy.URL, region)
	ec2c, _ := awstest.Clients(proxy.URL, region)

	// Somebody else's role and profile, made before.
	other := awstest.IAMClient(moto.Endpoint, region)
	if _, err := other.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("theirs"), AssumeRolePolicyDocument: aws.String(iamprofile.EC2TrustPolicy)}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("theirs")}); err != nil {
		t.Fatal(err)
	}
	base, err := awstest.TakeSnapshot(ctx, moto.Endpoint, []string{region})
	if err != nil {
		t.Fatal(err)
	}

	var l ledger.Ledger
	out, err := iamprofile.Create(ctx, client, &iamprofile.CreateInput{
		Name: "build-1", PolicyDocument: doc, Tags: map[string]string{"Build": "1"},
	}, fast, func(o *iamprofile.Options) { o.Ledger = &l; o.Logf = t.Logf })
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if want := "arn:aws:iam::" + awstest.TestAccountID + ":instance-profile/build-1"; out.ProfileARN != want {
		t.Errorf("ProfileARN = %q, want %q", out.ProfileARN, want)
	}
	got, err := other.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("build-1"), PolicyName: aws.String("build-1")})
	if err != nil {
		t.Fatalf("the inline policy: %v", err)
	}
	if aws.ToString(got.PolicyDocument) == "" {
		t.Error("the inline policy is empty")
	}
	if len(l.Resources()) != 3 {
		t.Errorf("ledger = %v, want the role, its policy and the profile", l.Resources())
	}

	run, err := instance.Run(ctx, ec2c, &instance.RunInput{
		ImageID: "ami-12345678", InstanceType: "t3.micro", IAMInstanceProfile: out.ProfileName, IAMProfileWait: time.Minute,
	}, func(o *instance.Options) { o.Ledger = &l })
	if err != nil {
		t.Fatalf("Run with the profile: %v", err)
	}
	if p := run.Instance.IamInstanceProfile; p == nil || aws.ToString(p.Arn) != out.ProfileARN {
		t.Errorf("instance profile of the instance = %+v, want %s", p, out.ProfileARN)
	}

	if err := l.Undo(ctx); err != nil {
		t.Fatalf("undo: %v", err)
	}
	leaks, err := awstest.ListLeaks(ctx, moto.Endpoint, []string{region}, base)
	if err != nil {
		t.Fatal(err)
	}
	leaks.Volumes = nil // moto keeps terminated instances' root volumes
	if !leaks.Empty() {
		t.Errorf("left behind:\n%s", leaks)
	}
	if _, err := other.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("theirs")}); err != nil {
		t.Errorf("somebody else's profile: %v", err)
	}
	if _, err := other.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("theirs")}); err != nil {
		t.Errorf("somebody else's role: %v", err)
	}
	wantIAM := []string{"iam:CreateRole", "iam:PutRolePolicy", "iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile", "iam:GetInstanceProfile",
		"ec2:RunInstances", "ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:DescribeInstances",
		"iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile", "iam:DeleteRolePolicy", "iam:DeleteRole"}
	if got := proxy.Actions(); !slices.Equal(got, wantIAM) {
		t.Errorf("calls:\n got %v\nwant %v", got, wantIAM)
	}
}

// TestLostCreateAnswersOnMoto loses the answers to the creates: the SDK's
// retry meets EntityAlreadyExists, and Create finds the resource by its
// token and goes on; a name taken by somebody else fails without touching
// it.
func TestLostCreateAnswersOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	proxy := awstest.NewProxy(t, moto.Endpoint, awstest.ProxyOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := awstest.IAMClient(proxy.URL, region)
	client := iam.New(c.Options(), func(o *iam.Options) { o.RetryMaxAttempts = 3 })
	lost := &awstest.Fault{Forward: true, Code: "ServiceFailure", Status: http.StatusInternalServerError}

	for _, action := range []string{"CreateRole", "CreateInstanceProfile", "AddRoleToInstanceProfile"} {
		t.Run(action, func(t *testing.T) {
			proxy.Reset()
			proxy.SetFault(awstest.FailFirst(1, "iam", action, lost))
			defer proxy.SetFault(nil)
			var l ledger.Ledger
			out, err := iamprofile.Create(ctx, client, &iamprofile.CreateInput{Name: "lost-" + action, PolicyDocument: doc}, fast,
				func(o *iamprofile.Options) { o.Ledger = &l })
			if err != nil {
				t.Fatalf("Create after a lost %s answer: %v", action, err)
			}
			if n := len(proxy.CallsFor("iam", action)); n != 2 {
				t.Errorf("%s calls = %d, want the lost one and the SDK's retry", action, n)
			}
			if out.ProfileName != "lost-"+action || l.Len() != 3 {
				t.Errorf("output %+v, ledger %v", out, l.Resources())
			}
			if err := l.Undo(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("name taken", func(t *testing.T) {
		direct := awstest.IAMClient(moto.Endpoint, region)
		if _, err := direct.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("taken")}); err != nil {
			t.Fatal(err)
		}
		proxy.Reset()
		_, err := iamprofile.Create(ctx, client, &iamprofile.CreateInput{Name: "taken", PolicyDocument: doc}, fast)
		if err == nil {
			t.Fatal("Create with a taken profile name succeeded")
		}
		if _, err := direct.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("taken")}); err != nil {
			t.Errorf("the existing profile: %v", err)
		}
		if _, err := direct.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("taken")}); err == nil {
			t.Error("the role Create made for the failed build is still there")
		}
		if n := len(proxy.CallsFor("iam", "DeleteInstanceProfile")); n != 0 {
			t.Errorf("DeleteInstanceProfile calls = %d, want none", n)
		}
	})
}
