//go:build unix

package awstest

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const testPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Ec2",
      "Effect": "Allow",
      "Action": ["ec2:Describe*", "ec2:RunInstances", "ec2:CreateTags", "ec2:DeleteKeyPair"],
      "Resource": "*"
    },
    {
      "Sid": "Bundles",
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject"],
      "Resource": "arn:aws:s3:::BUCKET/builds/*"
    },
    {
      "Sid": "Key",
      "Effect": "Allow",
      "Action": "kms:*",
      "Resource": "arn:aws:kms:*:ACCOUNT_ID:key/*"
    }
  ]
}`

func parseTestPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(testPolicy), map[string]string{"BUCKET": "bkt", "ACCOUNT_ID": TestAccountID})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRequiredActions(t *testing.T) {
	key := "arn:aws:kms:eu-west-1:" + TestAccountID + ":key/k1"
	tests := []struct {
		name    string
		call    Call
		want    []Requirement
		wantErr string
	}{
		{name: "sts identity", call: Call{Service: "sts", Action: "GetCallerIdentity"}},
		{name: "ec2", call: Call{Service: "ec2", Action: "DescribeImages"},
			want: []Requirement{{"ec2:DescribeImages", "*"}}},
		{name: "ec2 tag on create", call: Call{Service: "ec2", Action: "RunInstances", Params: url.Values{"TagSpecification.1.ResourceType": {"instance"}, "TagSpecification.2.ResourceType": {"volume"}}},
			want: []Requirement{{"ec2:RunInstances", "*"}, {"ec2:CreateTags", "*"}}},
		{name: "encrypted copy", call: Call{Service: "ec2", Action: "CopyImage", Params: url.Values{"Encrypted": {"true"}, "KmsKeyId": {key}}},
			want: []Requirement{{"ec2:CopyImage", "*"}, {"kms:CreateGrant", key}, {"kms:Decrypt", key}, {"kms:DescribeKey", key},
				{"kms:GenerateDataKeyWithoutPlaintext", key}, {"kms:ReEncryptFrom", key}, {"kms:ReEncryptTo", key}}},
		{name: "encrypted copy with key alias", call: Call{Service: "ec2", Action: "CopyImage", Params: url.Values{"Encrypted": {"true"}, "KmsKeyId": {"alias/x"}}},
			wantErr: "only key ARNs"},
		{name: "describe key by ARN", call: Call{Service: "kms", Action: "DescribeKey", Region: "eu-west-1", Params: url.Values{"KeyId": {key}}},
			want: []Requirement{{"kms:DescribeKey", key}}},
		{name: "describe key by alias", call: Call{Service: "kms", Action: "DescribeKey", Region: "eu-west-1", Params: url.Values{"KeyId": {"alias/team"}}},
			want: []Requirement{{"kms:DescribeKey", "arn:aws:kms:eu-west-1:" + TestAccountID + ":key/*"}}},
		{name: "unmapped kms", call: Call{Service: "kms", Action: "Decrypt"}, wantErr: "no IAM mapping for kms:Decrypt"},
		{name: "head bucket", call: Call{Service: "s3", Action: "HeadBucket", Bucket: "b"},
			want: []Requirement{{"s3:ListBucket", "arn:aws:s3:::b"}}},
		{name: "bucket encryption", call: Call{Service: "s3", Action: "GetBucketEncryption", Bucket: "b"},
			want: []Requirement{{"s3:GetEncryptionConfiguration", "arn:aws:s3:::b"}}},
		{name: "head object", call: Call{Service: "s3", Action: "HeadObject", Bucket: "b", Key: "k/1"},
			want: []Requirement{{"s3:GetObject", "arn:aws:s3:::b/k/1"}}},
		{name: "put object with acl", call: Call{Service: "s3", Action: "PutObject", Bucket: "b", Key: "k", Header: http.Header{"X-Amz-Acl": {"aws-exec-read"}}},
			want: []Requirement{{"s3:PutObject", "arn:aws:s3:::b/k"}, {"s3:PutObjectAcl", "arn:aws:s3:::b/k"}}},
		{name: "copy object", call: Call{Service: "s3", Action: "CopyObject", Bucket: "b", Key: "k", Header: http.Header{"X-Amz-Copy-Source": {"/src/a%20b"}}},
			want: []Requirement{{"s3:PutObject", "arn:aws:s3:::b/k"}, {"s3:GetObject", "arn:aws:s3:::src/a b"}}},
		{name: "delete objects", call: Call{Service: "s3", Action: "DeleteObjects", Bucket: "b"},
			want: []Requirement{{"s3:DeleteObject", "arn:aws:s3:::b/*"}}},
		{name: "unmapped s3", call: Call{Service: "s3", Action: "PutBucketPolicy", Bucket: "b"}, wantErr: "no IAM mapping for s3:PutBucketPolicy"},
		{name: "assume role", call: Call{Service: "sts", Action: "AssumeRole", Params: url.Values{"RoleArn": {"arn:aws:iam::222222222222:role/p"}}},
			want: []Requirement{{"sts:AssumeRole", "arn:aws:iam::222222222222:role/p"}}},
		{name: "unmapped sts", call: Call{Service: "sts", Action: "GetSessionToken"}, wantErr: "no IAM mapping for sts:GetSessionToken"},
		{name: "start session", call: Call{Service: "ssm", Action: "StartSession", Region: "eu-west-1", Params: url.Values{"Target": {"i-1"}, "DocumentName": {"AWS-StartPortForwardingSession"}}},
			want: []Requirement{{"ssm:StartSession", "arn:aws:ec2:eu-west-1:" + TestAccountID + ":instance/i-1"}, {"ssm:StartSession", "arn:aws:ssm:eu-west-1::document/AWS-StartPortForwardingSession"}}},
		{name: "start shell session", call: Call{Service: "ssm", Action: "StartSession", Region: "eu-west-1", Params: url.Values{"Target": {"i-1"}}},
			want: []Requirement{{"ssm:StartSession", "arn:aws:ec2:eu-west-1:" + TestAccountID + ":instance/i-1"}, {"ssm:StartSession", "arn:aws:ssm:eu-west-1::document/SSM-SessionManagerRunShell"}}},
		{name: "terminate session", call: Call{Service: "ssm", Action: "TerminateSession", Region: "eu-west-1", Params: url.Values{"SessionId": {"me-0123"}}},
			want: []Requirement{{"ssm:TerminateSession", "arn:aws:ssm:eu-west-1:" + TestAccountID + ":session/me-0123"}}},
		{name: "get parameter", call: Call{Service: "ssm", Action: "GetParameter", Region: "eu-west-1", Params: url.Values{"Name": {"/golden/web"}}},
			want: []Requirement{{"ssm:GetParameter", "arn:aws:ssm:eu-west-1:" + TestAccountID + ":parameter/golden/web"}}},
		{name: "put parameter with tags in another account", call: Call{Service: "ssm", Action: "PutParameter", Region: "eu-west-1", Account: "222222222222",
			Params: url.Values{"Name": {"golden"}}, JSON: []byte(`{"Name":"golden","Tags":[{"Key":"a","Value":"b"}]}`)},
			want: []Requirement{{"ssm:PutParameter", "arn:aws:ssm:eu-west-1:222222222222:parameter/golden"}, {"ssm:AddTagsToResource", "arn:aws:ssm:eu-west-1:222222222222:parameter/golden"}}},
		{name: "unmapped ssm", call: Call{Service: "ssm", Action: "GetParameters"}, wantErr: "no IAM mapping for ssm:GetParameters"},
		{name: "iam create role with tags and path", call: Call{Service: "iam", Action: "CreateRole", Params: url.Values{"RoleName": {"r"}, "Path": {"/b/"}, "Tags.member.1.Key": {"k"}}},
			want: []Requirement{{"iam:CreateRole", "arn:aws:iam::" + TestAccountID + ":role/b/r"}, {"iam:TagRole", "arn:aws:iam::" + TestAccountID + ":role/b/r"}}},
		{name: "iam delete role policy", call: Call{Service: "iam", Action: "DeleteRolePolicy", Params: url.Values{"RoleName": {"r"}, "PolicyName": {"p"}}},
			want: []Requirement{{"iam:DeleteRolePolicy", "arn:aws:iam::" + TestAccountID + ":role/r"}}},
		{name: "iam create profile with tags", call: Call{Service: "iam", Action: "CreateInstanceProfile", Params: url.Values{"InstanceProfileName": {"p"}, "Path": {"/"}, "Tags.member.1.Key": {"k"}}},
			want: []Requirement{{"iam:CreateInstanceProfile", "arn:aws:iam::" + TestAccountID + ":instance-profile/p"}, {"iam:TagInstanceProfile", "arn:aws:iam::" + TestAccountID + ":instance-profile/p"}}},
		{name: "iam add role passes it", call: Call{Service: "iam", Action: "AddRoleToInstanceProfile", Params: url.Values{"InstanceProfileName": {"p"}, "RoleName": {"r"}}},
			want: []Requirement{{"iam:AddRoleToInstanceProfile", "arn:aws:iam::" + TestAccountID + ":instance-profile/p"}, {"iam:PassRole", "arn:aws:iam::" + TestAccountID + ":role/r"}}},
		{name: "unmapped iam", call: Call{Service: "iam", Action: "CreateUser"}, wantErr: "no IAM mapping for iam:CreateUser"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RequiredActions(tt.call)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyAllows(t *testing.T) {
	p := parseTestPolicy(t)
	tests := []struct {
		req  Requirement
		want bool
	}{
		{Requirement{"ec2:DescribeImages", "*"}, true},
		{Requirement{"EC2:describeinstances", "*"}, true},
		{Requirement{"ec2:TerminateInstances", "*"}, false},
		{Requirement{"s3:PutObject", "arn:aws:s3:::bkt/builds/x/image.part.0"}, true},
		{Requirement{"s3:PutObject", "arn:aws:s3:::bkt/other/x"}, false},
		{Requirement{"s3:PutObject", "arn:aws:s3:::bkt2/builds/x"}, false},
		{Requirement{"s3:DeleteObject", "arn:aws:s3:::bkt/builds/x"}, false},
		{Requirement{"kms:Decrypt", "arn:aws:kms:eu-west-1:" + TestAccountID + ":key/k"}, true},
		{Requirement{"kms:Decrypt", "arn:aws:kms:eu-west-1:999999999999:key/k"}, false},
	}
	for _, tt := range tests {
		if got := p.Allows(tt.req); got != tt.want {
			t.Errorf("Allows(%s) = %v, want %v", tt.req, got, tt.want)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	p := parseTestPolicy(t)
	key := "arn:aws:kms:eu-west-1:" + TestAccountID + ":key/k1"
	all := []Call{
		{Service: "sts", Action: "GetCallerIdentity"},
		{Service: "ec2", Region: "eu-west-1", Action: "DescribeImages"},
		{Service: "ec2", Region: "eu-west-1", Action: "RunInstances", Params: url.Values{"TagSpecification.1.ResourceType": {"instance"}}},
		{Service: "ec2", Region: "eu-west-1", Action: "CopyImage", Params: url.Values{"Encrypted": {"true"}, "KmsKeyId": {key}}},
		{Service: "s3", Region: "eu-west-1", Action: "PutObject", Bucket: "bkt", Key: "builds/a"},
		{Service: "s3", Region: "eu-west-1", Action: "GetObject", Bucket: "bkt", Key: "builds/a"},
	}
	optional := map[string]string{"ec2:DeleteKeyPair": "temporary key pair"}
	tests := []struct {
		name     string
		calls    []Call
		optional map[string]string
		want     []string
	}{
		{name: "exact", calls: all, optional: optional,
			want: []string{"eu-west-1 ec2:CopyImage needs ec2:CopyImage on *, which the policy does not allow"}},
		{name: "exact without copy", calls: slices.Delete(slices.Clone(all), 3, 4), optional: optional,
			want: []string{"policy statement Key allows kms:*, which no call needed and which is not a known optional action"}},
		{name: "denied call", calls: append(slices.Clone(all[:3]), Call{Service: "s3", Region: "us-east-1", Action: "PutObject", Bucket: "bkt", Key: "x"}), optional: map[string]string{
			"ec2:DeleteKeyPair": "temporary key pair", "kms:*": "encrypted copies", "s3:GetObject": "downloads"},
			want: []string{
				"us-east-1 s3:PutObject needs s3:PutObject on arn:aws:s3:::bkt/x, which the policy does not allow",
				"policy statement Bundles allows s3:PutObject, which no call needed and which is not a known optional action",
			}},
		{name: "unused action", calls: all[1:2], optional: map[string]string{"kms:*": "encrypted copies", "ec2:DeleteKeyPair": ""},
			want: []string{
				"policy statement Ec2 allows ec2:RunInstances, which no call needed and which is not a known optional action",
				"policy statement Ec2 allows ec2:CreateTags, which no call needed and which is not a known optional action",
				"policy statement Ec2 allows ec2:DeleteKeyPair, which no call needed and which is not a known optional action",
				"policy statement Bundles allows s3:GetObject, which no call needed and which is not a known optional action",
				"policy statement Bundles allows s3:PutObject, which no call needed and which is not a known optional action",
			}},
		{name: "unknown optional", calls: slices.Delete(slices.Clone(all), 3, 4), optional: map[string]string{
			"ec2:DeleteKeyPair": "temporary key pair", "kms:*": "encrypted copies", "ec2:CreateKeyPair": "temporary key pair", "ec2:AllocateAddress": "x"},
			want: []string{"optional action ec2:AllocateAddress is not in the policy", "optional action ec2:CreateKeyPair is not in the policy"}},
		{name: "unmapped call", calls: append(slices.Clone(all[1:3]), Call{Service: "sts", Action: "GetSessionToken"}), optional: map[string]string{
			"ec2:DeleteKeyPair": "temporary key pair", "kms:*": "encrypted copies", "s3:GetObject": "downloads", "s3:PutObject": "uploads"},
			want: []string{"no IAM mapping for sts:GetSessionToken"}},
		{name: "no calls", want: []string{"no AWS call was recorded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Check(tt.calls, tt.optional)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"not json", `{`, "parse IAM policy"},
		{"deny", `{"Statement":[{"Sid":"D","Effect":"Deny","Action":"s3:*","Resource":"*"}]}`, `statement D: effect "Deny", want Allow`},
		{"bad action", `{"Statement":[{"Effect":"Allow","Action":1,"Resource":"*"}]}`, "statement #1: Action"},
		{"bad resource", `{"Statement":[{"Sid":"R","Effect":"Allow","Action":"s3:*","Resource":[1]}]}`, "statement R: Resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.doc), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(path, map[string]string{"BUCKET": "bkt", "ACCOUNT_ID": TestAccountID})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Statements) != 3 || p.Statements[2].Resources[0] != "arn:aws:kms:*:"+TestAccountID+":key/*" || p.Statements[2].Actions[0] != "kms:*" {
		t.Errorf("statements = %+v", p.Statements)
	}
	if _, err := LoadPolicy(filepath.Join(t.TempDir(), "missing.json"), nil); err == nil {
		t.Error("LoadPolicy of a missing file: no error")
	}
}
