//go:build unix

package distribute

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The fake answers like EC2: DescribeImages never carries the snapshots'
// KMS key, so the key of an encrypted source comes from DescribeSnapshots
// and who manages it from KMS.
func TestCopySharingEncryptedImagesByKeyManager(t *testing.T) {
	encryptedWith := func(key string) func(*types.Image) {
		return func(img *types.Image) {
			img.BlockDeviceMappings[0].Ebs.Encrypted = aws.Bool(true)
			img.BlockDeviceMappings[0].Ebs.KmsKeyId = aws.String(key)
		}
	}
	const awsKeyAliasARN = "arn:aws:kms:eu-west-1:111111111111:alias/aws/ebs"
	tests := []struct {
		name    string
		srcKey  string // "" = unencrypted source
		in      CopyInput
		noKMS   bool
		wantErr error
	}{
		{
			name:   "source with a customer key shared with an account",
			srcKey: keyARN,
			in:     CopyInput{IncludeSource: true, Targets: targets("eu-west-1"), KMSKeyID: "alias/team", Permissions: Permissions{Accounts: []string{account2}}},
		},
		{
			name:   "same-region copy keeps the source's customer key",
			srcKey: keyARN,
			in:     CopyInput{Targets: []Target{{Region: srcRegion, Name: "app-1-copy"}}, Permissions: Permissions{Accounts: []string{account2}}},
		},
		{
			name:    "source with the AWS-managed key, named by key ARN",
			srcKey:  awsKeyARN,
			in:      CopyInput{IncludeSource: true, Targets: targets("eu-west-1"), KMSKeyID: "alias/team", Permissions: Permissions{Accounts: []string{account2}}},
			wantErr: ErrShareDefaultKey,
		},
		{
			name:    "copies encrypted with a key ARN that KMS says is AWS-managed",
			in:      CopyInput{Targets: targets("eu-west-1"), KMSKeyID: awsKeyARN, Permissions: Permissions{OrgARNs: []string{orgARN}}},
			wantErr: ErrShareDefaultKey,
		},
		{
			name:    "copies encrypted with the aws/ebs alias ARN, no KMS client",
			in:      CopyInput{Targets: targets("eu-west-1"), KMSKeyID: awsKeyAliasARN, Permissions: Permissions{Accounts: []string{account2}}},
			noKMS:   true,
			wantErr: ErrShareDefaultKey,
		},
		{
			name:   "source with a customer key, no KMS client: the snapshot's key counts as customer-managed",
			srcKey: keyARN,
			in:     CopyInput{IncludeSource: true, Targets: targets("eu-west-1"), KMSKeyID: "alias/team", Permissions: Permissions{Accounts: []string{account2}}},
			noKMS:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCloud(srcRegion, "eu-west-1")
			var mods []func(*types.Image)
			if tc.srcKey != "" {
				mods = append(mods, encryptedWith(tc.srcKey))
			}
			c.addImage(srcRegion, srcID, "app-1", fixedNow.Add(-48*3600e9), mods...)
			c.keys[keyARN], c.keys[awsKeyARN], c.keys["alias/team"] = "CUSTOMER", "AWS", "CUSTOMER"
			in := tc.in
			in.SourceImageID, in.SourceRegion = srcID, srcRegion
			_, err := Copy(context.Background(), c.clients(), &in, testOptions, func(o *Options) {
				if !tc.noKMS {
					o.KMS = c.kms()
				}
			})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				mustNoCalls(t, c, mutatingOps...)
				return
			}
			if err != nil {
				t.Fatalf("Copy: %v\ncalls: %v", err, opsOf(c.Calls()))
			}
			if len(c.Calls("ModifyImageAttribute")) == 0 {
				t.Errorf("nothing was shared: %v", opsOf(c.Calls()))
			}
		})
	}
}
