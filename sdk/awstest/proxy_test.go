//go:build unix

package awstest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func TestProxyRecordsEC2AndSTS(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	const region = "eu-central-1"
	ec2c, _ := Clients(p.URL, region)

	if _, err := ec2c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{
		KeyName: aws.String("proxy-kp"),
		KeyType: ec2types.KeyTypeEd25519,
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeKeyPair,
			Tags:         []ec2types.Tag{{Key: aws.String("owner"), Value: aws.String("awstest")}},
		}},
	}); err != nil {
		t.Fatalf("CreateKeyPair: %v", err)
	}
	_, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-00000000"}})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidAMIID.NotFound" {
		t.Fatalf("DescribeImages of a missing AMI: %v", err)
	}
	if _, err := STSClient(p.URL, region).GetCallerIdentity(ctx, nil); err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}

	if got, want := p.Actions(), []string{"ec2:CreateKeyPair", "ec2:DescribeImages", "sts:GetCallerIdentity"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Actions() = %v, want %v", got, want)
	}
	kp := p.CallsFor("ec2", "CreateKeyPair")[0]
	if kp.Region != region || kp.Status != 200 || kp.AccessKeyID != TestAccessKeyID || kp.Seq != 1 {
		t.Errorf("CreateKeyPair call = %+v", kp)
	}
	for k, want := range map[string]string{
		"KeyName": "proxy-kp", "KeyType": "ed25519",
		"TagSpecification.1.ResourceType": "key-pair",
		"TagSpecification.1.Tag.1.Key":    "owner", "TagSpecification.1.Tag.1.Value": "awstest",
	} {
		if got := kp.Params.Get(k); got != want {
			t.Errorf("CreateKeyPair param %s = %q, want %q", k, got, want)
		}
	}
	if got := kp.Header.Get("Authorization"); got != redacted {
		t.Errorf("Authorization recorded as %q", got)
	}
	di := p.CallsFor("", "DescribeImages")[0]
	if di.Status != 400 || di.ErrorCode != "InvalidAMIID.NotFound" {
		t.Errorf("DescribeImages call status=%d code=%q", di.Status, di.ErrorCode)
	}
	for _, c := range p.Calls() {
		for _, v := range c.Header {
			if strings.Contains(strings.Join(v, " "), TestSecretAccessKey) {
				t.Errorf("secret key recorded in %s", c)
			}
		}
	}

	p.Reset()
	if n := len(p.Calls()); n != 0 {
		t.Fatalf("Calls() after Reset has %d entries", n)
	}
}

func TestProxyRecordsS3(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	_, s3c := Clients(p.URL, "us-east-1")
	const bucket = "awstest-proxy-s3"

	steps := []struct {
		action string
		key    string
		run    func() error
	}{
		{"CreateBucket", "", func() error {
			_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
			return err
		}},
		{"PutObject", "img/manifest.xml", func() error {
			_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("img/manifest.xml"),
				Body: bytes.NewReader([]byte("<manifest/>")), ACL: s3types.ObjectCannedACLAwsExecRead,
				ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32})
			return err
		}},
		{"HeadObject", "img/manifest.xml", func() error {
			_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("img/manifest.xml")})
			return err
		}},
		{"GetObject", "img/manifest.xml", func() error {
			out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("img/manifest.xml")})
			if err == nil {
				_, err = io.Copy(io.Discard, out.Body)
				out.Body.Close()
			}
			return err
		}},
		{"GetBucketAcl", "", func() error {
			_, err := s3c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String(bucket)})
			return err
		}},
		{"GetBucketLocation", "", func() error {
			_, err := s3c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
			return err
		}},
		{"PutObjectAcl", "img/manifest.xml", func() error {
			_, err := s3c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: aws.String(bucket), Key: aws.String("img/manifest.xml"), ACL: s3types.ObjectCannedACLPrivate})
			return err
		}},
		{"GetObjectAcl", "img/manifest.xml", func() error {
			_, err := s3c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: aws.String(bucket), Key: aws.String("img/manifest.xml")})
			return err
		}},
		{"CreateMultipartUpload", "img/big", nil},
		{"UploadPart", "img/big", nil},
		{"CompleteMultipartUpload", "img/big", nil},
		{"ListObjectsV2", "", func() error {
			_, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("img/")})
			return err
		}},
		{"DeleteObjects", "", func() error {
			_, err := s3c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{
				Objects: []s3types.ObjectIdentifier{{Key: aws.String("img/manifest.xml")}}}})
			return err
		}},
		{"DeleteObject", "img/big", func() error {
			_, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("img/big")})
			return err
		}},
	}
	// The multipart steps share one upload.
	var uploadID *string
	var etag *string
	part := bytes.Repeat([]byte("p"), 64<<10)
	steps[8].run = func() error {
		out, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("img/big")})
		if err == nil {
			uploadID = out.UploadId
		}
		return err
	}
	steps[9].run = func() error {
		out, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("img/big"),
			UploadId: uploadID, PartNumber: aws.Int32(1), Body: bytes.NewReader(part)})
		if err == nil {
			etag = out.ETag
		}
		return err
	}
	steps[10].run = func() error {
		_, err := s3c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("img/big"),
			UploadId: uploadID, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{ETag: etag, PartNumber: aws.Int32(1)}}}})
		return err
	}

	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.action, err)
		}
	}
	calls := p.CallsFor("s3", "")
	if len(calls) != len(steps) {
		t.Fatalf("recorded %d S3 calls, want %d: %v", len(calls), len(steps), p.Actions())
	}
	for i, st := range steps {
		c := calls[i]
		if c.Action != st.action || c.Bucket != bucket || c.Key != st.key || c.Region != "us-east-1" || c.Status/100 != 2 {
			t.Errorf("call %d = %s (key %q), want %s %s/%s", i, c, c.Key, st.action, bucket, st.key)
		}
	}
	put := calls[1]
	if got := put.Header.Get("X-Amz-Acl"); got != "aws-exec-read" {
		t.Errorf("PutObject x-amz-acl = %q", got)
	}
	if put.ContentLength != int64(len("<manifest/>")) {
		t.Errorf("PutObject ContentLength = %d", put.ContentLength)
	}
	if up := calls[9]; up.Params.Get("partNumber") != "1" || up.Params.Get("uploadId") != aws.ToString(uploadID) || up.ContentLength != int64(len(part)) {
		t.Errorf("UploadPart call = %+v", up)
	}
	if put.Header.Get("X-Amz-Checksum-Crc32") == "" {
		t.Errorf("PutObject header lost its checksum: %v", put.Header)
	}
	if calls[9].Header.Get("X-Amz-Content-Sha256") == "" {
		t.Errorf("UploadPart header lost X-Amz-Content-Sha256: %v", calls[9].Header)
	}
}

// TestProxyStreamsS3Bodies proves that the proxy forwards an S3 body while
// the client is still sending it, i.e. it does not buffer it.
func TestProxyStreamsS3Bodies(t *testing.T) {
	gotFirst := make(chan struct{})
	var received int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1024)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(gotFirst)
		n, _ := io.Copy(io.Discard, r.Body)
		received = 1024 + n
	}))
	defer upstream.Close()
	p := NewProxy(t, upstream.URL, ProxyOptions{})

	const size = 10 << 20
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, p.URL+"/bkt/part.0?partNumber=1&uploadId=u", pr)
	req.ContentLength = size
	req.Header.Set("Authorization", authFor("us-east-1", "s3"))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if _, err := pw.Write(make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gotFirst:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream did not see the first KiB before the client finished the body: the proxy buffers")
	}
	if _, err := io.CopyN(pw, zeroReader{}, size-1024); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if received != size {
		t.Errorf("upstream received %d bytes, want %d", received, size)
	}
	if c := p.Calls(); len(c) != 1 || c[0].Action != "UploadPart" || c[0].ContentLength != size {
		t.Errorf("calls = %v", c)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestProxyConcurrentCalls(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	ec2c, _ := Clients(p.URL, "eu-north-1")
	const n = 8
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := ec2c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	calls := p.CallsFor("ec2", "DescribeKeyPairs")
	if len(calls) != n {
		t.Fatalf("recorded %d calls, want %d", len(calls), n)
	}
	for i, c := range calls {
		if c.Seq != i+1 {
			t.Errorf("call %d has Seq %d", i, c.Seq)
		}
	}
}

func TestProxyUnreachableTarget(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, "http://127.0.0.1:"+itoa(port), ProxyOptions{})
	ec2c, _ := Clients(p.URL, "us-east-1")
	if _, err := ec2c.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{}); err == nil {
		t.Fatal("call through a proxy to a closed port succeeded")
	}
	c := p.Calls()
	if len(c) != 1 || c[0].Status != http.StatusBadGateway || c[0].Err == "" {
		t.Fatalf("calls = %+v", c)
	}
}

func TestStartProxyBadTarget(t *testing.T) {
	if _, err := StartProxy("not a url", ProxyOptions{}); err == nil {
		t.Fatal("StartProxy accepted a bad target")
	}
}
