//go:build unix

package image

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestSetIMDSSupport(t *testing.T) {
	tests := []struct {
		name      string
		in        SetIMDSSupportInput
		modify    func(*ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error)
		wantCalls []string
		wantErr   []string // substrings of the error; nil means success
		wantCode  string   // AWS code the error must wrap
	}{
		{
			name:      "explicit value",
			in:        SetIMDSSupportInput{ImageID: "ami-1", Value: "v2.0", Region: "eu-west-1"},
			wantCalls: []string{"ModifyImageAttribute ami-1,ImdsSupport=v2.0"},
		},
		{
			name:      "empty value means v2.0",
			in:        SetIMDSSupportInput{ImageID: "ami-1"},
			wantCalls: []string{"ModifyImageAttribute ami-1,ImdsSupport=v2.0"},
		},
		{
			name:    "no image ID",
			in:      SetIMDSSupportInput{Region: "eu-west-1"},
			wantErr: []string{"set IMDS support in eu-west-1", "no image ID"},
		},
		{
			name: "API error is wrapped with image and region",
			in:   SetIMDSSupportInput{ImageID: "ami-1", Value: "v1.0", Region: "eu-west-1"},
			modify: func(*ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error) {
				return nil, apiErr("InvalidParameterValue")
			},
			wantCalls: []string{"ModifyImageAttribute ami-1,ImdsSupport=v1.0"},
			wantErr:   []string{"set IMDS support of ami-1 in eu-west-1 to v1.0"},
			wantCode:  "InvalidParameterValue",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{modifyImageAttr: tc.modify}
			var logs []string
			out, err := SetIMDSSupport(context.Background(), f, &tc.in, func(o *Options) {
				o.Logf = func(format string, _ ...any) { logs = append(logs, format) }
			})
			if got := f.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", got, tc.wantCalls)
			}
			if tc.wantErr == nil {
				if err != nil || out == nil {
					t.Fatalf("SetIMDSSupport = %v, %v; want success", out, err)
				}
				if len(logs) != 1 {
					t.Errorf("logged %q, want one progress message", logs)
				}
				return
			}
			if err == nil {
				t.Fatal("SetIMDSSupport succeeded, want an error")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if tc.wantCode != "" && awserr.Code(err) != tc.wantCode {
				t.Errorf("error %v does not wrap code %s", err, tc.wantCode)
			}
		})
	}
}
