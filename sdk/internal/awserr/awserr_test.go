package awserr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// answered is an error as the AWS SDK returns it for an answer with status
// and code.
func answered(status int, code string) error {
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: status}}
	return fmt.Errorf("operation error EC2: X: %w", &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: resp, Err: &smithy.GenericAPIError{Code: code}},
		RequestID:     "req-1",
	})
}

func TestCodeAndStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		code    string
		status  int
		refusal bool
	}{
		{"client error", answered(400, "InvalidAMIID.NotFound"), "InvalidAMIID.NotFound", 400, true},
		{"server error", answered(503, "Unavailable"), "Unavailable", 503, false},
		{"no answer", fmt.Errorf("send: %w", context.DeadlineExceeded), "", 0, false},
		{"nil", nil, "", 0, false},
		{"plain", errors.New("x"), "", 0, false},
	} {
		if got := Code(tc.err); got != tc.code {
			t.Errorf("%s: Code = %q, want %q", tc.name, got, tc.code)
		}
		if got := HTTPStatus(tc.err); got != tc.status {
			t.Errorf("%s: HTTPStatus = %d, want %d", tc.name, got, tc.status)
		}
		if got := IsRefusal(tc.err); got != tc.refusal {
			t.Errorf("%s: IsRefusal = %v, want %v", tc.name, got, tc.refusal)
		}
	}
}

func TestRegion(t *testing.T) {
	c := ec2.New(ec2.Options{Region: "eu-west-3"})
	for _, tc := range []struct {
		api    any
		region string
		want   string
	}{
		{c, "", "eu-west-3"},
		{c, "ap-south-1", "ap-south-1"},
		{struct{}{}, "", "the default region"},
		{ec2.New(ec2.Options{}), "", "the default region"},
	} {
		if got := Region(tc.api, tc.region); got != tc.want {
			t.Errorf("Region(%T, %q) = %q, want %q", tc.api, tc.region, got, tc.want)
		}
	}
}
