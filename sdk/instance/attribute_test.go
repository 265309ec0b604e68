//go:build unix

package instance

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestDescribeSubnet(t *testing.T) {
	subnet := types.Subnet{SubnetId: aws.String("subnet-1"), VpcId: aws.String("vpc-1"), AvailabilityZone: aws.String("eu-west-1b")}
	tests := []struct {
		name      string
		in        DescribeSubnetInput
		describe  func(*ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error)
		wantCalls []string
		wantVPC   string
		wantErr   []string // substrings of the error; nil means success
		wantCode  string
	}{
		{
			name: "found",
			in:   DescribeSubnetInput{SubnetID: "subnet-1"},
			describe: func(*ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error) {
				return &ec2.DescribeSubnetsOutput{Subnets: []types.Subnet{subnet}}, nil
			},
			wantCalls: []string{"DescribeSubnets subnet-1"},
			wantVPC:   "vpc-1",
		},
		{
			name:      "empty answer is not found",
			in:        DescribeSubnetInput{SubnetID: "subnet-1"},
			wantCalls: []string{"DescribeSubnets subnet-1"},
			wantErr:   []string{"describe subnet subnet-1 in the default region"},
			wantCode:  codeSubnetNotFound,
		},
		{
			name: "API error is wrapped",
			in:   DescribeSubnetInput{SubnetID: "subnet-2"},
			describe: func(*ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error) {
				return nil, apiErr(codeSubnetNotFound)
			},
			wantCalls: []string{"DescribeSubnets subnet-2"},
			wantErr:   []string{"describe subnet subnet-2 in the default region"},
			wantCode:  codeSubnetNotFound,
		},
		{
			name:    "no subnet ID",
			wantErr: []string{"no subnet ID given"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{describeSubnets: tc.describe}
			out, err := DescribeSubnet(context.Background(), f, &tc.in)
			if got := f.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", got, tc.wantCalls)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if out.VPCID != tc.wantVPC || out.AvailabilityZone != "eu-west-1b" || aws.ToString(out.Subnet.SubnetId) != tc.in.SubnetID {
					t.Errorf("DescribeSubnet = %+v, want VPC %s", out, tc.wantVPC)
				}
				return
			}
			checkErr(t, err, tc.wantErr, tc.wantCode)
		})
	}
}

func TestSetENASupport(t *testing.T) {
	tests := []struct {
		name      string
		in        SetENASupportInput
		modify    func(*ec2.ModifyInstanceAttributeInput) (*ec2.ModifyInstanceAttributeOutput, error)
		wantCalls []string
		wantErr   []string // substrings of the error; nil means success
		wantCode  string
	}{
		{
			name:      "on",
			in:        SetENASupportInput{InstanceID: "i-1", Enabled: true},
			wantCalls: []string{"ModifyInstanceAttribute i-1,EnaSupport=true"},
		},
		{
			name:      "off",
			in:        SetENASupportInput{InstanceID: "i-1"},
			wantCalls: []string{"ModifyInstanceAttribute i-1,EnaSupport=false"},
		},
		{
			name: "API error is wrapped",
			in:   SetENASupportInput{InstanceID: "i-1", Enabled: true},
			modify: func(*ec2.ModifyInstanceAttributeInput) (*ec2.ModifyInstanceAttributeOutput, error) {
				return nil, apiErr("IncorrectInstanceState")
			},
			wantCalls: []string{"ModifyInstanceAttribute i-1,EnaSupport=true"},
			wantErr:   []string{"set ENA support of i-1 in the default region to true"},
			wantCode:  "IncorrectInstanceState",
		},
		{
			name:    "no instance ID",
			wantErr: []string{"no instance ID given"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{modifyInstanceAttr: tc.modify}
			out, err := SetENASupport(context.Background(), f, &tc.in)
			if got := f.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", got, tc.wantCalls)
			}
			if tc.wantErr == nil {
				if err != nil || out == nil {
					t.Fatalf("SetENASupport = %v, %v; want success", out, err)
				}
				return
			}
			checkErr(t, err, tc.wantErr, tc.wantCode)
		})
	}
}

// checkErr fails unless err contains every substring of want and, when
// code is set, wraps an API error with that code.
func checkErr(t *testing.T, err error, want []string, code string) {
	t.Helper()
	if err == nil {
		t.Fatal("succeeded, want an error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if code != "" && awserr.Code(err) != code {
		t.Errorf("error %v does not wrap code %s", err, code)
	}
}
