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
	"slices"
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
	query := r.URL.Query()
	c.identify(r, query)
	for k, v := range query {
		c.Params[k] = append([]string(nil), v...)
	}
	if err := c.readBodyParams(r); err != nil {
		return c, err
	}
	c.nameAction(r, query)
	c.redact(r.Header)
	return c, nil
}

// identify sets the call's service, region and access key from the SigV4
// credential scope of the Authorization header or of a presigned URL; a
// request to moto's own API is named by its path instead.
func (c *Call) identify(r *http.Request, query url.Values) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		c.AccessKeyID, c.Region, c.Service = parseCredentialScope(credentialFromAuth(auth))
	}
	if c.Service == "" {
		if cred := query.Get("X-Amz-Credential"); cred != "" {
			c.AccessKeyID, c.Region, c.Service = parseCredentialScope(cred)
		}
	}
	if c.Service == "" && strings.HasPrefix(r.URL.Path, "/moto-api") {
		c.Service, c.Action = "moto-api", strings.TrimPrefix(r.URL.Path, "/moto-api")
	}
}

// readBodyParams adds the parameters that a query-protocol request carries
// in its form body, or the top-level string fields of a JSON-protocol body
// (KeyId, Target, ...), keeping that body in c.JSON. The body is read and
// put back for forwarding. S3 bodies are never read.
func (c *Call) readBodyParams(r *http.Request) error {
	if c.Service == "s3" || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	ctype := r.Header.Get("Content-Type")
	switch {
	case isForm(ctype):
		body, err := bufferBody(r)
		if err != nil {
			return fmt.Errorf("read form body: %w", err)
		}
		if len(body) > maxFormBody {
			return fmt.Errorf("form body larger than %d bytes", maxFormBody)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return fmt.Errorf("parse form body: %w", err)
		}
		for k, v := range form {
			c.Params[k] = append(c.Params[k], v...)
		}
	case isJSONProtocol(ctype):
		body, err := bufferBody(r)
		if err != nil {
			return fmt.Errorf("read json body: %w", err)
		}
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
	return nil
}

// bufferBody reads r's body, up to one byte more than maxFormBody, and
// replaces it with the bytes read, so that the request can still be
// forwarded (and replayed by the transport).
func bufferBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody+1))
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return body, nil
}

// nameAction sets the call's action: for S3 derived from method, path and
// query, for the query protocols the Action parameter, and for the JSON
// protocols the operation of the X-Amz-Target header.
func (c *Call) nameAction(r *http.Request, query url.Values) {
	switch c.Service {
	case "s3":
		c.Bucket, c.Key = splitS3Path(r.URL.Path)
		c.Action = s3Action(r.Method, c.Bucket, c.Key, query, r.Header)
	case "moto-api":
		// Named by its path already (identify).
	default:
		c.Action = c.Params.Get("Action")
		if c.Action == "" {
			// JSON protocols (KMS, IAM's JSON clients): X-Amz-Target is
			// "<Service>.<Action>", e.g. "TrentService.DescribeKey".
			if tgt := r.Header.Get("X-Amz-Target"); tgt != "" {
				c.Action = tgt[strings.LastIndex(tgt, ".")+1:]
			}
		}
	}
}

// redact keeps a copy of header in the call and replaces the values of
// secret parameters and headers, so that a recorded call can be logged.
func (c *Call) redact(header http.Header) {
	for _, k := range secretParams {
		if _, ok := c.Params[k]; ok {
			c.Params[k] = []string{redacted}
		}
	}
	c.Header = header.Clone()
	for _, k := range secretHeaders {
		if c.Header.Get(k) != "" {
			c.Header.Set(k, redacted)
		}
	}
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
	switch {
	case bucket == "" && method == http.MethodGet:
		return "ListBuckets"
	case bucket == "":
		return method + " /"
	case key == "":
		return s3BucketAction(method, q)
	}
	return s3ObjectAction(method, q, h.Get("X-Amz-Copy-Source") != "")
}

// s3BucketAction names the S3 operation of a request for a bucket
// (path "/bucket").
func s3BucketAction(method string, q url.Values) string {
	has := func(k string) bool { _, ok := q[k]; return ok }
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

// s3ObjectOperations names the S3 operations on objects. The first row
// that matches a request wins: a row matches a request of its method that
// has all of the row's query parameters and, when copy is set, an
// X-Amz-Copy-Source header.
var s3ObjectOperations = []struct {
	method string
	query  []string
	copy   bool
	name   string
}{
	{http.MethodPut, []string{"partNumber", "uploadId"}, true, "UploadPartCopy"},
	{http.MethodPut, []string{"partNumber", "uploadId"}, false, "UploadPart"},
	{http.MethodPut, []string{"acl"}, false, "PutObjectAcl"},
	{http.MethodPut, []string{"tagging"}, false, "PutObjectTagging"},
	{http.MethodPut, []string{"retention"}, false, "PutObjectRetention"},
	{http.MethodPut, []string{"legal-hold"}, false, "PutObjectLegalHold"},
	{http.MethodPut, nil, true, "CopyObject"},
	{http.MethodPut, nil, false, "PutObject"},
	{http.MethodGet, []string{"acl"}, false, "GetObjectAcl"},
	{http.MethodGet, []string{"tagging"}, false, "GetObjectTagging"},
	{http.MethodGet, []string{"uploadId"}, false, "ListParts"},
	{http.MethodGet, []string{"attributes"}, false, "GetObjectAttributes"},
	{http.MethodGet, []string{"retention"}, false, "GetObjectRetention"},
	{http.MethodGet, []string{"legal-hold"}, false, "GetObjectLegalHold"},
	{http.MethodGet, nil, false, "GetObject"},
	{http.MethodHead, nil, false, "HeadObject"},
	{http.MethodDelete, []string{"uploadId"}, false, "AbortMultipartUpload"},
	{http.MethodDelete, []string{"tagging"}, false, "DeleteObjectTagging"},
	{http.MethodDelete, nil, false, "DeleteObject"},
	{http.MethodPost, []string{"uploads"}, false, "CreateMultipartUpload"},
	{http.MethodPost, []string{"uploadId"}, false, "CompleteMultipartUpload"},
	{http.MethodPost, []string{"restore"}, false, "RestoreObject"},
	{http.MethodPost, []string{"select"}, false, "SelectObjectContent"},
}

// s3ObjectAction names the S3 operation of a request for an object (path
// "/bucket/key"); copySource tells whether it names a source object.
func s3ObjectAction(method string, q url.Values, copySource bool) string {
	for _, op := range s3ObjectOperations {
		if op.method != method || (op.copy && !copySource) {
			continue
		}
		if !slices.ContainsFunc(op.query, func(k string) bool { _, ok := q[k]; return !ok }) {
			return op.name
		}
	}
	return method + " object"
}
