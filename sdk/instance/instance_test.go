//go:build unix

package instance

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

const fakeKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n"

func TestCreateKeyPair(t *testing.T) {
	tests := []struct {
		name      string
		in        CreateKeyPairInput
		err       error
		wantType  types.KeyType
		wantCalls int
		wantErr   string
	}{
		{name: "defaults", in: CreateKeyPairInput{Tags: map[string]string{"b": "2", "a": "1"}}, wantType: "ed25519", wantCalls: 1},
		{name: "rsa", in: CreateKeyPairInput{Name: "k", KeyType: "rsa"}, wantType: "rsa", wantCalls: 1},
		{name: "unknown type", in: CreateKeyPairInput{Name: "k", KeyType: "dsa"}, wantErr: `key type "dsa" is unknown; want "ed25519" or "rsa"`},
		{name: "refused", in: CreateKeyPairInput{Name: "k"}, err: apiErr("InvalidKeyPair.Duplicate"), wantCalls: 2, wantErr: `create key pair "k" in the default region: `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sent *ec2.CreateKeyPairInput
			f := &fakeEC2{createKeyPair: func(in *ec2.CreateKeyPairInput) (*ec2.CreateKeyPairOutput, error) {
				sent = in
				if tc.err != nil {
					return nil, tc.err
				}
				return &ec2.CreateKeyPairOutput{KeyName: in.KeyName, KeyPairId: aws.String("key-1"), KeyMaterial: aws.String(fakeKey)}, nil
			}}
			var l ledger.Ledger
			var logs []string
			out, err := CreateKeyPair(context.Background(), f, &tc.in, func(o *Options) {
				o.Ledger = &l
				o.Logf = func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
			})
			if len(f.Calls()) != tc.wantCalls {
				t.Errorf("calls = %q, want %d", f.Calls(), tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				if l.Len() != 0 {
					t.Errorf("ledger = %v after a failure", l.Resources())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sent.KeyType != tc.wantType || sent.KeyFormat != types.KeyFormatPem {
				t.Errorf("key type/format = %s/%s, want %s/pem", sent.KeyType, sent.KeyFormat, tc.wantType)
			}
			if tc.in.Name == "" && !regexp.MustCompile(`^ami-build-[0-9a-f]{16}$`).MatchString(out.Name) {
				t.Errorf("generated name %q", out.Name)
			}
			if out.Name != aws.ToString(sent.KeyName) || out.KeyPairID != "key-1" || string(out.PrivateKeyPEM) != fakeKey {
				t.Errorf("output = %v", out)
			}
			if len(tc.in.Tags) > 0 {
				ts := sent.TagSpecifications
				if len(ts) != 1 || ts[0].ResourceType != types.ResourceTypeKeyPair || aws.ToString(ts[0].Tags[0].Key) != "a" {
					t.Errorf("tag specifications = %+v, want key-pair tags sorted by key", ts)
				}
			}
			for _, s := range append(logs, fmt.Sprintf("%v", out), fmt.Sprintf("%+v", *out), fmt.Sprintf("%#v", out)) {
				if strings.Contains(s, "c2VjcmV0") {
					t.Errorf("private key leaked in %q", s)
				}
			}
			want := []ledger.Resource{{Kind: ledger.KindKeyPair, ID: out.Name, Region: "the default region"}}
			if !slices.Equal(l.Resources(), want) {
				t.Errorf("ledger = %v, want %v", l.Resources(), want)
			}
			if err := l.Undo(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := f.Calls()[len(f.Calls())-1]; got != "DeleteKeyPair "+out.Name {
				t.Errorf("undo call = %q", got)
			}
		})
	}
}

// lostKeyPairs simulates AWS key pairs whose create may take effect while
// the caller sees an error: lose[i] is the error the i-th CreateKeyPair
// returns after it created the key pair (nil: a normal answer).
type lostKeyPairs struct {
	mu   sync.Mutex
	keys map[string][]types.Tag
	lose []error
	n    int
}

func (s *lostKeyPairs) wire(f *fakeEC2) {
	f.createKeyPair = func(in *ec2.CreateKeyPairInput) (*ec2.CreateKeyPairOutput, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		name := aws.ToString(in.KeyName)
		if _, ok := s.keys[name]; ok {
			return nil, apiErr("InvalidKeyPair.Duplicate")
		}
		s.keys[name] = in.TagSpecifications[0].Tags
		i := s.n
		s.n++
		if i < len(s.lose) && s.lose[i] != nil {
			return nil, s.lose[i]
		}
		return &ec2.CreateKeyPairOutput{KeyName: in.KeyName, KeyPairId: aws.String("key-1"), KeyMaterial: aws.String(fakeKey)}, nil
	}
	f.describeKeyPairs = func(in *ec2.DescribeKeyPairsInput) (*ec2.DescribeKeyPairsOutput, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := &ec2.DescribeKeyPairsOutput{}
		for _, n := range in.KeyNames {
			tags, ok := s.keys[n]
			if !ok {
				return nil, apiErr("InvalidKeyPair.NotFound")
			}
			out.KeyPairs = append(out.KeyPairs, types.KeyPairInfo{KeyName: aws.String(n), Tags: tags})
		}
		return out, nil
	}
	f.deleteKeyPair = func(in *ec2.DeleteKeyPairInput) (*ec2.DeleteKeyPairOutput, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.keys, aws.ToString(in.KeyName))
		return &ec2.DeleteKeyPairOutput{}, nil
	}
}

// TestCreateKeyPairLostResponse: a create that took effect although the
// caller saw an error leaves no key pair behind, and one that existed
// before is never touched.
func TestCreateKeyPairLostResponse(t *testing.T) {
	dup := apiErr("InvalidKeyPair.Duplicate")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		existing  []types.Tag // a key pair "k" before the call
		lose      []error
		wantCalls []string
		wantErr   string
		wantKeys  int
	}{
		{
			name:      "retry after a lost answer gets Duplicate: deleted and created again",
			lose:      []error{dup},
			wantCalls: []string{"CreateKeyPair k,ed25519", "DescribeKeyPairs k", "DeleteKeyPair k", "CreateKeyPair k,ed25519"},
			wantKeys:  1,
		},
		{
			name:      "lost twice: deleted, build fails",
			lose:      []error{dup, dup},
			wantCalls: []string{"CreateKeyPair k,ed25519", "DescribeKeyPairs k", "DeleteKeyPair k", "CreateKeyPair k,ed25519", "DescribeKeyPairs k", "DeleteKeyPair k"},
			wantErr:   "the key pair it made anyway was deleted",
		},
		{
			name:      "every attempt failed with 500 after taking effect: deleted",
			lose:      []error{&smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}},
			wantCalls: []string{"CreateKeyPair k,ed25519", "DescribeKeyPairs k", "DeleteKeyPair k"},
			wantErr:   "InternalError",
		},
		{
			name:      "cancelled while in flight: deleted with a fresh context",
			ctx:       cancelled,
			lose:      []error{context.Canceled},
			wantCalls: []string{"CreateKeyPair k,ed25519", "DescribeKeyPairs k", "DeleteKeyPair k"},
			wantErr:   "context canceled",
		},
		{
			name:      "someone else's key pair with the name is not touched",
			existing:  []types.Tag{{Key: aws.String("owner"), Value: aws.String("alice")}},
			wantCalls: []string{"CreateKeyPair k,ed25519", "DescribeKeyPairs k"},
			wantErr:   "InvalidKeyPair.Duplicate",
			wantKeys:  1,
		},
		{
			name:      "refused before taking effect: nothing to delete",
			lose:      nil,
			wantCalls: []string{"CreateKeyPair k,ed25519", "DescribeKeyPairs k"},
			wantErr:   "UnauthorizedOperation",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &lostKeyPairs{keys: map[string][]types.Tag{}, lose: tc.lose}
			if tc.existing != nil {
				s.keys["k"] = tc.existing
			}
			f := &fakeEC2{}
			s.wire(f)
			if tc.name == "refused before taking effect: nothing to delete" {
				f.createKeyPair = func(*ec2.CreateKeyPairInput) (*ec2.CreateKeyPairOutput, error) {
					return nil, apiErr("UnauthorizedOperation")
				}
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var l ledger.Ledger
			out, err := CreateKeyPair(ctx, f, &CreateKeyPairInput{Name: "k"}, func(o *Options) { o.Ledger = &l })
			if !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.Calls(), tc.wantCalls)
			}
			if len(s.keys) != tc.wantKeys {
				t.Errorf("%d key pairs left, want %d", len(s.keys), tc.wantKeys)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				if l.Len() != 0 {
					t.Errorf("ledger = %v after a failure", l.Resources())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out.PrivateKeyPEM) != fakeKey || l.Len() != 1 {
				t.Errorf("output %v, ledger %v", out, l.Resources())
			}
		})
	}
}

func TestDeleteKeyPair(t *testing.T) {
	tests := []struct {
		err     error
		wantErr bool
	}{
		{nil, false},
		{apiErr("InvalidKeyPair.NotFound"), false},
		{apiErr("UnauthorizedOperation"), true},
	}
	for _, tc := range tests {
		f := &fakeEC2{deleteKeyPair: errorsInOrder[ec2.DeleteKeyPairInput, ec2.DeleteKeyPairOutput](tc.err)}
		err := deleteKeyPair(context.Background(), f, "k")
		if (err != nil) != tc.wantErr {
			t.Errorf("DeleteKeyPair with %v = %v", tc.err, err)
		}
		if err != nil && awserr.Code(err) != "UnauthorizedOperation" {
			t.Errorf("error %v lost its API code", err)
		}
	}
}

func TestCreateSecurityGroup(t *testing.T) {
	tests := []struct {
		name       string
		in         CreateSecurityGroupInput
		authErr    error
		deleteErr  error
		wantCalls  []string
		wantLedger int
		wantErr    string
	}{
		{
			name:       "defaults",
			in:         CreateSecurityGroupInput{Name: "sg", Port: 22},
			wantCalls:  []string{"CreateSecurityGroup sg", "AuthorizeSecurityGroupIngress sg-1,tcp/22-22,0.0.0.0/0"},
			wantLedger: 1,
		},
		{
			name:       "vpc and mixed cidrs",
			in:         CreateSecurityGroupInput{Name: "sg", VPCID: "vpc-1", Port: 5986, SourceCIDRs: []string{"203.0.113.7/24", "2001:db8::1/64"}, Tags: map[string]string{"k": "v"}},
			wantCalls:  []string{"CreateSecurityGroup sg,vpc-1", "AuthorizeSecurityGroupIngress sg-1,tcp/5986-5986,203.0.113.0/24,2001:db8::/64"},
			wantLedger: 1,
		},
		{
			name:       "rule already there",
			in:         CreateSecurityGroupInput{Name: "sg", Port: 22},
			authErr:    apiErr("InvalidPermission.Duplicate"),
			wantCalls:  []string{"CreateSecurityGroup sg", "AuthorizeSecurityGroupIngress sg-1,tcp/22-22,0.0.0.0/0"},
			wantLedger: 1,
		},
		{
			name:      "rule refused, group removed",
			in:        CreateSecurityGroupInput{Name: "sg", Port: 22},
			authErr:   apiErr("InvalidParameterValue"),
			wantCalls: []string{"CreateSecurityGroup sg", "AuthorizeSecurityGroupIngress sg-1,tcp/22-22,0.0.0.0/0", "DeleteSecurityGroup sg-1"},
			wantErr:   "allow tcp/22 into security group sg-1",
		},
		{
			name:       "rule refused, removal fails too",
			in:         CreateSecurityGroupInput{Name: "sg", Port: 22},
			authErr:    apiErr("InvalidParameterValue"),
			deleteErr:  apiErr("UnauthorizedOperation"),
			wantCalls:  []string{"CreateSecurityGroup sg", "AuthorizeSecurityGroupIngress sg-1,tcp/22-22,0.0.0.0/0", "DeleteSecurityGroup sg-1"},
			wantLedger: 1,
			wantErr:    "UnauthorizedOperation",
		},
		{name: "bad port", in: CreateSecurityGroupInput{Name: "sg"}, wantErr: "port 0 is out of range; want 1 to 65535"},
		{
			name:       "no ingress",
			in:         CreateSecurityGroupInput{Name: "sg", VPCID: "vpc-1", NoIngress: true},
			wantCalls:  []string{"CreateSecurityGroup sg,vpc-1"},
			wantLedger: 1,
		},
		{name: "no ingress with a port", in: CreateSecurityGroupInput{Name: "sg", NoIngress: true, Port: 22}, wantErr: "no ingress rule, but port 22 or source CIDRs are given"},
		{name: "bad cidr", in: CreateSecurityGroupInput{Name: "sg", Port: 22, SourceCIDRs: []string{"10.0.0.1"}}, wantErr: `source CIDR "10.0.0.1" is not a CIDR block`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sent *ec2.CreateSecurityGroupInput
			f := &fakeEC2{
				createSG: func(in *ec2.CreateSecurityGroupInput) (*ec2.CreateSecurityGroupOutput, error) {
					sent = in
					return &ec2.CreateSecurityGroupOutput{GroupId: aws.String("sg-1")}, nil
				},
				authorize: errorsInOrder[ec2.AuthorizeSecurityGroupIngressInput, ec2.AuthorizeSecurityGroupIngressOutput](tc.authErr),
				deleteSG:  errorsInOrder[ec2.DeleteSecurityGroupInput, ec2.DeleteSecurityGroupOutput](tc.deleteErr),
			}
			var l ledger.Ledger
			out, err := CreateSecurityGroup(context.Background(), f, &tc.in, fast, func(o *Options) { o.Ledger = &l })
			if !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.Calls(), tc.wantCalls)
			}
			if l.Len() != tc.wantLedger {
				t.Errorf("ledger = %v, want %d entries", l.Resources(), tc.wantLedger)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.GroupID != "sg-1" || aws.ToString(sent.Description) == "" {
				t.Errorf("output %+v, description %q", out, aws.ToString(sent.Description))
			}
			if len(tc.in.Tags) > 0 && (len(sent.TagSpecifications) != 1 || sent.TagSpecifications[0].ResourceType != types.ResourceTypeSecurityGroup) {
				t.Errorf("tag specifications = %+v", sent.TagSpecifications)
			}
		})
	}
}

// deleteCtxEC2 records whether DeleteSecurityGroup got a live context.
type deleteCtxEC2 struct {
	*fakeEC2
	deleteCtxErr []error
}

func (f *deleteCtxEC2) DeleteSecurityGroup(ctx context.Context, in *ec2.DeleteSecurityGroupInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	f.deleteCtxErr = append(f.deleteCtxErr, ctx.Err())
	return f.fakeEC2.DeleteSecurityGroup(ctx, in, optFns...)
}

// TestCreateSecurityGroupCancelledDuringIngress: when the caller gives up
// while the rule is being added, the new group is still deleted, with a
// context that is not cancelled with the caller's.
func TestCreateSecurityGroupCancelledDuringIngress(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &deleteCtxEC2{fakeEC2: &fakeEC2{
		createSG: func(*ec2.CreateSecurityGroupInput) (*ec2.CreateSecurityGroupOutput, error) {
			return &ec2.CreateSecurityGroupOutput{GroupId: aws.String("sg-1")}, nil
		},
		authorize: func(*ec2.AuthorizeSecurityGroupIngressInput) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
			cancel()
			return nil, context.Canceled
		},
	}}
	var l ledger.Ledger
	_, err := CreateSecurityGroup(ctx, f, &CreateSecurityGroupInput{Name: "sg", Port: 22}, fast, func(o *Options) { o.Ledger = &l })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	want := []string{"CreateSecurityGroup sg", "AuthorizeSecurityGroupIngress sg-1,tcp/22-22,0.0.0.0/0", "DeleteSecurityGroup sg-1"}
	if !slices.Equal(f.Calls(), want) {
		t.Errorf("calls = %q, want %q", f.Calls(), want)
	}
	if len(f.deleteCtxErr) != 1 || f.deleteCtxErr[0] != nil {
		t.Errorf("DeleteSecurityGroup context errors = %v, want one live context", f.deleteCtxErr)
	}
	if l.Len() != 0 {
		t.Errorf("ledger = %v, want the deleted group forgotten", l.Resources())
	}
}

// TestCreateSecurityGroupLostResponse: a group made by a create whose
// answer was lost is used (or deleted when the caller gave up); a group of
// the same name without the call's token is never touched.
func TestCreateSecurityGroupLostResponse(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		ours      bool // the group found carries the call's token
		wantCalls []string
		wantErr   string
	}{
		{
			name:      "Duplicate after a lost answer: the group is used",
			ours:      true,
			wantCalls: []string{"CreateSecurityGroup sg,vpc-1", "DescribeSecurityGroups group-name=sg,vpc-id=vpc-1", "AuthorizeSecurityGroupIngress sg-9,tcp/22-22,0.0.0.0/0"},
		},
		{
			name:      "cancelled while in flight: the group is deleted",
			ctx:       cancelled,
			ours:      true,
			wantCalls: []string{"CreateSecurityGroup sg,vpc-1", "DescribeSecurityGroups group-name=sg,vpc-id=vpc-1", "DeleteSecurityGroup sg-9"},
			wantErr:   "the security group sg-9 it made anyway was deleted",
		},
		{
			name:      "someone else's group is not touched",
			wantCalls: []string{"CreateSecurityGroup sg,vpc-1", "DescribeSecurityGroups group-name=sg,vpc-id=vpc-1"},
			wantErr:   "InvalidGroup.Duplicate",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var token string
			f := &fakeEC2{
				createSG: func(in *ec2.CreateSecurityGroupInput) (*ec2.CreateSecurityGroupOutput, error) {
					for _, tg := range in.TagSpecifications[0].Tags {
						if aws.ToString(tg.Key) == CreateTokenTag {
							token = aws.ToString(tg.Value)
						}
					}
					return nil, apiErr("InvalidGroup.Duplicate")
				},
				describeSGs: func(*ec2.DescribeSecurityGroupsInput) (*ec2.DescribeSecurityGroupsOutput, error) {
					tag := types.Tag{Key: aws.String(CreateTokenTag), Value: aws.String("another")}
					if tc.ours {
						tag.Value = aws.String(token)
					}
					return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: []types.SecurityGroup{
						{GroupId: aws.String("sg-9"), GroupName: aws.String("sg"), Tags: []types.Tag{tag}},
					}}, nil
				},
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var l ledger.Ledger
			out, err := CreateSecurityGroup(ctx, f, &CreateSecurityGroupInput{Name: "sg", VPCID: "vpc-1", Port: 22}, fast, func(o *Options) { o.Ledger = &l })
			if !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.Calls(), tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				if l.Len() != 0 {
					t.Errorf("ledger = %v after a failure", l.Resources())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []ledger.Resource{{Kind: ledger.KindSecurityGroup, ID: "sg-9", Region: "the default region"}}
			if out.GroupID != "sg-9" || !slices.Equal(l.Resources(), want) {
				t.Errorf("output %+v, ledger %v", out, l.Resources())
			}
		})
	}
}

func TestDeleteSecurityGroup(t *testing.T) {
	dep := apiErr("DependencyViolation")
	tests := []struct {
		name      string
		errs      []error
		maxWait   time.Duration
		wantCalls int
		wantErr   string
	}{
		{name: "at once", wantCalls: 1},
		{name: "in use, then free", errs: []error{dep, dep}, maxWait: time.Second, wantCalls: 3},
		{name: "already gone", errs: []error{apiErr("InvalidGroup.NotFound")}, wantCalls: 1},
		{name: "still in use", errs: slices.Repeat([]error{dep}, 1000), maxWait: 30 * time.Millisecond, wantErr: "delete security group sg-1 in the default region: still in use after 30ms"},
		{name: "other error", errs: []error{apiErr("UnauthorizedOperation")}, wantCalls: 1, wantErr: "UnauthorizedOperation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{deleteSG: errorsInOrder[ec2.DeleteSecurityGroupInput, ec2.DeleteSecurityGroupOutput](tc.errs...)}
			err := deleteSecurityGroup(context.Background(), f, "sg-1", tc.maxWait, fast)
			if tc.wantCalls > 0 && len(f.Calls()) != tc.wantCalls {
				t.Errorf("calls = %q, want %d", f.Calls(), tc.wantCalls)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRun(t *testing.T) {
	tr := true
	tests := []struct {
		name       string
		in         RunInput
		runErr     error
		describe   []describeResult
		wantCalls  []string
		wantLedger int
		wantState  string // in a *StateError
		wantErr    string
		check      func(t *testing.T, req *ec2.RunInstancesInput, out *RunOutput)
	}{
		{
			name: "full request",
			in: RunInput{
				ImageID: "ami-1", InstanceType: "t3.micro", SubnetID: "subnet-1", KeyName: "k",
				IAMInstanceProfile: "arn:aws:iam::123456789012:instance-profile/p", UserData: "#!/bin/sh\necho hi\n",
				AvailabilityZone: "us-east-1a", SecurityGroupIDs: []string{"sg-1"},
				MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired},
				Tags:            map[string]string{"Name": "builder"}, VolumeTags: map[string]string{"v": "1"},
				Wait: quickWait,
			},
			describe:   []describeResult{fails(apiErr("InvalidInstanceID.NotFound")), states(inst("i-1", "pending", "")), states(inst("i-1", "running", ""))},
			wantCalls:  []string{"RunInstances ami-1,t3.micro", "DescribeInstances i-1", "DescribeInstances i-1", "DescribeInstances i-1"},
			wantLedger: 1,
			check: func(t *testing.T, req *ec2.RunInstancesInput, out *RunOutput) {
				if ud, _ := base64.StdEncoding.DecodeString(aws.ToString(req.UserData)); string(ud) != "#!/bin/sh\necho hi\n" {
					t.Errorf("user data = %q", aws.ToString(req.UserData))
				}
				if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(aws.ToString(req.ClientToken)) || out.ClientToken != aws.ToString(req.ClientToken) {
					t.Errorf("client token %q, returned %q", aws.ToString(req.ClientToken), out.ClientToken)
				}
				if aws.ToString(req.IamInstanceProfile.Arn) == "" || req.IamInstanceProfile.Name != nil {
					t.Errorf("instance profile = %+v, want the ARN", req.IamInstanceProfile)
				}
				if aws.ToString(req.SubnetId) != "subnet-1" || !slices.Equal(req.SecurityGroupIds, []string{"sg-1"}) || req.NetworkInterfaces != nil {
					t.Errorf("network: subnet %v groups %v interfaces %v", req.SubnetId, req.SecurityGroupIds, req.NetworkInterfaces)
				}
				if aws.ToString(req.Placement.AvailabilityZone) != "us-east-1a" || aws.ToString(req.KeyName) != "k" || req.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
					t.Errorf("placement/key/imds not passed: %+v", req)
				}
				if len(req.TagSpecifications) != 2 || req.TagSpecifications[0].ResourceType != types.ResourceTypeInstance || req.TagSpecifications[1].ResourceType != types.ResourceTypeVolume {
					t.Errorf("tag specifications = %+v", req.TagSpecifications)
				}
				if aws.ToInt32(req.MinCount) != 1 || aws.ToInt32(req.MaxCount) != 1 {
					t.Errorf("counts %v %v", req.MinCount, req.MaxCount)
				}
				if stateName(out.Instance) != "running" {
					t.Errorf("returned instance is %s", stateName(out.Instance))
				}
			},
		},
		{
			name:       "public ip and profile name, explicit token",
			in:         RunInput{ImageID: "ami-1", InstanceType: "t3.micro", SubnetID: "subnet-1", SecurityGroupIDs: []string{"sg-1"}, AssociatePublicIP: &tr, IAMInstanceProfile: "builder", ClientToken: "tok", Wait: quickWait},
			describe:   []describeResult{states(inst("i-1", "running", ""))},
			wantCalls:  []string{"RunInstances ami-1,t3.micro", "DescribeInstances i-1"},
			wantLedger: 1,
			check: func(t *testing.T, req *ec2.RunInstancesInput, out *RunOutput) {
				if len(req.NetworkInterfaces) != 1 || req.SubnetId != nil || req.SecurityGroupIds != nil {
					t.Fatalf("want one network interface carrying subnet and groups, got %+v", req)
				}
				ni := req.NetworkInterfaces[0]
				if !aws.ToBool(ni.AssociatePublicIpAddress) || aws.ToString(ni.SubnetId) != "subnet-1" || !slices.Equal(ni.Groups, []string{"sg-1"}) || aws.ToInt32(ni.DeviceIndex) != 0 {
					t.Errorf("network interface = %+v", ni)
				}
				if aws.ToString(req.IamInstanceProfile.Name) != "builder" || aws.ToString(req.ClientToken) != "tok" || out.ClientToken != "tok" {
					t.Errorf("profile %+v token %q", req.IamInstanceProfile, aws.ToString(req.ClientToken))
				}
				if req.UserData != nil || req.KeyName != nil || req.Placement != nil || req.TagSpecifications != nil {
					t.Errorf("unset fields were sent: %+v", req)
				}
			},
		},
		{
			name:       "terminated while starting",
			in:         RunInput{ImageID: "ami-1", InstanceType: "t3.micro", Wait: quickWait},
			describe:   []describeResult{states(inst("i-1", "pending", "")), states(inst("i-1", "terminated", "Server.InsufficientInstanceCapacity"))},
			wantCalls:  []string{"RunInstances ami-1,t3.micro", "DescribeInstances i-1", "DescribeInstances i-1", "DescribeInstances i-1"},
			wantLedger: 1,
			wantState:  "terminated",
			wantErr:    "instance i-1 in the default region is terminated, not running: Server.InsufficientInstanceCapacity",
		},
		{
			name:       "never running",
			in:         RunInput{ImageID: "ami-1", InstanceType: "t3.micro", Wait: quickWait},
			describe:   []describeResult{states(inst("i-1", "pending", ""))},
			wantLedger: 1,
			wantState:  "pending",
			wantErr:    "timed out waiting to become running",
		},
		{
			name:      "refused",
			in:        RunInput{ImageID: "ami-1", InstanceType: "t3.micro"},
			runErr:    apiErr("InvalidAMIID.NotFound"),
			wantCalls: []string{"RunInstances ami-1,t3.micro", "DescribeInstances"},
			wantErr:   "run t3.micro instance from ami-1 in the default region: ",
		},
		{
			name:   "every answer lost: the instances launched with the token are terminated",
			in:     RunInput{ImageID: "ami-1", InstanceType: "t3.micro", ClientToken: "tok", Wait: quickWait},
			runErr: &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer},
			describe: []describeResult{states(launchedWith(inst("i-lost", "running", ""), "tok"), launchedWith(inst("i-other", "running", ""), "other")),
				states(inst("i-lost", "terminated", ""))},
			wantCalls: []string{"RunInstances ami-1,t3.micro", "DescribeInstances", "TerminateInstances i-lost", "DescribeInstances i-lost"},
			wantErr:   "InternalError",
		},
		{name: "missing type", in: RunInput{ImageID: "ami-1"}, wantErr: "image ID and instance type are required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req *ec2.RunInstancesInput
			f := &fakeEC2{
				runInstances: func(in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
					req = in
					if tc.runErr != nil {
						return nil, tc.runErr
					}
					return &ec2.RunInstancesOutput{Instances: []types.Instance{inst("i-1", "pending", "")}}, nil
				},
			}
			if tc.describe != nil {
				f.describeInstances = sequence(tc.describe...)
			}
			var l ledger.Ledger
			out, err := Run(context.Background(), f, &tc.in, func(o *Options) { o.Ledger = &l })
			if tc.wantCalls != nil && !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.Calls(), tc.wantCalls)
			}
			if l.Len() != tc.wantLedger {
				t.Errorf("ledger = %v, want %d entries", l.Resources(), tc.wantLedger)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				var se *StateError
				if got := errors.As(err, &se); got != (tc.wantState != "") {
					t.Fatalf("errors.As(*StateError) = %v for %v", got, err)
				}
				if se != nil && (se.State != tc.wantState || se.InstanceID != "i-1" || se.Want != "running") {
					t.Errorf("state error = %+v", se)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, req, out)
		})
	}
}

// launchedWith sets an instance's client token.
func launchedWith(i types.Instance, token string) types.Instance {
	i.ClientToken = aws.String(token)
	return i
}

func TestRunLedgerUndoTerminates(t *testing.T) {
	f := &fakeEC2{
		runInstances: func(*ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
			return &ec2.RunInstancesOutput{Instances: []types.Instance{inst("i-1", "pending", "")}}, nil
		},
		describeInstances: sequence(states(inst("i-1", "running", "")), states(inst("i-1", "shutting-down", "")), states(inst("i-1", "terminated", ""))),
	}
	var l ledger.Ledger
	if _, err := Run(context.Background(), f, &RunInput{ImageID: "ami-1", InstanceType: "t3.micro", Wait: quickWait}, fast, func(o *Options) { o.Ledger = &l }); err != nil {
		t.Fatal(err)
	}
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"RunInstances ami-1,t3.micro", "DescribeInstances i-1", "TerminateInstances i-1", "DescribeInstances i-1", "DescribeInstances i-1"}
	if !slices.Equal(f.Calls(), want) {
		t.Errorf("calls = %q, want %q", f.Calls(), want)
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name      string
		stopErr   error
		describe  []describeResult
		wantCalls int
		wantState string
		timeout   bool
		wantErr   string
	}{
		{name: "stops", describe: []describeResult{states(inst("i-1", "running", "")), states(inst("i-1", "stopping", "")), states(inst("i-1", "stopped", ""))}, wantCalls: 4},
		{name: "terminated instead", describe: []describeResult{states(inst("i-1", "shutting-down", "Client.UserInitiatedShutdown"))}, wantState: "shutting-down", wantErr: "is shutting-down, not stopped: Client.UserInitiatedShutdown"},
		{name: "timeout", describe: []describeResult{states(inst("i-1", "stopping", ""))}, wantState: "stopping", timeout: true, wantErr: "stop instance i-1 in the default region: instance i-1 in the default region: timed out"},
		{name: "refused", stopErr: apiErr("UnsupportedOperation"), wantCalls: 1, wantErr: "stop instance i-1 in the default region: "},
		{name: "describe denied", describe: []describeResult{fails(apiErr("UnauthorizedOperation"))}, wantCalls: 2, wantErr: "UnauthorizedOperation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{stopInstances: errorsInOrder[ec2.StopInstancesInput, ec2.StopInstancesOutput](tc.stopErr)}
			if tc.describe != nil {
				f.describeInstances = sequence(tc.describe...)
			}
			err := stop(context.Background(), f, "i-1", quickWait)
			if tc.wantCalls > 0 && len(f.Calls()) != tc.wantCalls {
				t.Errorf("calls = %q, want %d", f.Calls(), tc.wantCalls)
			}
			if f.Calls()[0] != "StopInstances i-1" {
				t.Errorf("first call = %q", f.Calls()[0])
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			var se *StateError
			if errors.As(err, &se) != (tc.wantState != "") || (se != nil && se.State != tc.wantState) {
				t.Errorf("state error = %+v for %v", se, err)
			}
			if errors.Is(err, ErrWaitTimeout) != tc.timeout {
				t.Errorf("errors.Is(ErrWaitTimeout) = %v, want %v", !tc.timeout, tc.timeout)
			}
		})
	}
}

func TestTerminate(t *testing.T) {
	nf := apiErr("InvalidInstanceID.NotFound")
	tests := []struct {
		name      string
		ids       []string
		termErrs  []error
		describe  []describeResult
		wantCalls []string
		wantErr   string
	}{
		{name: "nothing to do", ids: nil},
		{
			name:      "terminates",
			ids:       []string{"i-1", "i-2"},
			describe:  []describeResult{states(inst("i-1", "shutting-down", ""), inst("i-2", "terminated", "")), states(inst("i-1", "terminated", ""), inst("i-2", "terminated", ""))},
			wantCalls: []string{"TerminateInstances i-1,i-2", "DescribeInstances i-1,i-2", "DescribeInstances i-1,i-2"},
		},
		{
			name:      "one already gone",
			ids:       []string{"i-1", "i-gone"},
			termErrs:  []error{nf, nil, nf},
			describe:  []describeResult{states(inst("i-1", "terminated", ""))},
			wantCalls: []string{"TerminateInstances i-1,i-gone", "TerminateInstances i-1", "TerminateInstances i-gone", "DescribeInstances i-1"},
		},
		{
			name:      "all gone",
			ids:       []string{"i-gone"},
			termErrs:  []error{nf, nf},
			wantCalls: []string{"TerminateInstances i-gone", "TerminateInstances i-gone"},
		},
		{
			name:      "disappears while waiting",
			ids:       []string{"i-1"},
			describe:  []describeResult{states(inst("i-1", "shutting-down", "")), fails(nf)},
			wantCalls: []string{"TerminateInstances i-1", "DescribeInstances i-1", "DescribeInstances i-1"},
		},
		{
			name:      "refused",
			ids:       []string{"i-1"},
			termErrs:  []error{apiErr("OperationNotPermitted")},
			wantCalls: []string{"TerminateInstances i-1"},
			wantErr:   "terminate instance i-1 in the default region: ",
		},
		{
			name:     "stuck",
			ids:      []string{"i-1"},
			describe: []describeResult{states(inst("i-1", "shutting-down", ""))},
			wantErr:  "timed out waiting to become terminated; it is shutting-down",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{terminateInstances: errorsInOrder[ec2.TerminateInstancesInput, ec2.TerminateInstancesOutput](tc.termErrs...)}
			if tc.describe != nil {
				f.describeInstances = sequence(tc.describe...)
			}
			err := terminate(context.Background(), f, tc.ids, quickWait)
			if tc.wantCalls != nil && !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.Calls(), tc.wantCalls)
			}
			if tc.ids == nil && len(f.Calls()) != 0 {
				t.Errorf("calls = %q for no instances", f.Calls())
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestTerminateNoWait: with NoWait, Terminate only asks (no describe) and
// reports the instances that exist, which Wait then waits for.
func TestTerminateNoWait(t *testing.T) {
	nf := apiErr("InvalidInstanceID.NotFound")
	f := &fakeEC2{
		terminateInstances: errorsInOrder[ec2.TerminateInstancesInput, ec2.TerminateInstancesOutput](nf, nil, nf),
		describeInstances:  sequence(states(inst("i-1", "terminated", ""))),
	}
	out, err := Terminate(context.Background(), f, &TerminateInput{InstanceIDs: []string{"i-1", "i-gone"}, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Terminating, []string{"i-1"}) {
		t.Errorf("Terminating = %q, want [i-1]", out.Terminating)
	}
	want := []string{"TerminateInstances i-1,i-gone", "TerminateInstances i-1", "TerminateInstances i-gone"}
	if !slices.Equal(f.Calls(), want) {
		t.Fatalf("calls = %q, want %q", f.Calls(), want)
	}
	if _, err := Wait(context.Background(), f, &WaitInput{InstanceIDs: out.Terminating, State: types.InstanceStateNameTerminated, Wait: quickWait}); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls()[len(f.Calls())-1]; got != "DescribeInstances i-1" {
		t.Errorf("last call = %q, want DescribeInstances i-1", got)
	}
	if _, err := Wait(context.Background(), f, &WaitInput{State: types.InstanceStateNameTerminated, Wait: quickWait}); err != nil || len(f.Calls()) != 4 {
		t.Errorf("Wait for no instances: %v, %d calls, want none", err, len(f.Calls())-4)
	}
}

// TestWaitStates: Wait waits for running, stopped or terminated without
// asking EC2 for anything, returns the instances as last described, and
// refuses any other state before calling AWS.
func TestWaitStates(t *testing.T) {
	f := &fakeEC2{describeInstances: sequence(states(inst("i-1", "stopping", "")), states(inst("i-1", "stopped", "")))}
	out, err := Wait(context.Background(), f, &WaitInput{InstanceIDs: []string{"i-1"}, State: types.InstanceStateNameStopped, Wait: quickWait})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 1 || out.Instances[0].State.Name != types.InstanceStateNameStopped {
		t.Errorf("instances = %+v, want i-1 stopped", out.Instances)
	}
	if want := []string{"DescribeInstances i-1", "DescribeInstances i-1"}; !slices.Equal(f.Calls(), want) {
		t.Errorf("calls = %q, want %q", f.Calls(), want)
	}
	g := &fakeEC2{}
	_, err = Wait(context.Background(), g, &WaitInput{InstanceIDs: []string{"i-1"}, State: types.InstanceStateNameStopping})
	if err == nil || !strings.Contains(err.Error(), `state "stopping" is not running, stopped or terminated`) || len(g.Calls()) != 0 {
		t.Errorf("Wait for stopping = %v after %d calls, want a refusal before any call", err, len(g.Calls()))
	}
}

func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pending := sequence(states(inst("i-1", "pending", "")))
	f := &fakeEC2{describeInstances: func(in *ec2.DescribeInstancesInput) (*ec2.DescribeInstancesOutput, error) {
		cancel() // the run is cancelled while the first describe is answered
		return pending(in)
	}}
	_, err := waitState(ctx, f, []string{"i-1"}, types.InstanceStateNameRunning, WaitOptions{MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxWait: time.Minute})
	var se *StateError
	if !errors.Is(err, context.Canceled) || errors.As(err, &se) {
		t.Errorf("waitState after cancel = %v, want context.Canceled and no *StateError", err)
	}
	if calls := f.Calls(); len(calls) != 1 {
		t.Errorf("calls = %q, want the one describe that saw the cancellation", calls)
	}
}
