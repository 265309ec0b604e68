//go:build unix

package bundlestore

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// htmlError is what the SDK returns for an emulator's HTML error page.
func htmlError(status int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      errors.New("failed to decode response body"),
	}}
}

func location(c types.BucketLocationConstraint) func(context.Context, *s3.GetBucketLocationInput) (*s3.GetBucketLocationOutput, error) {
	return func(context.Context, *s3.GetBucketLocationInput) (*s3.GetBucketLocationOutput, error) {
		return &s3.GetBucketLocationOutput{LocationConstraint: c}, nil
	}
}

func ownership(o types.ObjectOwnership) func(context.Context, *s3.GetBucketOwnershipControlsInput) (*s3.GetBucketOwnershipControlsOutput, error) {
	return func(context.Context, *s3.GetBucketOwnershipControlsInput) (*s3.GetBucketOwnershipControlsOutput, error) {
		return &s3.GetBucketOwnershipControlsOutput{OwnershipControls: &types.OwnershipControls{Rules: []types.OwnershipControlsRule{{ObjectOwnership: o}}}}, nil
	}
}

func encryption(alg types.ServerSideEncryption, key string) func(context.Context, *s3.GetBucketEncryptionInput) (*s3.GetBucketEncryptionOutput, error) {
	return func(context.Context, *s3.GetBucketEncryptionInput) (*s3.GetBucketEncryptionOutput, error) {
		d := &types.ServerSideEncryptionByDefault{SSEAlgorithm: alg}
		if key != "" {
			d.KMSMasterKeyID = &key
		}
		return &s3.GetBucketEncryptionOutput{ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
			Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: d}},
		}}, nil
	}
}

func TestCheckBucket(t *testing.T) {
	tests := []struct {
		name        string
		bucket      string
		region      string
		setup       func(f *fakeS3)
		wantRegion  string
		wantProblem BucketProblem
		wantMsg     []string
		wantErr     bool
	}{
		{name: "us-east-1 as empty constraint", bucket: "bkt", region: "us-east-1", wantRegion: "us-east-1"},
		{name: "EU constraint", bucket: "bkt", region: "eu-west-1", setup: func(f *fakeS3) { f.getBucketLocation = location("EU") }, wantRegion: "eu-west-1"},
		{name: "no region to compare", bucket: "bkt", setup: func(f *fakeS3) { f.getBucketLocation = location("ap-south-1") }, wantRegion: "ap-south-1"},
		{
			name: "wrong region", bucket: "bkt", region: "us-west-2",
			setup:       func(f *fakeS3) { f.getBucketLocation = location("eu-central-1") },
			wantProblem: BucketWrongRegion,
			wantMsg:     []string{`bucket "bkt" is in eu-central-1, but the image is registered in us-west-2; use a bucket in us-west-2`},
		},
		{
			name: "missing", bucket: "nope", region: "us-east-1",
			wantProblem: BucketNotFound, wantMsg: []string{`bucket "nope" does not exist`},
		},
		{
			name: "location denied, head finds region", bucket: "bkt", region: "us-east-1",
			setup: func(f *fakeS3) {
				f.getBucketLocation = func(context.Context, *s3.GetBucketLocationInput) (*s3.GetBucketLocationOutput, error) {
					return nil, apiErr("AccessDenied")
				}
			},
			wantRegion: "us-east-1",
		},
		{
			name: "access denied", bucket: "bkt", region: "us-east-1",
			setup: func(f *fakeS3) {
				f.getBucketLocation = func(context.Context, *s3.GetBucketLocationInput) (*s3.GetBucketLocationOutput, error) {
					return nil, apiErr("AccessDenied")
				}
				f.headBucket = func(context.Context, *s3.HeadBucketInput) (*s3.HeadBucketOutput, error) {
					return nil, apiErr("Forbidden")
				}
			},
			wantProblem: BucketAccessDenied, wantMsg: []string{`access to bucket "bkt" is denied`},
		},
		{
			name: "ACLs disabled", bucket: "bkt", region: "us-east-1",
			setup:       func(f *fakeS3) { f.getBucketOwnershipControls = ownership(types.ObjectOwnershipBucketOwnerEnforced) },
			wantProblem: BucketACLsDisabled,
			wantMsg:     []string{"ACLs disabled", "aws-exec-read", "ObjectWriter or BucketOwnerPreferred"},
		},
		{name: "ACLs enabled", bucket: "bkt", region: "us-east-1", setup: func(f *fakeS3) { f.getBucketOwnershipControls = ownership(types.ObjectOwnershipBucketOwnerPreferred) }, wantRegion: "us-east-1"},
		{
			name: "ownership controls not implemented", bucket: "bkt", region: "us-east-1",
			setup: func(f *fakeS3) {
				f.getBucketOwnershipControls = func(context.Context, *s3.GetBucketOwnershipControlsInput) (*s3.GetBucketOwnershipControlsOutput, error) {
					return nil, htmlError(500)
				}
				f.getBucketEncryption = func(context.Context, *s3.GetBucketEncryptionInput) (*s3.GetBucketEncryptionOutput, error) {
					return nil, apiErr("NotImplemented")
				}
			},
			wantRegion: "us-east-1",
		},
		{
			name: "ownership read fails", bucket: "bkt", region: "us-east-1",
			setup: func(f *fakeS3) {
				f.getBucketOwnershipControls = func(context.Context, *s3.GetBucketOwnershipControlsInput) (*s3.GetBucketOwnershipControlsOutput, error) {
					return nil, apiErr("SlowDown")
				}
			},
			wantErr: true, wantMsg: []string{"bkt", "us-east-1", "SlowDown"},
		},
		{
			name: "ACLs disabled and SSE-KMS: the ownership is told", bucket: "bkt", region: "us-east-1",
			setup: func(f *fakeS3) {
				f.getBucketOwnershipControls = ownership(types.ObjectOwnershipBucketOwnerEnforced)
				f.getBucketEncryption = encryption(types.ServerSideEncryptionAwsKms, "alias/bundles")
			},
			wantProblem: BucketACLsDisabled,
		},
		{
			name: "SSE-KMS default", bucket: "bkt", region: "us-east-1",
			setup:       func(f *fakeS3) { f.getBucketEncryption = encryption(types.ServerSideEncryptionAwsKms, "alias/bundles") },
			wantProblem: BucketKMSEncryption,
			wantMsg:     []string{"SSE-KMS", "alias/bundles", "SSE-S3"},
		},
		{
			name: "DSSE-KMS default", bucket: "bkt", region: "us-east-1",
			setup:       func(f *fakeS3) { f.getBucketEncryption = encryption(types.ServerSideEncryptionAwsKmsDsse, "") },
			wantProblem: BucketKMSEncryption,
		},
		{name: "SSE-S3 default", bucket: "bkt", region: "us-east-1", setup: func(f *fakeS3) { f.getBucketEncryption = encryption(types.ServerSideEncryptionAes256, "") }, wantRegion: "us-east-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3("bkt")
			if tc.setup != nil {
				tc.setup(f)
			}
			out, err := CheckBucket(context.Background(), f, &CheckBucketInput{Bucket: tc.bucket, Region: tc.region})
			if tc.wantProblem == "" && !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if out.Region != tc.wantRegion {
					t.Errorf("Region = %q, want %q", out.Region, tc.wantRegion)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckBucket succeeded")
			}
			if tc.wantProblem != "" {
				var be *BucketError
				if !errors.As(err, &be) || be.Problem != tc.wantProblem {
					t.Fatalf("error %v, want BucketError %s", err, tc.wantProblem)
				}
			}
			if !containsAll(err.Error(), tc.wantMsg...) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}
}

func TestNormalizeBucketRegion(t *testing.T) {
	for in, want := range map[string]string{"": "us-east-1", "EU": "eu-west-1", "eu-west-1": "eu-west-1", "us-west-2": "us-west-2"} {
		if got := NormalizeBucketRegion(in); got != want {
			t.Errorf("NormalizeBucketRegion(%q) = %q, want %q", in, got, want)
		}
	}
}
