//go:build unix

package distribute

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const (
	keyARN    = "arn:aws:kms:us-east-1:111111111111:key/0f3c1a2b-1234-4abc-8def-0123456789ab"
	awsKeyARN = "arn:aws:kms:us-east-1:111111111111:key/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b" // the account's aws/ebs key
)

// errKMS marks a case that fails in the KMS look-up.
var errKMS = errors.New("kms look-up fails")

func TestShare(t *testing.T) {
	encrypted := func(kms string) func(*types.Image) {
		return func(img *types.Image) {
			img.BlockDeviceMappings[0].Ebs.Encrypted = aws.Bool(true)
			img.BlockDeviceMappings[0].Ebs.KmsKeyId = aws.String(kms)
		}
	}
	tests := []struct {
		name    string
		mod     func(*types.Image)
		in      ShareInput
		kms     bool // Options.KMS set
		wantErr error
		wantOps []string
	}{
		{
			name: "add and remove, launch and snapshot permissions",
			in: ShareInput{
				Add:    Permissions{Accounts: []string{account2}, Groups: []string{"all"}, SnapshotAccounts: []string{account2}, SnapshotGroups: []string{"all"}},
				Remove: Permissions{OrgARNs: []string{orgARN}, SnapshotAccounts: []string{"333333333333"}},
			},
			wantOps: []string{
				"us-east-1 DescribeImages ami-x", "us-east-1 ModifyImageAttribute ami-x", "us-east-1 ModifySnapshotAttribute snap-x",
				"us-east-1 ModifyImageAttribute ami-x", "us-east-1 ModifySnapshotAttribute snap-x",
			},
		},
		{
			name:    "image encrypted with the AWS-managed key, told by KMS",
			mod:     encrypted(awsKeyARN),
			in:      ShareInput{Add: Permissions{Accounts: []string{account2}}},
			kms:     true,
			wantErr: ErrShareDefaultKey,
			wantOps: []string{"us-east-1 DescribeImages ami-x", "us-east-1 DescribeSnapshots snap-x", "us-east-1 DescribeKey " + awsKeyARN},
		},
		{
			name:    "image encrypted with a customer key, public",
			mod:     encrypted(keyARN),
			in:      ShareInput{Add: Permissions{Groups: []string{"all"}}},
			kms:     true,
			wantErr: ErrPublicEncrypted,
			wantOps: []string{"us-east-1 DescribeImages ami-x"},
		},
		{
			name: "image encrypted with a customer key, shared with an OU",
			mod:  encrypted(keyARN),
			in:   ShareInput{Add: Permissions{OUARNs: []string{ouARN}}},
			kms:  true,
			wantOps: []string{"us-east-1 DescribeImages ami-x", "us-east-1 DescribeSnapshots snap-x", "us-east-1 DescribeKey " + keyARN,
				"us-east-1 ModifyImageAttribute ami-x"},
		},
		{
			name:    "customer key without a KMS client: judged by the snapshot's key name",
			mod:     encrypted(keyARN),
			in:      ShareInput{Add: Permissions{Accounts: []string{account2}}},
			wantOps: []string{"us-east-1 DescribeImages ami-x", "us-east-1 DescribeSnapshots snap-x", "us-east-1 ModifyImageAttribute ami-x"},
		},
		{
			name:    "KMS cannot describe the key",
			mod:     encrypted("arn:aws:kms:us-east-1:111111111111:key/unknown"),
			in:      ShareInput{Add: Permissions{Accounts: []string{account2}}},
			kms:     true,
			wantErr: errKMS,
			wantOps: []string{"us-east-1 DescribeImages ami-x", "us-east-1 DescribeSnapshots snap-x", "us-east-1 DescribeKey arn:aws:kms:us-east-1:111111111111:key/unknown"},
		},
		{
			name:    "removing from a default-key image is allowed",
			mod:     encrypted(""),
			in:      ShareInput{Remove: Permissions{Accounts: []string{account2}}, SnapshotIDs: []string{"snap-x"}, Encryption: &Encryption{Encrypted: true}},
			wantOps: []string{"us-east-1 ModifyImageAttribute ami-x"},
		},
		{
			name:    "invalid account",
			in:      ShareInput{Add: Permissions{SnapshotAccounts: []string{"12"}}},
			wantOps: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCloud(srcRegion)
			mods := []func(*types.Image){}
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			c.addImage(srcRegion, "ami-x", "x", fixedNow, mods...)
			c.keys[keyARN], c.keys[awsKeyARN] = "CUSTOMER", "AWS"
			in := tc.in
			in.ImageID, in.Region = "ami-x", srcRegion
			_, err := Share(context.Background(), &fakeEC2{c: c, region: srcRegion}, &in, fastOptions, func(o *Options) {
				if tc.kms {
					o.KMS = c.kms()
				}
			})
			switch {
			case tc.wantErr == errKMS:
				if awserr.Code(err) != "NotFoundException" || !strings.Contains(err.Error(), "kms:DescribeKey") {
					t.Errorf("err = %v, want the KMS look-up's failure", err)
				}
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && tc.name == "invalid account":
				if err == nil || !strings.Contains(err.Error(), `SnapshotAccounts[0]: "12" is not an AWS account ID`) {
					t.Errorf("err = %v", err)
				}
			case tc.wantErr == nil && tc.name != "invalid account" && err != nil:
				t.Errorf("err = %v", err)
			}
			if got := opsOf(c.Calls()); strings.Join(got, "\n") != strings.Join(tc.wantOps, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantOps, "\n"))
			}
			for _, k := range c.Calls("ModifySnapshotAttribute") {
				in := k.In.(*ec2.ModifySnapshotAttributeInput)
				if in.CreateVolumePermission != nil || (in.OperationType != "add" && in.OperationType != "remove") {
					t.Errorf("snapshot permissions not in the flat form: %+v", in)
				}
			}
		})
	}
}

func TestShareRetriesNotFoundAfterCopy(t *testing.T) {
	c := newFakeCloud(srcRegion)
	c.addImage(srcRegion, "ami-x", "x", fixedNow)
	fails := 2
	c.ModifyImageAttributeFn = func(ctx context.Context, region string, in *ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error) {
		if fails > 0 {
			fails--
			return nil, apiErr("InvalidAMIID.NotFound")
		}
		return c.defModifyImageAttribute(region, in)
	}
	_, err := Share(context.Background(), &fakeEC2{c: c, region: srcRegion}, &ShareInput{ImageID: "ami-x", Add: Permissions{Accounts: []string{account2}}}, fastOptions)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Calls("ModifyImageAttribute")); n != 3 {
		t.Errorf("%d ModifyImageAttribute calls, want 3", n)
	}
}

func TestCheckSharing(t *testing.T) {
	tests := []struct {
		name string
		add  Permissions
		enc  Encryption
		want []error
	}{
		{"unencrypted public", Permissions{Groups: []string{"all"}, Accounts: []string{account2}}, Encryption{}, nil},
		{"default key, account", Permissions{Accounts: []string{account2}}, Encryption{Encrypted: true}, []error{ErrShareDefaultKey}},
		{"default key alias ARN, snapshot account", Permissions{SnapshotAccounts: []string{account2}}, Encryption{Encrypted: true, KMSKeyID: "arn:aws:kms:eu-west-1:111111111111:alias/aws/ebs"}, []error{ErrShareDefaultKey}},
		{"default key, public", Permissions{Groups: []string{"all"}, OrgARNs: []string{orgARN}}, Encryption{Encrypted: true}, []error{ErrShareDefaultKey, ErrPublicEncrypted}},
		{"customer key, org and OU", Permissions{OrgARNs: []string{orgARN}, OUARNs: []string{ouARN}}, Encryption{Encrypted: true, KMSKeyID: "alias/team"}, nil},
		{"customer key, public snapshots", Permissions{SnapshotGroups: []string{"all"}}, Encryption{Encrypted: true, KMSKeyID: "alias/team"}, []error{ErrPublicEncrypted}},
		{"default key, nothing shared", Permissions{}, Encryption{Encrypted: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSharing(tc.add, tc.enc)
			if (err == nil) != (len(tc.want) == 0) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
		})
	}
}
