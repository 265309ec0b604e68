package bundlestore

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Client interfaces: each names only the calls its operations make.
// *s3.Client and *ec2.Client satisfy them (see the checks below); tests
// substitute fakes.

// PutObjectAPI is the client behaviour Upload and Writer need to store
// objects (S3 PutObject).
type PutObjectAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// HeadObjectAPI is the client behaviour CheckLocation needs (S3
// HeadObject); Upload and Writer use it to find parts already stored.
type HeadObjectAPI interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// GetObjectAPI is the client behaviour GetManifest, Download and Source
// need (S3 GetObject).
type GetObjectAPI interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// DeleteObjectAPI is the client behaviour Upload and Writer need to remove
// objects (S3 DeleteObject).
type DeleteObjectAPI interface {
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// DeleteObjectsAPI is the client behaviour Delete needs to remove objects
// in batches (S3 DeleteObjects).
type DeleteObjectsAPI interface {
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
}

// CopyObjectAPI is the client behaviour Upload and Writer need to rename
// parts (S3 CopyObject).
type CopyObjectAPI interface {
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
}

// UploadAPI is the client behaviour [Upload] and [Writer] need: PutObject
// to store objects, HeadObject to find parts already stored intact
// (resume), CopyObject and DeleteObject to rename parts (see
// bundle.PartSink), and DeleteObject to remove parts and undo uploads
// recorded in a ledger.
type UploadAPI interface {
	PutObjectAPI
	HeadObjectAPI
	CopyObjectAPI
	DeleteObjectAPI
}

// DeleteAPI is the client behaviour [Delete] needs: GetObject to read the
// manifest, ListObjectsV2 to find the bundle's objects when the manifest is
// gone, and DeleteObjects to remove them.
type DeleteAPI interface {
	GetObjectAPI
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObjectsAPI
}

// BucketAPI is the client behaviour [CheckBucket] needs.
type BucketAPI interface {
	GetBucketLocation(ctx context.Context, in *s3.GetBucketLocationInput, optFns ...func(*s3.Options)) (*s3.GetBucketLocationOutput, error)
	HeadBucket(ctx context.Context, in *s3.HeadBucketInput, optFns ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	GetBucketOwnershipControls(ctx context.Context, in *s3.GetBucketOwnershipControlsInput, optFns ...func(*s3.Options)) (*s3.GetBucketOwnershipControlsOutput, error)
	GetBucketEncryption(ctx context.Context, in *s3.GetBucketEncryptionInput, optFns ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
}

// RegisterImageAPI is the client behaviour Register needs to register an
// image (EC2 RegisterImage).
type RegisterImageAPI interface {
	RegisterImage(ctx context.Context, in *ec2.RegisterImageInput, optFns ...func(*ec2.Options)) (*ec2.RegisterImageOutput, error)
}

// DeregisterImageAPI is the client behaviour Register and Deregister need
// to deregister an image (EC2 DeregisterImage).
type DeregisterImageAPI interface {
	DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
}

// DescribeImagesAPI is the client behaviour CheckLocation needs (EC2
// DescribeImages); Register and Deregister use it too.
type DescribeImagesAPI interface {
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
}

// RegisterAPI is the client behaviour [Register] needs: RegisterImage,
// DeregisterImage to undo the registration when it is recorded in a
// ledger, and DescribeImages to find an image a registration whose answer
// was lost made.
type RegisterAPI interface {
	RegisterImageAPI
	DeregisterImageAPI
	DescribeImagesAPI
}

// DeregisterAPI is the client behaviour [Deregister] needs from EC2.
type DeregisterAPI interface {
	DescribeImagesAPI
	DeregisterImageAPI
}

var (
	_ PutObjectAPI     = (*s3.Client)(nil)
	_ HeadObjectAPI    = (*s3.Client)(nil)
	_ GetObjectAPI     = (*s3.Client)(nil)
	_ DeleteObjectAPI  = (*s3.Client)(nil)
	_ DeleteObjectsAPI = (*s3.Client)(nil)
	_ CopyObjectAPI    = (*s3.Client)(nil)
	_ UploadAPI        = (*s3.Client)(nil)
	_ DeleteAPI        = (*s3.Client)(nil)
	_ BucketAPI        = (*s3.Client)(nil)

	_ RegisterImageAPI   = (*ec2.Client)(nil)
	_ DeregisterImageAPI = (*ec2.Client)(nil)
	_ DescribeImagesAPI  = (*ec2.Client)(nil)
	_ RegisterAPI        = (*ec2.Client)(nil)
	_ DeregisterAPI      = (*ec2.Client)(nil)
)
