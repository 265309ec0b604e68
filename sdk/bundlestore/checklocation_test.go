//go:build unix

package bundlestore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// namedImages answers DescribeImages with images named name, one per
// location ("" for an image without ImageLocation), and checks that the
// request asks for the caller's own images of that name.
func namedImages(t *testing.T, name string, locations ...string) func(context.Context, *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
	t.Helper()
	return func(_ context.Context, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
		if !slices.Equal(in.Owners, []string{"self"}) {
			t.Errorf("DescribeImages owners = %q, want [self]", in.Owners)
		}
		if len(in.Filters) != 1 || aws.ToString(in.Filters[0].Name) != "name" || !slices.Equal(in.Filters[0].Values, []string{name}) {
			t.Errorf("DescribeImages filters = %+v, want name = %q", in.Filters, name)
		}
		out := &ec2.DescribeImagesOutput{}
		for i, l := range locations {
			img := ec2types.Image{
				ImageId:        aws.String("ami-" + string(rune('a'+i)) + "0000000"),
				Name:           aws.String(name),
				State:          ec2types.ImageStateAvailable,
				RootDeviceType: ec2types.DeviceTypeInstanceStore,
			}
			if l != "" {
				img.ImageLocation = aws.String(l)
			}
			out.Images = append(out.Images, img)
		}
		return out, nil
	}
}

func TestCheckLocation(t *testing.T) {
	const manifest = "builds/web/image.manifest.xml"
	tests := []struct {
		name        string
		objects     []string // keys in bucket "bkt"
		replaceName string
		images      []string // ImageLocation of each image named replaceName
		headErr     error
		wantExists  bool
		wantImage   string
		wantErr     []string // "" parts of the error; nil means no error
		wantInUse   bool     // the error is a *BundleExistsError
		wantEC2     int      // DescribeImages calls
	}{
		{name: "free location", objects: []string{"builds/other/image.manifest.xml", "builds/web/other.manifest.xml"}},
		{name: "free location with force makes no EC2 call", replaceName: "web", images: []string{"bkt/" + manifest}},
		{name: "parts without a manifest do not count", objects: []string{"builds/web/image.part.0", "builds/web/image.part.1"}},
		{
			name: "manifest without force", objects: []string{manifest, "builds/web/image.part.0"},
			wantInUse: true,
			wantErr:   []string{"a bundle already exists at s3://bkt/builds/web/image.manifest.xml in us-east-1", "break any image registered from it"},
		},
		{
			name: "manifest of the image being replaced", objects: []string{manifest},
			replaceName: "web", images: []string{"bkt/builds/other/image.manifest.xml", "bkt/" + manifest},
			wantExists: true, wantImage: "ami-b0000000", wantEC2: 1,
		},
		{
			name: "image location reported with s3://", objects: []string{manifest},
			replaceName: "web", images: []string{"s3://bkt/" + manifest},
			wantExists: true, wantImage: "ami-a0000000", wantEC2: 1,
		},
		{
			name: "manifest of another image", objects: []string{manifest},
			replaceName: "web", images: []string{"bkt/builds/old/image.manifest.xml"},
			wantInUse: true, wantEC2: 1,
			wantErr: []string{"s3://bkt/" + manifest, `it is not the bundle of ami-a0000000, the image named "web" being replaced`},
		},
		{
			name: "same key in another bucket", objects: []string{manifest},
			replaceName: "web", images: []string{"elsewhere/" + manifest},
			wantInUse: true, wantEC2: 1,
		},
		{
			name: "image without a location", objects: []string{manifest},
			replaceName: "web", images: []string{""},
			wantInUse: true, wantEC2: 1,
			wantErr: []string{"ami-a0000000"},
		},
		{
			name: "no image of the name", objects: []string{manifest},
			replaceName: "web",
			wantInUse:   true, wantEC2: 1,
			wantErr: []string{`no image named "web" owned by this account is being replaced`},
		},
		{
			name: "access denied", headErr: apiErr("AccessDenied"),
			wantErr: []string{"check whether a bundle exists at s3://bkt/" + manifest, "access denied", "s3:ListBucket", "AccessDenied"},
		},
		{
			name: "other error", headErr: htmlError(500),
			wantErr: []string{"check whether a bundle exists at s3://bkt/" + manifest + " in us-east-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s3f := newFakeS3("bkt")
			for _, k := range tc.objects {
				s3f.Set(k, []byte("x"))
			}
			if tc.headErr != nil {
				s3f.headObject = func(context.Context, *s3.HeadObjectInput) (*s3.HeadObjectOutput, error) { return nil, tc.headErr }
			}
			ec2f := &fakeEC2{describeImages: namedImages(t, tc.replaceName, tc.images...)}
			out, err := CheckLocation(context.Background(), ec2f, s3f, &CheckLocationInput{
				Bucket: "bkt", Prefix: "builds/web", Name: "image", Region: "us-east-1", ReplaceName: tc.replaceName,
			})
			if got := s3f.Calls(); !slices.Equal(got, []string{"HeadObject " + manifest}) {
				t.Errorf("S3 calls = %q, want one HeadObject of the manifest", got)
			}
			if n := len(ec2f.Calls()); n != tc.wantEC2 {
				t.Errorf("%d EC2 calls, want %d: %q", n, tc.wantEC2, ec2f.Calls())
			}
			if tc.wantErr != nil || tc.wantInUse {
				if err == nil {
					t.Fatalf("accepted (%+v), want an error", out)
				}
				if !containsAll(err.Error(), tc.wantErr...) {
					t.Errorf("error %q, want one containing %q", err, tc.wantErr)
				}
				var inUse *BundleExistsError
				if errors.As(err, &inUse) != tc.wantInUse {
					t.Errorf("errors.As(*BundleExistsError) = %v, want %v", !tc.wantInUse, tc.wantInUse)
				}
				if tc.wantInUse && inUse.Location != (Location{Bucket: "bkt", Prefix: "builds/web", Name: "image"}) {
					t.Errorf("error location %+v", inUse.Location)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if out.Exists != tc.wantExists || out.ReplacedImageID != tc.wantImage {
				t.Errorf("out = %+v, want exists %v image %q", out, tc.wantExists, tc.wantImage)
			}
		})
	}
}

func TestCheckLocationInput(t *testing.T) {
	s3f := newFakeS3("bkt")
	tests := []struct {
		name string
		ec2  DescribeImagesAPI
		in   *CheckLocationInput
		want string
	}{
		{name: "nil input", in: nil, want: "bucket and bundle name are required"},
		{name: "no bucket", in: &CheckLocationInput{Name: "image"}, want: "bucket and bundle name are required"},
		{name: "bad name", in: &CheckLocationInput{Bucket: "bkt", Name: "a/b"}, want: "a/b"},
		{name: "replace without EC2", in: &CheckLocationInput{Bucket: "bkt", Name: "image", ReplaceName: "web"}, want: "an EC2 client is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckLocation(context.Background(), tc.ec2, s3f, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if calls := s3f.Calls(); len(calls) != 0 {
		t.Errorf("invalid input made S3 calls: %q", calls)
	}
}

// TestMotoCheckLocation checks that S3's answers to HeadObject, through the
// real client, are told apart: a missing manifest (404 without a body) is a
// free location, an existing one is in use.
func TestMotoCheckLocation(t *testing.T) {
	env := newMotoEnv(t, "us-east-1")
	ctx := context.Background()
	bucket := env.createBucket(t, "us-east-1")
	in := &CheckLocationInput{Bucket: bucket, Prefix: "fixed", Name: "image", Region: "us-east-1"}
	env.put(t, bucket, "fixed/image.part.0", []byte("a part left by a failed upload"))

	env.proxy.Reset()
	out, err := CheckLocation(ctx, env.ec2, env.s3, in)
	if err != nil || out.Exists {
		t.Fatalf("free location: out %+v, err %v", out, err)
	}
	calls := env.proxy.Calls()
	if len(calls) != 1 || calls[0].Action != "HeadObject" || calls[0].Key != "fixed/image.manifest.xml" {
		t.Errorf("calls = %v, want one HeadObject of the manifest", calls)
	}

	env.put(t, bucket, "fixed/image.manifest.xml", []byte("<manifest/>"))
	_, err = CheckLocation(ctx, env.ec2, env.s3, in)
	var inUse *BundleExistsError
	if !errors.As(err, &inUse) || inUse.Location.ManifestKey() != "fixed/image.manifest.xml" {
		t.Errorf("existing manifest: err %v, want a *BundleExistsError", err)
	}
}
