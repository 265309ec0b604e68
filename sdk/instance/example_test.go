//go:build unix

package instance_test

import (
	"context"
	"errors"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Launch a build instance with a temporary key pair and security group, and
// remove all three whatever happens.
func Example() {
	ctx := context.Background()
	sess, err := awscfg.New(ctx, awscfg.Config{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	client := sess.EC2("")

	var l ledger.Ledger
	defer func() {
		undoCtx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := l.Undo(undoCtx); err != nil {
			log.Print(err)
		}
	}()
	opts := func(o *instance.Options) { o.Ledger = &l; o.Logf = log.Printf }

	key, err := instance.CreateKeyPair(ctx, client, &instance.CreateKeyPairInput{}, opts)
	if err != nil {
		log.Fatal(err)
	}
	keyFile := filepath.Join(os.TempDir(), key.Name+".pem")
	if err := os.WriteFile(keyFile, key.PrivateKeyPEM, 0o600); err != nil {
		log.Fatal(err)
	}
	defer os.Remove(keyFile)

	sg, err := instance.CreateSecurityGroup(ctx, client, &instance.CreateSecurityGroupInput{
		VPCID: "vpc-0123456789abcdef0", Port: 22, SourceCIDRs: []string{"203.0.113.0/24"},
	}, opts)
	if err != nil {
		log.Fatal(err)
	}
	run, err := instance.Run(ctx, client, &instance.RunInput{
		ImageID:          "ami-0123456789abcdef0",
		InstanceType:     "t3.small",
		SubnetID:         "subnet-0123456789abcdef0",
		KeyName:          key.Name,
		SecurityGroupIDs: []string{sg.GroupID},
		Tags:             map[string]string{"Name": "image builder"},
		Wait:             instance.WaitOptions{MaxWait: 10 * time.Minute},
	}, opts)
	var se *instance.StateError
	if errors.As(err, &se) {
		log.Fatalf("instance %s is %s: %s", se.InstanceID, se.State, se.Reason)
	}
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("ssh -i %s ec2-user@%s", keyFile, aws.ToString(run.Instance.PublicIpAddress))
}

// Read the Administrator password of a Windows instance launched with an
// RSA key pair, and hand it to a WinRM client without printing it.
func ExampleGetWindowsPassword() {
	ctx := context.Background()
	sess, err := awscfg.New(ctx, awscfg.Config{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	keyPEM, err := os.ReadFile("windows-build.pem")
	if err != nil {
		log.Fatal(err)
	}
	out, err := instance.GetWindowsPassword(ctx, sess.EC2(""), &instance.GetWindowsPasswordInput{
		InstanceID:    "i-0123456789abcdef0",
		PrivateKeyPEM: keyPEM,
		Wait:          instance.WaitOptions{MaxWait: 20 * time.Minute},
	})
	var unavailable *instance.PasswordUnavailableError
	if errors.As(err, &unavailable) {
		log.Fatalf("no password after %s; does the AMI generate one?", unavailable.Waited)
	}
	if err != nil {
		log.Fatal(err)
	}
	connectWinRM("Administrator", out.Password)
}

func connectWinRM(user, password string) {}

// Launch a spot build instance on whichever of three types has capacity,
// paying at most the on-demand price, and remove the fleet, the instance
// and the launch template afterwards.
func ExampleRunSpot() {
	ctx := context.Background()
	sess, err := awscfg.New(ctx, awscfg.Config{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	client := sess.EC2("")

	var l ledger.Ledger
	defer func() {
		undoCtx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := l.Undo(undoCtx); err != nil {
			log.Print(err)
		}
	}()
	out, err := instance.RunSpot(ctx, client, &instance.RunSpotInput{
		RunInput: instance.RunInput{
			ImageID:  "ami-0123456789abcdef0",
			SubnetID: "subnet-0123456789abcdef0",
			Wait:     instance.WaitOptions{MaxWait: 10 * time.Minute},
		},
		InstanceTypes:      []string{"c6i.large", "c5.large", "m6i.large"},
		AllocationStrategy: "price-capacity-optimized",
		FleetTags:          map[string]string{"Purpose": "image build"},
	}, func(o *instance.Options) { o.Ledger = &l; o.Logf = log.Printf })
	var fe *instance.FleetLaunchError
	if errors.As(err, &fe) && fe.Capacity() {
		log.Fatalf("no spot capacity for %v; try again later or with other types", fe.InstanceTypes)
	}
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("spot instance %s (%s) from fleet %s", aws.ToString(out.Instance.InstanceId), out.Instance.InstanceType, out.FleetID)
}
