//go:build unix

package bundlestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
)

// motoEnv is moto behind a recording proxy, with clients for one region.
type motoEnv struct {
	proxy *awstest.Proxy
	ec2   *ec2.Client
	s3    *s3.Client
}

func newMotoEnv(t *testing.T, region string) *motoEnv {
	t.Helper()
	m := sharedMoto(t)
	p := awstest.NewProxy(t, m.Endpoint, awstest.ProxyOptions{})
	e, s := awstest.Clients(p.URL, region)
	return &motoEnv{proxy: p, ec2: e, s3: s}
}

// createBucket creates a bucket named after the test in the client's region.
func (e *motoEnv) createBucket(t *testing.T, region string) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()))
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	if _, err := e.s3.CreateBucket(context.Background(), in); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

func (e *motoEnv) put(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	_, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *motoEnv) list(t *testing.T, bucket string) []string {
	t.Helper()
	out, err := e.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func TestMotoRoundTrip(t *testing.T) {
	b := sharedBundle(t, threeParts)
	env := newMotoEnv(t, "us-east-1")
	ctx := context.Background()
	bucket := env.createBucket(t, "us-east-1")
	env.put(t, bucket, "p/keep.txt", []byte("not part of the bundle"))
	env.put(t, bucket, "p/root.img.part.0.bak", []byte("not part of the bundle"))

	if _, err := CheckBucket(ctx, env.s3, &CheckBucketInput{Bucket: bucket, Region: "us-east-1"}); err != nil {
		t.Fatalf("CheckBucket: %v", err)
	}
	env.proxy.Reset()
	up, err := Upload(ctx, env.s3, &UploadInput{ManifestPath: b.ManifestPath, Bucket: bucket, Prefix: "p", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if up.ImageLocation != bucket+"/p/root.img.manifest.xml" {
		t.Errorf("ImageLocation = %q", up.ImageLocation)
	}

	// What went over the wire: every object with the ACL header and a
	// CRC-32 checksum, the manifest after every part had been answered.
	puts := env.proxy.CallsFor("s3", "PutObject")
	if len(puts) != 4 {
		t.Fatalf("%d PutObject requests, want 4", len(puts))
	}
	var lastPartDone, manifestStart int64
	for _, c := range puts {
		if c.Status != 200 {
			t.Errorf("PUT %s: HTTP %d", c.Key, c.Status)
		}
		if acl := c.Header.Get("X-Amz-Acl"); acl != "aws-exec-read" {
			t.Errorf("PUT %s: x-amz-acl %q, want aws-exec-read", c.Key, acl)
		}
		if c.Header.Get("X-Amz-Checksum-Crc32") == "" {
			t.Errorf("PUT %s: no x-amz-checksum-crc32", c.Key)
		}
		if c.Key == "p/root.img.manifest.xml" {
			manifestStart = c.Time.UnixNano()
		} else {
			lastPartDone = max(lastPartDone, c.Time.Add(c.Duration).UnixNano())
		}
	}
	if manifestStart == 0 || manifestStart < lastPartDone {
		t.Errorf("manifest PUT did not start after every part was answered")
	}

	// Read back through Source and through Download.
	src := NewSource(env.s3, bucket, "p", "root.img")
	m, err := src.Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unbundle(t, m.Bytes(), src), b.Image) {
		t.Error("bundle read from S3 unbundles to a different image")
	}
	dir := t.TempDir()
	dl, err := Download(ctx, env.s3, &DownloadInput{Bucket: bucket, Prefix: "p", Name: "root.img", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dl.ManifestPath), readFile(t, b.ManifestPath)) {
		t.Error("downloaded manifest differs")
	}
	if !bytes.Equal(unbundle(t, readFile(t, dl.ManifestPath), bundle.Dir(dir)), b.Image) {
		t.Error("downloaded bundle unbundles to a different image")
	}

	del, err := Delete(ctx, env.s3, &DeleteInput{Bucket: bucket, Prefix: "p", Name: "root.img"})
	if err != nil {
		t.Fatal(err)
	}
	if !del.FromManifest || len(del.Deleted) != 4 {
		t.Errorf("Delete: %+v", del)
	}
	if got, want := env.list(t, bucket), []string{"p/keep.txt", "p/root.img.part.0.bak"}; !slices.Equal(got, want) {
		t.Errorf("bucket after delete: %v, want %v", got, want)
	}
}

func TestMotoResume(t *testing.T) {
	b := sharedBundle(t, threeParts)
	env := newMotoEnv(t, "us-east-1")
	ctx := context.Background()
	bucket := env.createBucket(t, "us-east-1")
	in := &UploadInput{ManifestPath: b.ManifestPath, Bucket: bucket, Prefix: "r"}
	if _, err := Upload(ctx, env.s3, in); err != nil {
		t.Fatal(err)
	}
	keys := b.partKeys("r")
	// Simulate an interrupted upload: part 1 never arrived, part 2 is
	// corrupt, the manifest was not sent.
	for _, k := range []string{keys[1], "r/root.img.manifest.xml"} {
		if _, err := env.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	env.put(t, bucket, keys[2], []byte("truncated"))

	env.proxy.Reset()
	out, err := Upload(ctx, env.s3, in)
	if err != nil {
		t.Fatal(err)
	}
	var sent []string
	for _, c := range env.proxy.CallsFor("s3", "PutObject") {
		sent = append(sent, c.Key)
	}
	slices.Sort(sent)
	if want := slices.Sorted(slices.Values([]string{keys[1], keys[2], "r/root.img.manifest.xml"})); !slices.Equal(sent, want) {
		t.Errorf("resumed upload sent %v, want %v", sent, want)
	}
	if !slices.Equal(out.Skipped, keys[:1]) {
		t.Errorf("Skipped = %v, want %v", out.Skipped, keys[:1])
	}
	src := NewSource(env.s3, bucket, "r", "root.img")
	if !bytes.Equal(unbundle(t, readFile(t, b.ManifestPath), src), b.Image) {
		t.Error("resumed bundle unbundles to a different image")
	}
}

func TestMotoStreamingUpload(t *testing.T) {
	env := newMotoEnv(t, "us-east-1")
	ctx := context.Background()
	bucket := env.createBucket(t, "us-east-1")
	image := testImage(threeParts, 11)
	w, err := NewWriter(ctx, env.s3, &WriterInput{Bucket: bucket, Prefix: "s"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := bundle.Bundle(ctx, bundleInput(t, "disk.img", image, w), fastBundle)
	if err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if _, err := w.Finish(ctx, out.ManifestName, out.ManifestBytes); err != nil {
		t.Fatal(err)
	}
	for _, c := range env.proxy.CallsFor("s3", "PutObject") {
		if c.Header.Get("X-Amz-Acl") != "aws-exec-read" {
			t.Errorf("PUT %s without the aws-exec-read ACL", c.Key)
		}
	}
	if !bytes.Equal(unbundle(t, out.ManifestBytes, NewSource(env.s3, bucket, "s", "disk.img")), image) {
		t.Error("streamed bundle unbundles to a different image")
	}
}

func TestMotoRegisterDeregister(t *testing.T) {
	b := sharedBundle(t, threeParts)
	const region = "eu-west-1"
	env := newMotoEnv(t, region)
	ctx := context.Background()
	bucket := env.createBucket(t, region)
	if _, err := CheckBucket(ctx, env.s3, &CheckBucketInput{Bucket: bucket, Region: region}); err != nil {
		t.Fatal(err)
	}
	up, err := Upload(ctx, env.s3, &UploadInput{ManifestPath: b.ManifestPath, Bucket: bucket, Prefix: "img", Region: region})
	if err != nil {
		t.Fatal(err)
	}
	in := fullRegisterInput()
	in.ImageLocation, in.Region, in.Name = up.ImageLocation, region, "bundlestore-moto-test"
	reg, err := Register(ctx, env.ec2, in)
	if err != nil {
		t.Fatal(err)
	}

	// moto keeps only the name: assert the request.
	calls := env.proxy.CallsFor("ec2", "RegisterImage")
	if len(calls) != 1 {
		t.Fatalf("%d RegisterImage calls, want 1", len(calls))
	}
	c := calls[0]
	if c.Region != region {
		t.Errorf("RegisterImage sent to %s, want %s", c.Region, region)
	}
	want := map[string]string{
		"ImageLocation":                    bucket + "/img/root.img.manifest.xml",
		"Name":                             "bundlestore-moto-test",
		"Architecture":                     "arm64",
		"VirtualizationType":               "hvm",
		"RootDeviceName":                   "/dev/sda1",
		"BlockDeviceMapping.1.DeviceName":  "/dev/sdb",
		"BlockDeviceMapping.1.VirtualName": "ephemeral0",
		"KernelId":                         "aki-1",
		"RamdiskId":                        "ari-1",
		"EnaSupport":                       "true",
		"SriovNetSupport":                  "simple",
		"BootMode":                         "uefi",
		"TpmSupport":                       "v2.0",
		"ImdsSupport":                      "v2.0",
		"TagSpecification.1.ResourceType":  "image",
		"TagSpecification.1.Tag.1.Key":     "env",
		"TagSpecification.1.Tag.1.Value":   "prod",
	}
	for k, v := range want {
		if got := c.Params.Get(k); got != v {
			t.Errorf("RegisterImage %s = %q, want %q", k, got, v)
		}
	}
	imgs, err := env.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{reg.ImageID}})
	if err != nil || len(imgs.Images) != 1 || aws.ToString(imgs.Images[0].Name) != "bundlestore-moto-test" {
		t.Fatalf("DescribeImages: %v %+v", err, imgs)
	}

	// moto does not keep ImageLocation, so name the bundle explicitly.
	dout, err := Deregister(ctx, env.ec2, env.s3, &DeregisterInput{ImageID: reg.ImageID, Region: region, ImageLocation: up.ImageLocation})
	if err != nil {
		t.Fatal(err)
	}
	if !dout.Deregistered || dout.Bundle == nil || len(dout.Bundle.Deleted) != 4 {
		t.Errorf("Deregister: %+v", dout)
	}
	if got := env.list(t, bucket); len(got) != 0 {
		t.Errorf("bucket still holds %v", got)
	}
	imgs, err = env.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{reg.ImageID}})
	if err == nil && len(imgs.Images) > 0 && imgs.Images[0].State != ec2types.ImageStateDeregistered {
		t.Errorf("image %s still registered", reg.ImageID)
	}
}

func TestMotoCheckBucket(t *testing.T) {
	env := newMotoEnv(t, "eu-west-1")
	ctx := context.Background()
	tests := []struct {
		name        string
		setup       func(t *testing.T, bucket string)
		region      string
		wantProblem BucketProblem
	}{
		{name: "good", region: "eu-west-1"},
		{name: "wrong region", region: "us-east-1", wantProblem: BucketWrongRegion},
		{
			name: "owner enforced", region: "eu-west-1", wantProblem: BucketACLsDisabled,
			setup: func(t *testing.T, bucket string) {
				_, err := env.s3.PutBucketOwnershipControls(ctx, &s3.PutBucketOwnershipControlsInput{Bucket: &bucket, OwnershipControls: &types.OwnershipControls{
					Rules: []types.OwnershipControlsRule{{ObjectOwnership: types.ObjectOwnershipBucketOwnerEnforced}},
				}})
				if err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "sse-kms", region: "eu-west-1", wantProblem: BucketKMSEncryption,
			setup: func(t *testing.T, bucket string) {
				_, err := env.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: &bucket, ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
					Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String("alias/x")}}},
				}})
				if err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bucket := env.createBucket(t, "eu-west-1")
			if tc.setup != nil {
				tc.setup(t, bucket)
			}
			out, err := CheckBucket(ctx, env.s3, &CheckBucketInput{Bucket: bucket, Region: tc.region})
			if tc.wantProblem == "" {
				if err != nil {
					t.Fatal(err)
				}
				if out.Region != "eu-west-1" {
					t.Errorf("Region = %q", out.Region)
				}
				return
			}
			var be *BucketError
			if !errors.As(err, &be) || be.Problem != tc.wantProblem {
				t.Fatalf("CheckBucket: %v, want %s", err, tc.wantProblem)
			}
			t.Log(err)
		})
	}
	_, err := CheckBucket(ctx, env.s3, &CheckBucketInput{Bucket: "no-such-bucket-bundlestore", Region: "eu-west-1"})
	var be *BucketError
	if !errors.As(err, &be) || be.Problem != BucketNotFound {
		t.Errorf("missing bucket: %v", err)
	}
}

// BenchmarkUpload uploads an 8-part bundle (75 MiB image) to moto on
// loopback one part at a time and with the default concurrency; compare the
// ns/op of the two. "direct" talks to moto itself, whose single Python
// process is the bottleneck on a small machine; "latency" puts a proxy in
// front that adds 100 ms to each PUT, as a distant S3 endpoint does, which
// is the cost concurrent uploads hide.
func BenchmarkUpload(b *testing.B) {
	tb := sharedBundle(b, 75<<20)
	m := sharedMoto(b)
	ctx := context.Background()
	total := tb.Manifest.BundledSize + int64(len(readFile(b, tb.ManifestPath)))
	slow := awstest.NewProxy(b, m.Endpoint, awstest.ProxyOptions{
		Fault: func(_ *http.Request, c awstest.Call) *awstest.Fault {
			if c.Action == "PutObject" {
				return awstest.LatencyFault(100 * time.Millisecond)
			}
			return nil
		},
	})
	for _, ep := range []struct{ name, url string }{{"direct", m.Endpoint}, {"latency", slow.URL}} {
		_, s3c := awstest.Clients(ep.url, "us-east-1")
		bucket := "bench-upload-" + ep.name
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil && awserr.Code(err) != "BucketAlreadyOwnedByYou" {
			b.Fatal(err)
		}
		for _, conc := range []int{1, DefaultConcurrency} {
			b.Run(fmt.Sprintf("%s/concurrency=%d", ep.name, conc), func(b *testing.B) {
				b.SetBytes(total)
				for b.Loop() {
					_, err := Upload(ctx, s3c, &UploadInput{ManifestPath: tb.ManifestPath, Bucket: bucket, Prefix: fmt.Sprint("c", conc)},
						func(o *Options) { o.Concurrency = conc; o.DisableResume = true })
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// discardSink is a bundle.PartSink that drops the parts.
type discardSink struct{}

func (discardSink) WritePart(context.Context, *bundle.Part) error    { return nil }
func (discardSink) RenamePart(context.Context, string, string) error { return nil }

// BenchmarkBundleUpload compares bundling alone, uploading alone and the
// streaming form (bundle.Bundle writing into a Writer) for a 40 MiB image
// against moto: streaming should take about the longer of the first two,
// not their sum.
func BenchmarkBundleUpload(b *testing.B) {
	const size = 40 << 20
	tb := sharedBundle(b, size)
	m := sharedMoto(b)
	_, s3c := awstest.Clients(m.Endpoint, "us-east-1")
	ctx := context.Background()
	bucket := "bench-stream"
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil && awserr.Code(err) != "BucketAlreadyOwnedByYou" {
		b.Fatal(err)
	}
	noResume := func(o *Options) { o.DisableResume = true }
	b.Run("bundle", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := bundle.Bundle(ctx, bundleInput(b, "root.img", tb.Image, discardSink{}), fastBundle); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := Upload(ctx, s3c, &UploadInput{ManifestPath: tb.ManifestPath, Bucket: bucket, Prefix: "u"}, noResume); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("streaming", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			w, err := NewWriter(ctx, s3c, &WriterInput{Bucket: bucket, Prefix: "s"}, noResume)
			if err != nil {
				b.Fatal(err)
			}
			out, err := bundle.Bundle(ctx, bundleInput(b, "root.img", tb.Image, w), fastBundle)
			if err != nil {
				w.Abort()
				b.Fatal(err)
			}
			if _, err := w.Finish(ctx, out.ManifestName, out.ManifestBytes); err != nil {
				b.Fatal(err)
			}
		}
	})
}
