package bundlestore_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// memBucket is an in-memory S3 bucket with just the calls of
// bundlestore.UploadAPI; a program passes an *s3.Client instead.
type memBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	acls    map[string]types.ObjectCannedACL
}

var _ bundlestore.UploadAPI = (*memBucket)(nil)

func newMemBucket() *memBucket {
	return &memBucket{objects: map[string][]byte{}, acls: map[string]types.ObjectCannedACL{}}
}

func (b *memBucket) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	body, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	key := aws.ToString(in.Key)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.objects[key]; ok && aws.ToString(in.IfNoneMatch) == "*" {
		return nil, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "an object exists at " + key}
	}
	b.objects[key], b.acls[key] = body, in.ACL
	return &s3.PutObjectOutput{ETag: etag(body)}, nil
}

func (b *memBucket) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	body, ok := b.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &types.NotFound{}
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(body))), ETag: etag(body)}, nil
}

func (b *memBucket) CopyObject(_ context.Context, in *s3.CopyObjectInput, _ ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	src, err := url.PathUnescape(aws.ToString(in.CopySource))
	if err != nil {
		return nil, err
	}
	_, srcKey, _ := strings.Cut(src, "/")
	b.mu.Lock()
	defer b.mu.Unlock()
	body, ok := b.objects[srcKey]
	if !ok {
		return nil, &types.NoSuchKey{}
	}
	key := aws.ToString(in.Key)
	b.objects[key], b.acls[key] = body, in.ACL
	return &s3.CopyObjectOutput{}, nil
}

func (b *memBucket) DeleteObject(_ context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, aws.ToString(in.Key))
	delete(b.acls, aws.ToString(in.Key))
	return &s3.DeleteObjectOutput{}, nil
}

// etag is the ETag S3 gives an object stored by one PutObject.
func etag(body []byte) *string {
	sum := md5.Sum(body)
	return aws.String(`"` + hex.EncodeToString(sum[:]) + `"`)
}

// Upload a bundle from a directory, then upload it again as an
// interrupted run would: what is stored intact is not sent twice.
func ExampleUpload() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bundlestore-example")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer os.RemoveAll(dir)
	manifest, err := exampleBundle(ctx, dir)
	if err != nil {
		fmt.Println("error:", err)
		return
	}

	bucket := newMemBucket() // a program passes an *s3.Client
	in := &bundlestore.UploadInput{ManifestPath: manifest, Bucket: "example-bundles", Prefix: "web", Region: "us-east-1"}
	out, err := bundlestore.Upload(ctx, bucket, in)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("image location:", out.ImageLocation)
	fmt.Println("uploaded:", out.Uploaded)
	for _, key := range slices.Sorted(maps.Keys(bucket.objects)) {
		fmt.Printf("stored: %s (%s)\n", key, bucket.acls[key])
	}

	again, err := bundlestore.Upload(ctx, bucket, in)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("uploaded again:", again.Uploaded, "skipped:", again.Skipped)
	// Output:
	// image location: example-bundles/web/root.img.manifest.xml
	// uploaded: [web/root.img.part.0 web/root.img.manifest.xml]
	// stored: web/root.img.manifest.xml (aws-exec-read)
	// stored: web/root.img.part.0 (aws-exec-read)
	// uploaded again: [] skipped: [web/root.img.part.0 web/root.img.manifest.xml]
}

// exampleBundle bundles a small image into dir with the test keys of
// package bundle and returns the manifest's path.
func exampleBundle(ctx context.Context, dir string) (string, error) {
	vectors := filepath.Join("..", "bundle", "testdata", "vectors")
	userCert, err := bundle.LoadCertificate(filepath.Join(vectors, "user-cert.pem"))
	if err != nil {
		return "", err
	}
	userKey, err := bundle.LoadPrivateKey(filepath.Join(vectors, "user-key.pem"))
	if err != nil {
		return "", err
	}
	ec2Cert, err := bundle.LoadCertificate(filepath.Join(vectors, "ec2-cert.pem"))
	if err != nil {
		return "", err
	}
	image := bytes.Repeat([]byte("an image of a root file system\n"), 1<<15)
	out, err := bundle.Bundle(ctx, &bundle.BundleInput{
		Image: bytes.NewReader(image), Size: int64(len(image)),
		Name: "root.img", Architecture: bundle.ArchX86_64, User: "123456789012",
		UserCert: userCert, UserKey: userKey, EC2Cert: ec2Cert,
		Sink: bundle.Dir(dir),
	})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, out.ManifestName)
	return path, os.WriteFile(path, out.ManifestBytes, 0o644)
}
