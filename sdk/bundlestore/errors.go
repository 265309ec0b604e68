package bundlestore

import (
	"errors"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// errorCode returns the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status of the response that produced err, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isNotFound reports whether err says an object or key does not exist.
func isNotFound(err error) bool {
	switch errorCode(err) {
	case "NotFound", "NoSuchKey":
		return true
	}
	return httpStatus(err) == http.StatusNotFound
}

// isForbidden reports whether err is an authorization failure.
func isForbidden(err error) bool {
	switch errorCode(err) {
	case "AccessDenied", "Forbidden":
		return true
	}
	return httpStatus(err) == http.StatusForbidden
}

// isPreconditionFailed reports whether err is S3's answer to a condition
// that did not hold (412), such as If-None-Match "*" on an existing key.
func isPreconditionFailed(err error) bool {
	return errorCode(err) == "PreconditionFailed" || httpStatus(err) == http.StatusPreconditionFailed
}

// isNotImplemented reports whether err says the service does not implement
// the operation: the NotImplemented code, or an HTTP 500 or 501 without an
// AWS error code (local emulators answer unimplemented operations with an
// HTML error page).
func isNotImplemented(err error) bool {
	code := errorCode(err)
	if code == "NotImplemented" {
		return true
	}
	switch httpStatus(err) {
	case http.StatusNotImplemented, http.StatusInternalServerError:
		return code == "" || code == "UnknownError"
	}
	return false
}
