// Package awserr reads what the SDK's packages need from an AWS error: its
// error code and the HTTP status of the answer that carried it.
package awserr

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Code returns the AWS error code of err (such as
// "InvalidAMIID.NotFound"), or "" when err carries none.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// HTTPStatus returns the HTTP status of the answer that produced err, or 0
// when err came without an answer (a connection failure, a cancelled
// context).
func HTTPStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// IsRefusal reports whether err is a definite answer that refused the
// request (HTTP 4xx), so that the request changed nothing. Errors without
// an answer and server errors (5xx, which EC2 may send after doing the
// work) are not.
func IsRefusal(err error) bool {
	s := HTTPStatus(err)
	return s >= 400 && s < 500
}

// Region returns region, or else the region of an EC2 client (any value
// with Options() ec2.Options), or else "the default region", for messages.
func Region(api any, region string) string {
	if region != "" {
		return region
	}
	if c, ok := api.(interface{ Options() ec2.Options }); ok {
		if r := c.Options().Region; r != "" {
			return r
		}
	}
	return "the default region"
}
