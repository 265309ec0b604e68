//go:build unix

package bundlestore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// apiErr returns an AWS-shaped error with code.
func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " (fake)"}
}

// fakeObject is an object stored by fakeS3.
type fakeObject struct {
	data []byte
	acl  types.ObjectCannedACL
}

// putRecord is one PutObject seen by fakeS3.
type putRecord struct {
	Key         string
	ACL         types.ObjectCannedACL
	Checksum    types.ChecksumAlgorithm
	ContentMD5  string
	IfNoneMatch string
}

// fakeS3 is an in-memory S3 bucket. Function fields, when set, replace the
// default behaviour of an operation; every call is logged as "Op key".
type fakeS3 struct {
	Bucket string

	// PutBarrier, when above zero, holds each PutObject until that many
	// are in flight at once, or until ReleasePuts is called, so a test
	// sees uploads overlap without relying on timing.
	PutBarrier int
	// ListPageSize bounds ListObjectsV2 pages (default 1000).
	ListPageSize int

	putObject                  func(ctx context.Context, in *s3.PutObjectInput) (*s3.PutObjectOutput, error)
	headObject                 func(ctx context.Context, in *s3.HeadObjectInput) (*s3.HeadObjectOutput, error)
	getBucketLocation          func(ctx context.Context, in *s3.GetBucketLocationInput) (*s3.GetBucketLocationOutput, error)
	headBucket                 func(ctx context.Context, in *s3.HeadBucketInput) (*s3.HeadBucketOutput, error)
	getBucketOwnershipControls func(ctx context.Context, in *s3.GetBucketOwnershipControlsInput) (*s3.GetBucketOwnershipControlsOutput, error)
	getBucketEncryption        func(ctx context.Context, in *s3.GetBucketEncryptionInput) (*s3.GetBucketEncryptionOutput, error)

	mu          sync.Mutex
	objects     map[string]fakeObject
	calls       []string
	puts        []putRecord
	inFlight    int
	maxInFlight int
	putGate     chan struct{} // closed when PutBarrier calls are in flight
	putsFree    bool          // ReleasePuts was called
	deleteBatch []int
}

func newFakeS3(bucket string) *fakeS3 {
	return &fakeS3{Bucket: bucket, objects: make(map[string]fakeObject)}
}

func (f *fakeS3) log(op, key string) {
	f.mu.Lock()
	f.calls = append(f.calls, op+" "+key)
	f.mu.Unlock()
}

// Calls returns the call log.
func (f *fakeS3) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// CallsOf returns the keys of the logged calls of op, in order.
func (f *fakeS3) CallsOf(op string) []string {
	var keys []string
	for _, c := range f.Calls() {
		if o, k, _ := strings.Cut(c, " "); o == op {
			keys = append(keys, k)
		}
	}
	return keys
}

func (f *fakeS3) Puts() []putRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.puts)
}

func (f *fakeS3) Keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for k := range f.objects {
			if !yield(k) {
				return
			}
		}
	})
}

func (f *fakeS3) Set(key string, data []byte) {
	f.mu.Lock()
	f.objects[key] = fakeObject{data: slices.Clone(data)}
	f.mu.Unlock()
}

func (f *fakeS3) Object(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	return o.data, ok
}

func (f *fakeS3) checkBucket(b *string) error {
	if aws.ToString(b) != f.Bucket {
		return apiErr("NoSuchBucket")
	}
	return nil
}

func etag(data []byte) *string {
	sum := md5.Sum(data)
	return aws.String(`"` + hex.EncodeToString(sum[:]) + `"`)
}

func (f *fakeS3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	key := aws.ToString(in.Key)
	f.log("PutObject", key)
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	gate := f.passBarrier()
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.putObject != nil {
		return f.putObject(ctx, in)
	}
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	if _, ok := in.Body.(io.Seeker); !ok {
		return nil, fmt.Errorf("fake: body %T is not seekable", in.Body)
	}
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, putRecord{Key: key, ACL: in.ACL, Checksum: in.ChecksumAlgorithm, ContentMD5: aws.ToString(in.ContentMD5), IfNoneMatch: aws.ToString(in.IfNoneMatch)})
	if in.ContentLength != nil && *in.ContentLength != int64(len(data)) {
		return nil, apiErr("IncompleteBody")
	}
	// As S3 does: If-None-Match "*" stores the object only when the key
	// holds none (412 Precondition Failed otherwise).
	if _, exists := f.objects[key]; exists && aws.ToString(in.IfNoneMatch) == "*" {
		return nil, apiErr("PreconditionFailed")
	}
	f.objects[key] = fakeObject{data: data, acl: in.ACL}
	return &s3.PutObjectOutput{ETag: etag(data)}, nil
}

// passBarrier returns the channel a PutObject waits on, or nil when it may
// go on: when there is no barrier, ReleasePuts was called, or this call
// brings PutBarrier calls in flight, which lets the waiting ones go too.
// f.mu must be held.
func (f *fakeS3) passBarrier() <-chan struct{} {
	if f.PutBarrier <= 0 || f.putsFree {
		return nil
	}
	if f.putGate == nil {
		f.putGate = make(chan struct{})
	}
	if f.inFlight < f.PutBarrier {
		return f.putGate
	}
	close(f.putGate)
	f.putGate = nil
	return nil
}

// ReleasePuts lets every waiting and later PutObject go on without waiting
// for the barrier.
func (f *fakeS3) ReleasePuts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.putsFree = true
	if f.putGate != nil {
		close(f.putGate)
		f.putGate = nil
	}
}

func (f *fakeS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	key := aws.ToString(in.Key)
	f.log("HeadObject", key)
	if f.headObject != nil {
		return f.headObject(ctx, in)
	}
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		return nil, apiErr("NotFound")
	}
	return &s3.HeadObjectOutput{ETag: etag(o.data), ContentLength: aws.Int64(int64(len(o.data)))}, nil
}

func (f *fakeS3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	key := aws.ToString(in.Key)
	f.log("GetObject", key)
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		return nil, apiErr("NoSuchKey")
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(o.data)), ContentLength: aws.Int64(int64(len(o.data)))}, nil
}

func (f *fakeS3) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	key := aws.ToString(in.Key)
	f.log("DeleteObject", key)
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	f.mu.Lock()
	delete(f.objects, key)
	f.mu.Unlock()
	return &s3.DeleteObjectOutput{}, nil
}

func (f *fakeS3) CopyObject(ctx context.Context, in *s3.CopyObjectInput, _ ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	key := aws.ToString(in.Key)
	f.log("CopyObject", key)
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	src, err := url.PathUnescape(aws.ToString(in.CopySource))
	if err != nil {
		return nil, err
	}
	bucket, srcKey, _ := strings.Cut(src, "/")
	if bucket != f.Bucket {
		return nil, apiErr("NoSuchBucket")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[srcKey]
	if !ok {
		return nil, apiErr("NoSuchKey")
	}
	f.objects[key] = fakeObject{data: o.data, acl: in.ACL}
	return &s3.CopyObjectOutput{}, nil
}

func (f *fakeS3) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, _ ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	if n := len(in.Delete.Objects); n > 1000 {
		return nil, apiErr("MalformedXML")
	}
	f.mu.Lock()
	f.deleteBatch = append(f.deleteBatch, len(in.Delete.Objects))
	f.mu.Unlock()
	for _, o := range in.Delete.Objects {
		key := aws.ToString(o.Key)
		f.log("DeleteObjects", key)
		f.mu.Lock()
		delete(f.objects, key)
		f.mu.Unlock()
	}
	return &s3.DeleteObjectsOutput{}, nil
}

func (f *fakeS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	f.log("ListObjectsV2", aws.ToString(in.Prefix))
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	size := f.ListPageSize
	if size == 0 {
		size = 1000
	}
	start := 0
	if t := aws.ToString(in.ContinuationToken); t != "" {
		start, _ = strconv.Atoi(t)
	}
	var match []string
	for _, k := range f.Keys() {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) {
			match = append(match, k)
		}
	}
	out := &s3.ListObjectsV2Output{}
	end := min(start+size, len(match))
	for _, k := range match[start:end] {
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k)})
	}
	if end < len(match) {
		out.IsTruncated = aws.Bool(true)
		out.NextContinuationToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

func (f *fakeS3) GetBucketLocation(ctx context.Context, in *s3.GetBucketLocationInput, _ ...func(*s3.Options)) (*s3.GetBucketLocationOutput, error) {
	f.log("GetBucketLocation", "")
	if f.getBucketLocation != nil {
		return f.getBucketLocation(ctx, in)
	}
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	return &s3.GetBucketLocationOutput{}, nil
}

func (f *fakeS3) HeadBucket(ctx context.Context, in *s3.HeadBucketInput, _ ...func(*s3.Options)) (*s3.HeadBucketOutput, error) {
	f.log("HeadBucket", "")
	if f.headBucket != nil {
		return f.headBucket(ctx, in)
	}
	if err := f.checkBucket(in.Bucket); err != nil {
		return nil, err
	}
	return &s3.HeadBucketOutput{BucketRegion: aws.String("us-east-1")}, nil
}

func (f *fakeS3) GetBucketOwnershipControls(ctx context.Context, in *s3.GetBucketOwnershipControlsInput, _ ...func(*s3.Options)) (*s3.GetBucketOwnershipControlsOutput, error) {
	f.log("GetBucketOwnershipControls", "")
	if f.getBucketOwnershipControls != nil {
		return f.getBucketOwnershipControls(ctx, in)
	}
	return nil, apiErr("OwnershipControlsNotFoundError")
}

func (f *fakeS3) GetBucketEncryption(ctx context.Context, in *s3.GetBucketEncryptionInput, _ ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error) {
	f.log("GetBucketEncryption", "")
	if f.getBucketEncryption != nil {
		return f.getBucketEncryption(ctx, in)
	}
	return nil, apiErr("ServerSideEncryptionConfigurationNotFoundError")
}

var (
	_ UploadAPI    = (*fakeS3)(nil)
	_ DeleteAPI    = (*fakeS3)(nil)
	_ BucketAPI    = (*fakeS3)(nil)
	_ GetObjectAPI = (*fakeS3)(nil)
)

// fakeEC2 is a fake EC2 with function fields and a call log.
type fakeEC2 struct {
	registerImage   func(ctx context.Context, in *ec2.RegisterImageInput) (*ec2.RegisterImageOutput, error)
	describeImages  func(ctx context.Context, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error)
	deregisterImage func(ctx context.Context, in *ec2.DeregisterImageInput) (*ec2.DeregisterImageOutput, error)

	mu    sync.Mutex
	calls []string
}

func (f *fakeEC2) log(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeEC2) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeEC2) RegisterImage(ctx context.Context, in *ec2.RegisterImageInput, _ ...func(*ec2.Options)) (*ec2.RegisterImageOutput, error) {
	f.log("RegisterImage " + aws.ToString(in.Name))
	if f.registerImage != nil {
		return f.registerImage(ctx, in)
	}
	return &ec2.RegisterImageOutput{ImageId: aws.String("ami-0123456789abcdef0")}, nil
}

func (f *fakeEC2) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.log("DescribeImages " + strings.Join(in.ImageIds, ","))
	if f.describeImages != nil {
		return f.describeImages(ctx, in)
	}
	return nil, apiErr("InvalidAMIID.NotFound")
}

func (f *fakeEC2) DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	f.log("DeregisterImage " + aws.ToString(in.ImageId))
	if f.deregisterImage != nil {
		return f.deregisterImage(ctx, in)
	}
	return &ec2.DeregisterImageOutput{}, nil
}

var (
	_ RegisterAPI   = (*fakeEC2)(nil)
	_ DeregisterAPI = (*fakeEC2)(nil)
	_               = ec2types.Image{}
)
