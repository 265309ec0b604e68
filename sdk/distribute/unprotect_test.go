//go:build unix

package distribute

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// disableFake answers DisableImageDeregistrationProtection with err and
// logs the AMI IDs asked for.
type disableFake struct {
	err   error
	calls []string
}

func (f *disableFake) DisableImageDeregistrationProtection(_ context.Context, in *ec2.DisableImageDeregistrationProtectionInput, _ ...func(*ec2.Options)) (*ec2.DisableImageDeregistrationProtectionOutput, error) {
	f.calls = append(f.calls, aws.ToString(in.ImageId))
	if f.err != nil {
		return nil, f.err
	}
	return &ec2.DisableImageDeregistrationProtectionOutput{}, nil
}

func TestUnprotect(t *testing.T) {
	tests := []struct {
		name    string
		in      *UnprotectInput
		err     error
		wantErr []string // substrings; none = success
		calls   int
	}{
		{name: "turned off", in: &UnprotectInput{ImageID: "ami-1", Region: "eu-west-1"}, calls: 1},
		{name: "AMI gone: nothing to undo", in: &UnprotectInput{ImageID: "ami-1", Region: "eu-west-1"}, err: apiErr("InvalidAMIID.NotFound"), calls: 1},
		{name: "refused", in: &UnprotectInput{ImageID: "ami-1", Region: "eu-west-1"}, err: apiErr("UnauthorizedOperation"),
			wantErr: []string{"ami-1", "eu-west-1", "UnauthorizedOperation"}, calls: 1},
		{name: "no image ID", in: &UnprotectInput{}, wantErr: []string{"ImageID is required"}},
		{name: "nil input", wantErr: []string{"ImageID is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &disableFake{err: tc.err}
			_, err := Unprotect(context.Background(), f, tc.in)
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("err = %v", err)
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to mention %q", err, want)
				}
			}
			if len(f.calls) != tc.calls {
				t.Errorf("%d calls, want %d", len(f.calls), tc.calls)
			}
		})
	}
}
