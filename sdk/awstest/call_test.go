//go:build unix

package awstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testAuth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/%s/%s/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef"

func authFor(region, service string) string {
	return strings.Replace(strings.Replace(testAuth, "%s", region, 1), "%s", service, 1)
}

func TestParseCall(t *testing.T) {
	tests := []struct {
		name        string
		method, url string
		body        string
		header      map[string]string
		want        Call
		wantParams  map[string]string
		wantJSON    string
	}{
		{
			name: "ec2 form", method: "POST", url: "/",
			body:       "Action=RunInstances&Version=2016-11-15&ImageId=ami-1&TagSpecification.1.Tag.1.Key=Name",
			header:     map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Authorization": authFor("eu-west-1", "ec2")},
			want:       Call{Service: "ec2", Action: "RunInstances", Region: "eu-west-1", AccessKeyID: "AKIDEXAMPLE"},
			wantParams: map[string]string{"ImageId": "ami-1", "TagSpecification.1.Tag.1.Key": "Name"},
		},
		{
			name: "sts form with session token", method: "POST", url: "/",
			body:       "Action=GetCallerIdentity&Version=2011-06-15",
			header:     map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": authFor("us-east-1", "sts"), "X-Amz-Security-Token": "secret-token"},
			want:       Call{Service: "sts", Action: "GetCallerIdentity", Region: "us-east-1", AccessKeyID: "AKIDEXAMPLE"},
			wantParams: map[string]string{"Version": "2011-06-15"},
		},
		{
			name: "ec2 query string", method: "GET", url: "/?Action=DescribeRegions&Version=2016-11-15",
			header: map[string]string{"Authorization": authFor("us-east-2", "ec2")},
			want:   Call{Service: "ec2", Action: "DescribeRegions", Region: "us-east-2", AccessKeyID: "AKIDEXAMPLE"},
		},
		{name: "s3 list buckets", method: "GET", url: "/", want: Call{Service: "s3", Action: "ListBuckets"}},
		{name: "s3 create bucket", method: "PUT", url: "/bkt", want: Call{Service: "s3", Action: "CreateBucket", Bucket: "bkt"}},
		{name: "s3 head bucket", method: "HEAD", url: "/bkt", want: Call{Service: "s3", Action: "HeadBucket", Bucket: "bkt"}},
		{name: "s3 delete bucket", method: "DELETE", url: "/bkt", want: Call{Service: "s3", Action: "DeleteBucket", Bucket: "bkt"}},
		{name: "s3 get bucket acl", method: "GET", url: "/bkt?acl", want: Call{Service: "s3", Action: "GetBucketAcl", Bucket: "bkt"}},
		{name: "s3 put bucket acl", method: "PUT", url: "/bkt?acl", want: Call{Service: "s3", Action: "PutBucketAcl", Bucket: "bkt"}},
		{name: "s3 get bucket location", method: "GET", url: "/bkt?location", want: Call{Service: "s3", Action: "GetBucketLocation", Bucket: "bkt"}},
		{name: "s3 ownership controls", method: "GET", url: "/bkt?ownershipControls", want: Call{Service: "s3", Action: "GetBucketOwnershipControls", Bucket: "bkt"}},
		{name: "s3 put bucket policy", method: "PUT", url: "/bkt?policy", want: Call{Service: "s3", Action: "PutBucketPolicy", Bucket: "bkt"}},
		{name: "s3 list objects v2", method: "GET", url: "/bkt?list-type=2&prefix=a%2F", want: Call{Service: "s3", Action: "ListObjectsV2", Bucket: "bkt"}, wantParams: map[string]string{"prefix": "a/"}},
		{name: "s3 list objects v1", method: "GET", url: "/bkt?prefix=a", want: Call{Service: "s3", Action: "ListObjects", Bucket: "bkt"}},
		{name: "s3 list multipart uploads", method: "GET", url: "/bkt?uploads", want: Call{Service: "s3", Action: "ListMultipartUploads", Bucket: "bkt"}},
		{name: "s3 delete objects", method: "POST", url: "/bkt?delete", body: "<Delete/>", want: Call{Service: "s3", Action: "DeleteObjects", Bucket: "bkt"}},
		{name: "s3 put object", method: "PUT", url: "/bkt/dir/obj.part.0", body: "data", header: map[string]string{"x-amz-acl": "aws-exec-read", "Content-MD5": "abc=="},
			want: Call{Service: "s3", Action: "PutObject", Bucket: "bkt", Key: "dir/obj.part.0"}},
		{name: "s3 x-id wins", method: "PUT", url: "/bkt/k?x-id=PutObject", want: Call{Service: "s3", Action: "PutObject", Bucket: "bkt", Key: "k"}},
		{name: "s3 copy object", method: "PUT", url: "/bkt/k", header: map[string]string{"X-Amz-Copy-Source": "/src/k"}, want: Call{Service: "s3", Action: "CopyObject", Bucket: "bkt", Key: "k"}},
		{name: "s3 get object", method: "GET", url: "/bkt/k", want: Call{Service: "s3", Action: "GetObject", Bucket: "bkt", Key: "k"}},
		{name: "s3 head object", method: "HEAD", url: "/bkt/k", want: Call{Service: "s3", Action: "HeadObject", Bucket: "bkt", Key: "k"}},
		{name: "s3 delete object", method: "DELETE", url: "/bkt/k", want: Call{Service: "s3", Action: "DeleteObject", Bucket: "bkt", Key: "k"}},
		{name: "s3 put object acl", method: "PUT", url: "/bkt/k?acl", want: Call{Service: "s3", Action: "PutObjectAcl", Bucket: "bkt", Key: "k"}},
		{name: "s3 get object acl", method: "GET", url: "/bkt/k?acl", want: Call{Service: "s3", Action: "GetObjectAcl", Bucket: "bkt", Key: "k"}},
		{name: "s3 create multipart", method: "POST", url: "/bkt/k?uploads", want: Call{Service: "s3", Action: "CreateMultipartUpload", Bucket: "bkt", Key: "k"}},
		{name: "s3 upload part", method: "PUT", url: "/bkt/k?partNumber=2&uploadId=u1", want: Call{Service: "s3", Action: "UploadPart", Bucket: "bkt", Key: "k"}, wantParams: map[string]string{"partNumber": "2", "uploadId": "u1"}},
		{name: "s3 complete multipart", method: "POST", url: "/bkt/k?uploadId=u1", want: Call{Service: "s3", Action: "CompleteMultipartUpload", Bucket: "bkt", Key: "k"}},
		{name: "s3 abort multipart", method: "DELETE", url: "/bkt/k?uploadId=u1", want: Call{Service: "s3", Action: "AbortMultipartUpload", Bucket: "bkt", Key: "k"}},
		{name: "s3 list parts", method: "GET", url: "/bkt/k?uploadId=u1", want: Call{Service: "s3", Action: "ListParts", Bucket: "bkt", Key: "k"}},
		{name: "s3 object tagging", method: "PUT", url: "/bkt/k?tagging", want: Call{Service: "s3", Action: "PutObjectTagging", Bucket: "bkt", Key: "k"}},
		{
			name: "s3 presigned", method: "PUT",
			url:        "/bkt/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fap-south-1%2Fs3%2Faws4_request&X-Amz-Signature=deadbeef",
			want:       Call{Service: "s3", Action: "PutObject", Region: "ap-south-1", AccessKeyID: "AKIDEXAMPLE", Bucket: "bkt", Key: "k"},
			wantParams: map[string]string{"X-Amz-Signature": redacted},
		},
		{name: "moto api", method: "POST", url: "/moto-api/reset", want: Call{Service: "moto-api", Action: "/reset"}},
		{
			name: "kms json", method: "POST", url: "/",
			body:       `{"KeyId":"alias/build"}`,
			header:     map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.DescribeKey", "Authorization": authFor("eu-west-1", "kms")},
			want:       Call{Service: "kms", Action: "DescribeKey", Region: "eu-west-1", AccessKeyID: "AKIDEXAMPLE"},
			wantParams: map[string]string{"KeyId": "alias/build"},
			wantJSON:   `{"KeyId":"alias/build"}`,
		},
		{
			name: "ssm json", method: "POST", url: "/",
			body:       `{"DocumentName":"AWS-StartPortForwardingSession","Parameters":{"portNumber":["22"]},"Target":"i-0123"}`,
			header:     map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.StartSession", "Authorization": authFor("us-east-1", "ssm")},
			want:       Call{Service: "ssm", Action: "StartSession", Region: "us-east-1", AccessKeyID: "AKIDEXAMPLE"},
			wantParams: map[string]string{"Target": "i-0123", "DocumentName": "AWS-StartPortForwardingSession"},
			wantJSON:   `{"DocumentName":"AWS-StartPortForwardingSession","Parameters":{"portNumber":["22"]},"Target":"i-0123"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := httptest.NewRequest(tc.method, tc.url, body)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			if tc.want.Service == "s3" && r.Header.Get("Authorization") == "" && r.URL.Query().Get("X-Amz-Credential") == "" {
				r.Header.Set("Authorization", authFor("us-east-1", "s3"))
				tc.want.Region, tc.want.AccessKeyID = "us-east-1", "AKIDEXAMPLE"
			}
			got, err := parseCall(r)
			if err != nil {
				t.Fatalf("parseCall: %v", err)
			}
			if got.Service != tc.want.Service || got.Action != tc.want.Action || got.Region != tc.want.Region ||
				got.AccessKeyID != tc.want.AccessKeyID || got.Bucket != tc.want.Bucket || got.Key != tc.want.Key {
				t.Errorf("got %+v\nwant service=%q action=%q region=%q akid=%q bucket=%q key=%q", got,
					tc.want.Service, tc.want.Action, tc.want.Region, tc.want.AccessKeyID, tc.want.Bucket, tc.want.Key)
			}
			for k, v := range tc.wantParams {
				if got.Params.Get(k) != v {
					t.Errorf("param %s = %q, want %q", k, got.Params.Get(k), v)
				}
			}
			if string(got.JSON) != tc.wantJSON {
				t.Errorf("JSON = %q, want %q", got.JSON, tc.wantJSON)
			}
			// Secrets are redacted in the record but untouched in the request.
			for _, h := range []string{"Authorization", "X-Amz-Security-Token"} {
				if v := got.Header.Get(h); v != "" && v != redacted {
					t.Errorf("header %s not redacted: %q", h, v)
				}
				if orig := tc.header[h]; orig != "" && r.Header.Get(h) != orig {
					t.Errorf("request header %s changed to %q", h, r.Header.Get(h))
				}
			}
			for k, v := range tc.header {
				if k == "Authorization" || k == "X-Amz-Security-Token" {
					continue
				}
				if got.Header.Get(k) != v {
					t.Errorf("header %s = %q, want %q kept", k, got.Header.Get(k), v)
				}
			}
			// The body must still be readable in full for forwarding.
			if tc.body != "" {
				rest, err := io.ReadAll(r.Body)
				if err != nil || string(rest) != tc.body {
					t.Errorf("body after parse = %q, %v; want %q", rest, err, tc.body)
				}
			}
		})
	}
}

func TestParseCallDoesNotReadS3Body(t *testing.T) {
	body := &countingReader{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	r := httptest.NewRequest(http.MethodPut, "/bkt/k", body)
	r.Header.Set("Authorization", authFor("us-east-1", "s3"))
	// Even a form content type must not make the proxy buffer an S3 body.
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := parseCall(r); err != nil {
		t.Fatal(err)
	}
	if body.n != 0 {
		t.Fatalf("parseCall read %d bytes of an S3 body", body.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
