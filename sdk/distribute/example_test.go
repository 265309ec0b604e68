//go:build unix

package distribute_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Copy an AMI to two regions, share it with an account and an
// organization, tag it, and print one line per region. The example runs
// against a local emulator (localSession); with real AWS the session is
// awscfg.New(ctx, awscfg.Config{Region: "us-east-1"}).
func Example() {
	ctx := context.Background()
	sess, err := localSession(ctx)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	src, err := registerImage(ctx, sess, "example-app-1")
	if err != nil {
		fmt.Println("error:", err)
		return
	}

	out, err := distribute.Copy(ctx, sess.EC2, &distribute.CopyInput{
		SourceImageID: src,
		SourceRegion:  "us-east-1",
		Targets:       []distribute.Target{{Region: "eu-west-1"}, {Region: "ap-southeast-2", Name: "example-app-1-ap"}},
		Permissions: distribute.Permissions{
			Accounts: []string{"210987654321"},
			OrgARNs:  []string{"arn:aws:organizations::123456789012:organization/o-abcdefghij"},
		},
		Tags:        map[string]string{"App": "example"},
		Concurrency: 2,
	}, func(o *distribute.Options) {
		o.Wait = distribute.WaitOptions{MinDelay: 100 * time.Millisecond, MaxWait: time.Minute}
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, r := range out.Results {
		fmt.Printf("%s %s %q shared with %d account(s) and %d organization(s)\n",
			r.Region, r.Status, r.Name, len(r.SharedWith.Accounts), len(r.SharedWith.OrgARNs))
	}
	// out.Results.WriteTable(os.Stdout) prints a table; json.Marshal(out.Results) a manifest.

	// Output:
	// eu-west-1 available "example-app-1" shared with 1 account(s) and 1 organization(s)
	// ap-southeast-2 available "example-app-1-ap" shared with 1 account(s) and 1 organization(s)
}

// Distribute a build's AMI the way the builders' ami_regions and
// ami_users do: the AMI in the build region is shared too, once every copy
// succeeded, and the copies are recorded in the caller's ledger, so that a
// later failure of the caller can still remove them.
func ExampleDistribute() {
	ctx := context.Background()
	sess, err := localSession(ctx)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	id, err := registerImage(ctx, sess, "example-build-7")
	if err != nil {
		fmt.Println("error:", err)
		return
	}

	var copies ledger.Ledger
	out, err := distribute.Distribute(ctx, sess.EC2, &distribute.DistributeInput{
		Copy: distribute.CopyInput{
			SourceImageID: id,
			SourceRegion:  "us-east-1",
			Targets:       []distribute.Target{{Region: "eu-west-1"}},
			Permissions:   distribute.Permissions{Accounts: []string{"210987654321"}},
			Tags:          map[string]string{"Release": "7"},
		},
		Inputs:      []distribute.InputImage{{Region: "us-east-1", ImageID: id, Tags: map[string]string{"Release": "7"}}},
		ShareInputs: true,
	}, func(o *distribute.Options) {
		o.Ledger = &copies
		o.Wait = distribute.WaitOptions{MinDelay: 100 * time.Millisecond, MaxWait: time.Minute}
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, r := range out.Results {
		fmt.Printf("%s %s input=%t shared with %v\n", r.Region, r.Status, r.Source, r.SharedWith.Accounts)
	}
	fmt.Println("copies to remove if a later step fails:", len(copies.Resources()))

	// Output:
	// us-east-1 available input=true shared with [210987654321]
	// eu-west-1 available input=false shared with [210987654321]
	// copies to remove if a later step fails: 1
}

// localSession returns a session in us-east-1 of the moto server the
// tests of this package share, with its static test keys.
func localSession(ctx context.Context) (*awscfg.Session, error) {
	shared.once.Do(func() {
		shared.moto, shared.err = awstest.StartMoto(context.Background(), awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	})
	if shared.err != nil {
		return nil, shared.err
	}
	key, secret := awstest.TestCredentials()
	return awscfg.New(ctx, awscfg.Config{
		Region: "us-east-1", AccessKey: key, SecretKey: secret, MaxAttempts: 1,
		Endpoints: awscfg.Endpoints{EC2: shared.moto.Endpoint},
	})
}

// registerImage registers an AMI named name in the session's region, the
// stand-in for a build's AMI, and returns its ID.
func registerImage(ctx context.Context, sess *awscfg.Session, name string) (string, error) {
	out, err := sess.EC2("").RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String(name), RootDeviceName: aws.String("/dev/xvda")})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ImageId), nil
}

// Configuration can be checked before any AWS call, with messages naming
// the caller's own fields.
func ExampleValidateEach() {
	users := []string{"123456789012", "1234"}
	fmt.Println(distribute.ValidateEach("ami_users", users, distribute.ValidateAccountID))
	fmt.Println(distribute.ValidateOUARN("arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"))
	// Output:
	// ami_users[1]: "1234" is not an AWS account ID (want 12 digits)
	// <nil>
}

// CheckSharing refuses what AWS would refuse, before any call.
func ExampleCheckSharing() {
	share := distribute.Permissions{Accounts: []string{"210987654321"}}
	fmt.Println(distribute.CheckSharing(share, distribute.Encryption{Encrypted: true}))
	fmt.Println(distribute.CheckSharing(share, distribute.Encryption{Encrypted: true, KMSKeyID: "alias/team"}))
	// Output:
	// an image encrypted with the AWS-managed key alias/aws/ebs cannot be shared with other accounts; copy it with a customer-managed KMS key
	// <nil>
}

// Retention with a dry run returns the plan without changing anything.
func ExampleRetain() {
	ctx := context.Background()
	sess, err := localSession(ctx)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	out, err := distribute.Retain(ctx, sess.EC2, &distribute.RetainInput{
		Regions:    []string{"us-east-1"},
		Selector:   distribute.Selector{Name: "nightly-*", Tags: map[string]string{"Team": "web"}},
		KeepNewest: 3,
		KeepWithin: 30 * 24 * time.Hour,
		DryRun:     true,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(len(out.Decisions.ToRemove()), "AMIs would be removed")
	// out.Decisions.WriteTable(os.Stdout) prints the whole plan.

	// Output: 0 AMIs would be removed
}
