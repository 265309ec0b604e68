package bundlestore

import (
	"net/http"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
)

// isNotFound reports whether err says an object or key does not exist.
func isNotFound(err error) bool {
	switch awserr.Code(err) {
	case "NotFound", "NoSuchKey":
		return true
	}
	return awserr.HTTPStatus(err) == http.StatusNotFound
}

// isForbidden reports whether err is an authorization failure.
func isForbidden(err error) bool {
	switch awserr.Code(err) {
	case "AccessDenied", "Forbidden":
		return true
	}
	return awserr.HTTPStatus(err) == http.StatusForbidden
}

// isPreconditionFailed reports whether err is S3's answer to a condition
// that did not hold (412), such as If-None-Match "*" on an existing key.
func isPreconditionFailed(err error) bool {
	return awserr.Code(err) == "PreconditionFailed" || awserr.HTTPStatus(err) == http.StatusPreconditionFailed
}

// isNotImplemented reports whether err says the service does not implement
// the operation: the NotImplemented code, or an HTTP 500 or 501 without an
// AWS error code (local emulators answer unimplemented operations with an
// HTML error page).
func isNotImplemented(err error) bool {
	code := awserr.Code(err)
	if code == "NotImplemented" {
		return true
	}
	switch awserr.HTTPStatus(err) {
	case http.StatusNotImplemented, http.StatusInternalServerError:
		return code == "" || code == "UnknownError"
	}
	return false
}
