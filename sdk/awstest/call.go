//go:build unix

package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Call is one request seen by a [Proxy].
type Call struct {
	// Seq numbers calls in the order the proxy received them, from 1.
	Seq int
	// Service is the SigV4 signing name ("ec2", "s3", "sts", ...), from the
	// Authorization credential scope or a presigned URL's X-Amz-Credential.
	// Requests to moto's own API (/moto-api/...) have Service "moto-api".
	Service string
	// Action is the operation name: the Action parameter for query protocols
	// (EC2, STS), and for S3 the operation derived from method, path and
	// query (PutObject, ListObjectsV2, CreateMultipartUpload, ...).
	Action string
	// Region is the region of the credential scope.
	Region string
	// AccessKeyID is the access key of the credential scope.
	AccessKeyID string
	// Params holds the query and form parameters, and the top-level string
	// fields of a JSON-protocol request (KMS, SSM, ...). Signature and
	// security token values are redacted.
	Params url.Values
	// JSON is the body of a JSON-protocol request (Content-Type
	// application/x-amz-json-1.0 or -1.1), for fields that are not
	// top-level strings.
	JSON []byte
	// Method and Path are the HTTP method and the decoded URL path.
	Method, Path string
	// Bucket and Key are set for S3 (path-style /bucket/key).
	Bucket, Key string
	// ContentLength is the request's Content-Length (-1 when unknown).
	ContentLength int64
	// Header is a copy of the request header with secrets redacted
	// (Authorization, X-Amz-Security-Token, SSE-C keys).
	Header http.Header
	// Status is the HTTP status sent to the client; 0 when the connection was
	// reset by a fault.
	Status int
	// ErrorCode is the AWS error code of an error response, when the body
	// carried one.
	ErrorCode string
	// Err describes a failure to reach the target.
	Err string
	// Fault is the fault injected into this call, if any.
	Fault *Fault
	// Emulated describes what the proxy did in moto's place for this call
	// (see the emulations in [Proxy]); empty when nothing.
	Emulated string
	// Account is the account the call acts in, for RequiredActions: empty
	// means TestAccountID. The proxy leaves it empty; a test sets it on the
	// calls made with another account's credentials.
	Account string
	// Time is when the proxy received the request; Duration is the time until
	// the response header was sent.
	Time     time.Time
	Duration time.Duration
}

// String gives a one-line summary: "ec2 us-east-1 CreateKeyPair -> 200".
func (c Call) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", c.Service, c.Region, c.Action)
	if c.Bucket != "" {
		fmt.Fprintf(&b, " %s", c.Bucket)
		if c.Key != "" {
			fmt.Fprintf(&b, "/%s", c.Key)
		}
	}
	fmt.Fprintf(&b, " -> %d", c.Status)
	if c.ErrorCode != "" {
		fmt.Fprintf(&b, " %s", c.ErrorCode)
	}
	if c.Fault != nil {
		fmt.Fprintf(&b, " [fault %s]", c.Fault)
	}
	return b.String()
}

const redacted = "REDACTED"

var secretHeaders = []string{
	"Authorization",
	"X-Amz-Security-Token",
	"X-Amz-Server-Side-Encryption-Customer-Key",
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key",
}

var secretParams = []string{"X-Amz-Signature", "X-Amz-Security-Token", "Signature", "SecurityToken"}

// maxFormBody bounds how much of a form-encoded body the proxy buffers.
const maxFormBody = 32 << 20

// parseCall describes r. For query-protocol requests (form-encoded bodies of
// services other than S3) it reads the body and replaces r.Body with an
// equivalent reader; S3 bodies are never read.
func parseCall(r *http.Request) (Call, error) {
	c := Call{
		Method:        r.Method,
		Path:          r.URL.Path,
		ContentLength: r.ContentLength,
		Params:        url.Values{},
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		c.AccessKeyID, c.Region, c.Service = parseCredentialScope(credentialFromAuth(auth))
	}
	query := r.URL.Query()
	if c.Service == "" {
		if cred := query.Get("X-Amz-Credential"); cred != "" {
			c.AccessKeyID, c.Region, c.Service = parseCredentialScope(cred)
		}
	}
	if c.Service == "" && strings.HasPrefix(r.URL.Path, "/moto-api") {
		c.Service, c.Action = "moto-api", strings.TrimPrefix(r.URL.Path, "/moto-api")
	}
	for k, v := range query {
		c.Params[k] = append([]string(nil), v...)
	}

	if c.Service != "s3" && isForm(r.Header.Get("Content-Type")) && r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody+1))
		r.Body.Close()
		if err != nil {
			return c, fmt.Errorf("read form body: %w", err)
		}
		if len(body) > maxFormBody {
			return c, fmt.Errorf("form body larger than %d bytes", maxFormBody)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return c, fmt.Errorf("parse form body: %w", err)
		}
		for k, v := range form {
			c.Params[k] = append(c.Params[k], v...)
		}
	} else if c.Service != "s3" && isJSONProtocol(r.Header.Get("Content-Type")) && r.Body != nil && r.Body != http.NoBody {
		// JSON protocol: the request's top-level string fields (KeyId,
		// Target, ...) become Params; the body is kept in JSON.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody+1))
		r.Body.Close()
		if err != nil {
			return c, fmt.Errorf("read json body: %w", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		c.JSON = body
		var fields map[string]any
		if json.Unmarshal(body, &fields) == nil {
			for k, v := range fields {
				if s, ok := v.(string); ok {
					c.Params.Set(k, s)
				}
			}
		}
	}

	if c.Service == "s3" {
		c.Bucket, c.Key = splitS3Path(r.URL.Path)
		c.Action = s3Action(r.Method, c.Bucket, c.Key, query, r.Header)
	} else if c.Service != "moto-api" {
		c.Action = c.Params.Get("Action")
		if c.Action == "" {
			// JSON protocols (KMS, IAM's JSON clients): X-Amz-Target is
			// "<Service>.<Action>", e.g. "TrentService.DescribeKey".
			if tgt := r.Header.Get("X-Amz-Target"); tgt != "" {
				c.Action = tgt[strings.LastIndex(tgt, ".")+1:]
			}
		}
	}

	for _, k := range secretParams {
		if _, ok := c.Params[k]; ok {
			c.Params[k] = []string{redacted}
		}
	}
	c.Header = r.Header.Clone()
	for _, k := range secretHeaders {
		if c.Header.Get(k) != "" {
			c.Header.Set(k, redacted)
		}
	}
	return c, nil
}

// isJSONProtocol reports whether contentType is that of the AWS JSON
// protocols (application/x-amz-json-1.0 or -1.1).
func isJSONProtocol(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && strings.HasPrefix(mt, "application/x-amz-json-")
}

func isForm(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// credentialFromAuth extracts the Credential= value of a SigV4 Authorization
// header: "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/aws4_request, SignedHeaders=..., Signature=...".
func credentialFromAuth(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, ", "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// parseCredentialScope splits "AKID/DATE/REGION/SERVICE/aws4_request".
func parseCredentialScope(cred string) (accessKey, region, service string) {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return "", "", ""
	}
	return parts[0], parts[2], parts[3]
}

// splitS3Path splits a path-style S3 path "/bucket/key/with/slashes".
func splitS3Path(p string) (bucket, key string) {
	p = strings.TrimPrefix(p, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// s3SubResource maps a query sub-resource to the operation name suffix used
// for bucket-level GET/PUT/DELETE (GetBucketAcl, PutBucketPolicy, ...).
var s3BucketSubResources = []struct{ query, name string }{
	{"acl", "BucketAcl"},
	{"location", "BucketLocation"},
	{"ownershipControls", "BucketOwnershipControls"},
	{"policy", "BucketPolicy"},
	{"tagging", "BucketTagging"},
	{"versioning", "BucketVersioning"},
	{"publicAccessBlock", "PublicAccessBlock"},
	{"encryption", "BucketEncryption"},
	{"lifecycle", "BucketLifecycleConfiguration"},
	{"cors", "BucketCors"},
	{"website", "BucketWebsite"},
	{"logging", "BucketLogging"},
	{"notification", "BucketNotificationConfiguration"},
	{"replication", "BucketReplication"},
	{"object-lock", "ObjectLockConfiguration"},
	{"accelerate", "BucketAccelerateConfiguration"},
	{"requestPayment", "BucketRequestPayment"},
}

// s3Action names the S3 operation of a path-style request. The SDK's x-id
// query parameter, when present, is authoritative.
func s3Action(method, bucket, key string, q url.Values, h http.Header) string {
	if id := q.Get("x-id"); id != "" {
		return id
	}
	has := func(k string) bool { _, ok := q[k]; return ok }
	copySource := h.Get("X-Amz-Copy-Source") != ""
	if bucket == "" {
		if method == http.MethodGet {
			return "ListBuckets"
		}
		return method + " /"
	}
	if key == "" {
		verb := map[string]string{http.MethodGet: "Get", http.MethodPut: "Put", http.MethodDelete: "Delete"}[method]
		if verb != "" {
			for _, s := range s3BucketSubResources {
				if has(s.query) {
					if s.query == "location" && verb != "Get" {
						break
					}
					return verb + s.name
				}
			}
		}
		switch method {
		case http.MethodGet:
			switch {
			case has("versions"):
				return "ListObjectVersions"
			case has("uploads"):
				return "ListMultipartUploads"
			case q.Get("list-type") == "2":
				return "ListObjectsV2"
			}
			return "ListObjects"
		case http.MethodPut:
			return "CreateBucket"
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodDelete:
			return "DeleteBucket"
		case http.MethodPost:
			if has("delete") {
				return "DeleteObjects"
			}
		}
		return method + " bucket"
	}
	switch method {
	case http.MethodPut:
		switch {
		case has("partNumber") && has("uploadId") && copySource:
			return "UploadPartCopy"
		case has("partNumber") && has("uploadId"):
			return "UploadPart"
		case has("acl"):
			return "PutObjectAcl"
		case has("tagging"):
			return "PutObjectTagging"
		case has("retention"):
			return "PutObjectRetention"
		case has("legal-hold"):
			return "PutObjectLegalHold"
		case copySource:
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodGet:
		switch {
		case has("acl"):
			return "GetObjectAcl"
		case has("tagging"):
			return "GetObjectTagging"
		case has("uploadId"):
			return "ListParts"
		case has("attributes"):
			return "GetObjectAttributes"
		case has("retention"):
			return "GetObjectRetention"
		case has("legal-hold"):
			return "GetObjectLegalHold"
		}
		return "GetObject"
	case http.MethodHead:
		return "HeadObject"
	case http.MethodDelete:
		switch {
		case has("uploadId"):
			return "AbortMultipartUpload"
		case has("tagging"):
			return "DeleteObjectTagging"
		}
		return "DeleteObject"
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "CreateMultipartUpload"
		case has("uploadId"):
			return "CompleteMultipartUpload"
		case has("restore"):
			return "RestoreObject"
		case has("select"):
			return "SelectObjectContent"
		}
	}
	return method + " object"
}
