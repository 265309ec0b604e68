//go:build unix

package instance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// notReady is EC2's answer for an instance profile it does not know yet.
var notReady = &smithy.GenericAPIError{Code: "InvalidParameterValue",
	Message: "Value (packer-1) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"}

func TestRunRetriesWhileProfileNotReady(t *testing.T) {
	otherInvalid := &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "Value (x) for parameter instanceType is invalid"}
	tests := []struct {
		name    string
		wait    time.Duration
		refuse  int   // RunInstances answers refusal this many times
		refusal error // default notReady
		wantRun int
		wantErr string
	}{
		{name: "accepted on the third attempt", wait: time.Minute, refuse: 2, wantRun: 3},
		{name: "no retry without IAMProfileWait", refuse: 1, wantRun: 1, wantErr: "Invalid IAM Instance Profile"},
		{name: "other invalid parameters are not retried", wait: time.Minute, refuse: 1, refusal: otherInvalid, wantRun: 1, wantErr: "instanceType"},
		{name: "bounded by IAMProfileWait", wait: 5 * time.Millisecond, refuse: 100, wantRun: 1, wantErr: "still refused the instance profile after 5ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refusal := tc.refusal
			if refusal == nil {
				refusal = notReady
			}
			var tokens, profiles []string
			f := &fakeEC2{
				runInstances: func(in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
					tokens = append(tokens, aws.ToString(in.ClientToken))
					profiles = append(profiles, aws.ToString(in.IamInstanceProfile.Name))
					if len(tokens) <= tc.refuse {
						return nil, refusal
					}
					return &ec2.RunInstancesOutput{Instances: []types.Instance{inst("i-1", "pending", "")}}, nil
				},
				describeInstances: func(in *ec2.DescribeInstancesInput) (*ec2.DescribeInstancesOutput, error) {
					if len(in.InstanceIds) == 0 { // looking for lost launches
						return &ec2.DescribeInstancesOutput{}, nil
					}
					return states(inst("i-1", "running", ""))()
				},
			}
			retry := func(o *Options) { o.RetryDelay, o.RetryMaxDelay = 10*time.Millisecond, 10*time.Millisecond }
			out, err := Run(context.Background(), f, &RunInput{ImageID: "ami-1", InstanceType: "t3.micro", IAMInstanceProfile: "packer-1",
				IAMProfileWait: tc.wait, Wait: quickWait}, retry)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if aws.ToString(out.Instance.InstanceId) != "i-1" {
					t.Errorf("instance = %s", aws.ToString(out.Instance.InstanceId))
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run error = %v, want it to contain %q", err, tc.wantErr)
			}
			if len(tokens) != tc.wantRun {
				t.Errorf("RunInstances calls = %d, want %d", len(tokens), tc.wantRun)
			}
			// Every attempt is the same request: same token, same profile.
			if len(slices.Compact(slices.Clone(tokens))) != 1 || len(slices.Compact(slices.Clone(profiles))) != 1 {
				t.Errorf("attempts used tokens %q and profiles %q, want one of each", tokens, profiles)
			}
		})
	}
}

func TestProfileNotReady(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{notReady, true},
		{&smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "Invalid IAM Instance Profile ARN: arn:aws:iam::1:instance-profile/x"}, true},
		{&smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "Value () for parameter groupId is invalid"}, false},
		{&smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "not authorized to perform iam:PassRole on iamInstanceProfile"}, false},
		{errors.New("Invalid IAM Instance Profile name"), false},
	} {
		if got := ProfileNotReady(tc.err); got != tc.want {
			t.Errorf("ProfileNotReady(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
