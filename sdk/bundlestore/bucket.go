package bundlestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

// BucketProblem is what makes a bucket unusable for bundles.
type BucketProblem string

// Problems [CheckBucket] and uploads report in a *BucketError.
const (
	// BucketNotFound: the bucket does not exist.
	BucketNotFound BucketProblem = "not-found"
	// BucketAccessDenied: the credentials may not use the bucket.
	BucketAccessDenied BucketProblem = "access-denied"
	// BucketWrongRegion: the bucket is not in the region where the image
	// is registered.
	BucketWrongRegion BucketProblem = "wrong-region"
	// BucketACLsDisabled: the bucket's object ownership is "bucket owner
	// enforced", so it refuses the aws-exec-read ACL EC2 needs.
	BucketACLsDisabled BucketProblem = "acls-disabled"
	// BucketKMSEncryption: the bucket encrypts new objects with SSE-KMS,
	// which EC2 cannot read when it registers or launches the image.
	BucketKMSEncryption BucketProblem = "sse-kms"
)

// BucketError reports a bucket that cannot hold a bundle, in words a user
// can act on. Test for it with errors.As.
type BucketError struct {
	Bucket  string
	Problem BucketProblem
	// BucketRegion is the bucket's region, when known.
	BucketRegion string
	// Region is the region the image is registered in.
	Region string
	// KMSKeyID is the bucket's default KMS key (BucketKMSEncryption).
	KMSKeyID string
	// Err is the underlying AWS error, if any.
	Err error
}

// Error says what makes the bucket unusable and what to change.
func (e *BucketError) Error() string {
	var s string
	switch e.Problem {
	case BucketNotFound:
		s = fmt.Sprintf("bucket %q does not exist; create it in %s or name an existing bucket", e.Bucket, orUnknown(e.Region))
	case BucketAccessDenied:
		s = fmt.Sprintf("access to bucket %q is denied with these credentials", e.Bucket)
	case BucketWrongRegion:
		s = fmt.Sprintf("bucket %q is in %s, but the image is registered in %s; use a bucket in %s", e.Bucket, e.BucketRegion, e.Region, e.Region)
	case BucketACLsDisabled:
		s = fmt.Sprintf("bucket %q has ACLs disabled (object ownership \"bucket owner enforced\"), "+
			"but bundle objects need the aws-exec-read ACL so that EC2 can read them; "+
			"set the bucket's object ownership to ObjectWriter or BucketOwnerPreferred "+
			"(aws s3api put-bucket-ownership-controls --bucket %s --ownership-controls 'Rules=[{ObjectOwnership=BucketOwnerPreferred}]') "+
			"or use another bucket", e.Bucket, e.Bucket)
	case BucketKMSEncryption:
		key := ""
		if e.KMSKeyID != "" {
			key = " with key " + e.KMSKeyID
		}
		s = fmt.Sprintf("bucket %q encrypts new objects with SSE-KMS by default%s, and EC2 cannot read an SSE-KMS encrypted bundle; "+
			"use a bucket whose default encryption is SSE-S3 (AES256)", e.Bucket, key)
	default:
		s = fmt.Sprintf("bucket %q cannot be used: %s", e.Bucket, e.Problem)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err, the underlying AWS error, if any.
func (e *BucketError) Unwrap() error { return e.Err }

func orUnknown(s string) string {
	if s == "" {
		return "the build region"
	}
	return s
}

// CheckBucketInput names the bucket to check.
type CheckBucketInput struct {
	// Bucket is the bucket's name. Required.
	Bucket string
	// Region is the region the image will be registered in; the bucket
	// must be there. Empty skips the region comparison.
	Region string
}

// CheckBucketOutput is the result of CheckBucket: a usable bucket.
type CheckBucketOutput struct {
	// Region is the bucket's region.
	Region string
	// ObjectOwnership is the bucket's object ownership setting, when the
	// service reports one.
	ObjectOwnership string
	// DefaultEncryption is the bucket's default encryption algorithm, when
	// the service reports one (e.g. "AES256").
	DefaultEncryption string
}

// CheckBucket checks, before anything is uploaded, that a bucket can hold a
// bundle for an image registered in in.Region: the bucket exists and is
// reachable, it is in that region, its ACLs are enabled (object ownership
// other than BucketOwnerEnforced) and its default encryption is not SSE-KMS.
// A failed check is a *BucketError worded for the user. Settings the
// service does not report (not configured, or not implemented by an
// emulator) pass. api should be a client for in.Region.
func CheckBucket(ctx context.Context, api BucketAPI, in *CheckBucketInput, optFns ...func(*Options)) (*CheckBucketOutput, error) {
	if in == nil || in.Bucket == "" {
		return nil, errors.New("bundlestore: check bucket: bucket is required")
	}
	opts := resolveOptions(optFns)
	b := aws.String(in.Bucket)
	out := &CheckBucketOutput{}

	loc, err := api.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: b})
	switch {
	case err == nil:
		out.Region = NormalizeBucketRegion(string(loc.LocationConstraint))
	case awserr.Code(err) == "NoSuchBucket":
		return nil, &BucketError{Bucket: in.Bucket, Problem: BucketNotFound, Region: in.Region}
	case isForbidden(err):
		// GetBucketLocation may be denied while the bucket is usable;
		// HeadBucket also reports the region.
		head, herr := api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b})
		if herr != nil {
			switch {
			case isNotFound(herr):
				return nil, &BucketError{Bucket: in.Bucket, Problem: BucketNotFound, Region: in.Region}
			case isForbidden(herr):
				return nil, &BucketError{Bucket: in.Bucket, Problem: BucketAccessDenied, Region: in.Region, Err: herr}
			default:
				return nil, fmt.Errorf("bundlestore: check bucket %q: %w", in.Bucket, herr)
			}
		}
		out.Region = aws.ToString(head.BucketRegion)
	default:
		return nil, fmt.Errorf("bundlestore: check bucket %q: get its region: %w", in.Bucket, err)
	}
	if in.Region != "" && out.Region != "" && out.Region != in.Region {
		return nil, &BucketError{Bucket: in.Bucket, Problem: BucketWrongRegion, BucketRegion: out.Region, Region: in.Region}
	}

	// The two settings are read at once; a problem with the ownership is
	// told first when both have one.
	var ownErr, encErr error
	var g errgroup.Group
	g.Go(func() error { out.ObjectOwnership, ownErr = checkOwnership(ctx, api, in, out.Region, opts); return nil })
	g.Go(func() error {
		out.DefaultEncryption, encErr = checkEncryption(ctx, api, in, out.Region, opts)
		return nil
	})
	_ = g.Wait()
	if ownErr != nil {
		return nil, ownErr
	}
	if encErr != nil {
		return nil, encErr
	}
	return out, nil
}

// checkOwnership refuses a bucket whose ACLs are disabled
// (BucketOwnerEnforced) and returns its object ownership setting.
func checkOwnership(ctx context.Context, api BucketAPI, in *CheckBucketInput, region string, opts Options) (string, error) {
	own, err := api.GetBucketOwnershipControls(ctx, &s3.GetBucketOwnershipControlsInput{Bucket: aws.String(in.Bucket)})
	switch {
	case err == nil:
		var setting string
		if own.OwnershipControls != nil {
			for _, r := range own.OwnershipControls.Rules {
				setting = string(r.ObjectOwnership)
				if r.ObjectOwnership == types.ObjectOwnershipBucketOwnerEnforced {
					return setting, &BucketError{Bucket: in.Bucket, Problem: BucketACLsDisabled, BucketRegion: region, Region: in.Region}
				}
			}
		}
		return setting, nil
	case isNotConfigured(err, "OwnershipControlsNotFoundError", "NoSuchOwnershipControls"):
		return "", nil
	case isForbidden(err):
		opts.logf("cannot read the object ownership of bucket %q (access denied); assuming ACLs are enabled", in.Bucket)
		return "", nil
	default:
		return "", fmt.Errorf("bundlestore: check bucket %q in %s: get object ownership: %w", in.Bucket, region, err)
	}
}

// checkEncryption refuses a bucket encrypted with SSE-KMS by default and
// returns its default encryption algorithm.
func checkEncryption(ctx context.Context, api BucketAPI, in *CheckBucketInput, region string, opts Options) (string, error) {
	enc, err := api.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(in.Bucket)})
	switch {
	case err == nil:
		var alg string
		if enc.ServerSideEncryptionConfiguration != nil {
			for _, r := range enc.ServerSideEncryptionConfiguration.Rules {
				d := r.ApplyServerSideEncryptionByDefault
				if d == nil {
					continue
				}
				alg = string(d.SSEAlgorithm)
				switch d.SSEAlgorithm {
				case types.ServerSideEncryptionAwsKms, types.ServerSideEncryptionAwsKmsDsse:
					return alg, &BucketError{Bucket: in.Bucket, Problem: BucketKMSEncryption, BucketRegion: region, Region: in.Region, KMSKeyID: aws.ToString(d.KMSMasterKeyID)}
				}
			}
		}
		return alg, nil
	case isNotConfigured(err, "ServerSideEncryptionConfigurationNotFoundError"):
		return "", nil
	case isForbidden(err):
		opts.logf("cannot read the default encryption of bucket %q (access denied); assuming it is not SSE-KMS", in.Bucket)
		return "", nil
	default:
		return "", fmt.Errorf("bundlestore: check bucket %q in %s: get default encryption: %w", in.Bucket, region, err)
	}
}

// isNotConfigured reports whether err says the bucket setting is absent
// (one of codes) or the service does not implement it.
func isNotConfigured(err error, codes ...string) bool {
	c := awserr.Code(err)
	for _, code := range codes {
		if c == code {
			return true
		}
	}
	return isNotImplemented(err)
}

// NormalizeBucketRegion turns a GetBucketLocation LocationConstraint into a
// region name: empty means us-east-1 and the legacy "EU" means eu-west-1.
func NormalizeBucketRegion(constraint string) string {
	switch constraint {
	case "":
		return "us-east-1"
	case "EU":
		return "eu-west-1"
	}
	return constraint
}
