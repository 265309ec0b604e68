package distribute

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Narrow, single-purpose client interfaces. *ec2.Client satisfies every one
// of them but DescribeKeyAPI, which *kms.Client satisfies (see the checks
// below); tests substitute fakes.
type (
	// CopyImageAPI is the client behaviour Copy needs to copy an AMI into
	// the client's region.
	CopyImageAPI interface {
		CopyImage(ctx context.Context, in *ec2.CopyImageInput, optFns ...func(*ec2.Options)) (*ec2.CopyImageOutput, error)
	}
	// DescribeImagesAPI is the client behaviour Preflight, Copy, Share and
	// Retain need to describe AMIs.
	DescribeImagesAPI interface {
		DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	}
	// DescribeRegionsAPI is the client behaviour Preflight needs to list
	// the regions enabled for the account.
	DescribeRegionsAPI interface {
		DescribeRegions(ctx context.Context, in *ec2.DescribeRegionsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
	}
	// ModifyImageAttributeAPI is the client behaviour Share needs to change
	// the launch permissions of an AMI.
	ModifyImageAttributeAPI interface {
		ModifyImageAttribute(ctx context.Context, in *ec2.ModifyImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error)
	}
	// ModifySnapshotAttributeAPI is the client behaviour Share needs to
	// change the create-volume permissions of a snapshot.
	ModifySnapshotAttributeAPI interface {
		ModifySnapshotAttribute(ctx context.Context, in *ec2.ModifySnapshotAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error)
	}
	// CreateTagsAPI is the client behaviour Copy and Distribute need to tag
	// AMIs and snapshots.
	CreateTagsAPI interface {
		CreateTags(ctx context.Context, in *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	}
	// EnableImageDeprecationAPI is the client behaviour Deprecate needs to
	// set an AMI's deprecation time.
	EnableImageDeprecationAPI interface {
		EnableImageDeprecation(ctx context.Context, in *ec2.EnableImageDeprecationInput, optFns ...func(*ec2.Options)) (*ec2.EnableImageDeprecationOutput, error)
	}
	// EnableImageDeregistrationProtectionAPI is the client behaviour Protect
	// needs to protect an AMI from deregistration.
	EnableImageDeregistrationProtectionAPI interface {
		EnableImageDeregistrationProtection(ctx context.Context, in *ec2.EnableImageDeregistrationProtectionInput, optFns ...func(*ec2.Options)) (*ec2.EnableImageDeregistrationProtectionOutput, error)
	}
	// DisableImageDeregistrationProtectionAPI is the client behaviour
	// Unprotect needs to lift deregistration protection.
	DisableImageDeregistrationProtectionAPI interface {
		DisableImageDeregistrationProtection(ctx context.Context, in *ec2.DisableImageDeregistrationProtectionInput, optFns ...func(*ec2.Options)) (*ec2.DisableImageDeregistrationProtectionOutput, error)
	}
	// DeregisterImageAPI is the client behaviour Retain and the cleanup of
	// Copy need to deregister an AMI.
	DeregisterImageAPI interface {
		DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
	}
	// DescribeSnapshotsAPI is the client behaviour Preflight and Share need
	// to describe EBS snapshots (their KMS keys).
	DescribeSnapshotsAPI interface {
		DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	}
	// DescribeKeyAPI is the client behaviour Preflight and Share need from
	// KMS (Options.KMS) to tell who manages a key.
	DescribeKeyAPI interface {
		DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	}
	// DeleteSnapshotAPI is the client behaviour Retain and the cleanup of
	// Copy need to delete an EBS snapshot.
	DeleteSnapshotAPI interface {
		DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
	}
	// DescribeInstancesAPI is the client behaviour Retain needs to find
	// AMIs in use by instances.
	DescribeInstancesAPI interface {
		DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	}
	// DescribeImageAttributeAPI is the client behaviour Distribute needs to
	// read an AMI's launch permissions.
	DescribeImageAttributeAPI interface {
		DescribeImageAttribute(ctx context.Context, in *ec2.DescribeImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImageAttributeOutput, error)
	}
	// DescribeSnapshotAttributeAPI is the client behaviour Distribute needs
	// to read a snapshot's create-volume permissions.
	DescribeSnapshotAttributeAPI interface {
		DescribeSnapshotAttribute(ctx context.Context, in *ec2.DescribeSnapshotAttributeInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotAttributeOutput, error)
	}
	// DescribeLaunchTemplateVersionsAPI is the client behaviour Retain and
	// Publish need to list launch template versions (Retain finds the AMIs
	// they reference).
	DescribeLaunchTemplateVersionsAPI interface {
		DescribeLaunchTemplateVersions(ctx context.Context, in *ec2.DescribeLaunchTemplateVersionsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
	}
)

// Compositions used by the operations of this package.
type (
	// ShareAPI is the client behaviour Share needs.
	ShareAPI interface {
		DescribeImagesAPI
		DescribeSnapshotsAPI
		ModifyImageAttributeAPI
		ModifySnapshotAttributeAPI
	}
	// TagAPI is the client behaviour Copy and Distribute need to tag an AMI
	// and its snapshots.
	TagAPI interface {
		DescribeImagesAPI
		CreateTagsAPI
	}
	// DeprecateAPI is the client behaviour Deprecate needs.
	DeprecateAPI interface {
		EnableImageDeprecationAPI
	}
	// ProtectAPI is the client behaviour Protect needs (disabling is used by
	// the cleanup of Copy).
	ProtectAPI interface {
		EnableImageDeregistrationProtectionAPI
		DisableImageDeregistrationProtectionAPI
	}
	// UnprotectAPI is the client behaviour Unprotect needs.
	UnprotectAPI interface {
		DisableImageDeregistrationProtectionAPI
	}
	// DeregisterAPI is the client behaviour Retain and the cleanup of Copy
	// need to remove an AMI and its snapshots.
	DeregisterAPI interface {
		DescribeImagesAPI
		DeregisterImageAPI
		DeleteSnapshotAPI
	}
	// RetainAPI is the client behaviour Retain needs in each region.
	RetainAPI interface {
		DeregisterAPI
		DescribeInstancesAPI
		DescribeLaunchTemplateVersionsAPI
	}
	// PreflightAPI is the client behaviour Preflight needs in each region:
	// the source AMI, the keys of its snapshots, the enabled regions and
	// the AMI names in use.
	PreflightAPI interface {
		DescribeImagesAPI
		DescribeSnapshotsAPI
		DescribeRegionsAPI
	}
	// CopyAPI is the client behaviour Copy needs in each region: its
	// pre-flight, the copies, their sharing, tags, deprecation and
	// protection, and the removal of copies on failure.
	CopyAPI interface {
		PreflightAPI
		CopyImageAPI
		ShareAPI
		TagAPI
		DeprecateAPI
		ProtectAPI
		DeregisterAPI
	}
	// API is the client behaviour Distribute needs from one region's
	// client: what Copy, Retain and Publish need, and the reads of what was
	// shared.
	API interface {
		CopyImageAPI
		DescribeRegionsAPI
		ShareAPI
		TagAPI
		DeprecateAPI
		ProtectAPI
		RetainAPI
		LaunchTemplateAPI
		DescribeImageAttributeAPI
		DescribeSnapshotAttributeAPI
	}
)

// ClientFunc returns the client for a region. It is called once or more per
// region and must be safe for concurrent use; caching clients is up to the
// caller (an awscfg.Session already caches them). The operations of this
// package take any such function whose client has the methods they need,
// such as an awscfg.Session's EC2 method value:
//
//	distribute.Copy(ctx, sess.EC2, in)
type ClientFunc func(region string) API

// PerRegion adapts a function returning a concrete client, such as the
// method value of an awscfg.Session's EC2 method, to a ClientFunc, for a
// caller that keeps one client function for every operation.
func PerRegion[C API](f func(region string) C) ClientFunc {
	return func(region string) API { return f(region) }
}

var (
	_ CopyImageAPI                            = (*ec2.Client)(nil)
	_ DescribeImagesAPI                       = (*ec2.Client)(nil)
	_ DescribeRegionsAPI                      = (*ec2.Client)(nil)
	_ ModifyImageAttributeAPI                 = (*ec2.Client)(nil)
	_ ModifySnapshotAttributeAPI              = (*ec2.Client)(nil)
	_ CreateTagsAPI                           = (*ec2.Client)(nil)
	_ EnableImageDeprecationAPI               = (*ec2.Client)(nil)
	_ EnableImageDeregistrationProtectionAPI  = (*ec2.Client)(nil)
	_ DisableImageDeregistrationProtectionAPI = (*ec2.Client)(nil)
	_ DeregisterImageAPI                      = (*ec2.Client)(nil)
	_ DescribeSnapshotsAPI                    = (*ec2.Client)(nil)
	_ DeleteSnapshotAPI                       = (*ec2.Client)(nil)
	_ DescribeInstancesAPI                    = (*ec2.Client)(nil)
	_ DescribeImageAttributeAPI               = (*ec2.Client)(nil)
	_ DescribeSnapshotAttributeAPI            = (*ec2.Client)(nil)
	_ DescribeLaunchTemplateVersionsAPI       = (*ec2.Client)(nil)

	_ ShareAPI      = (*ec2.Client)(nil)
	_ TagAPI        = (*ec2.Client)(nil)
	_ DeprecateAPI  = (*ec2.Client)(nil)
	_ ProtectAPI    = (*ec2.Client)(nil)
	_ UnprotectAPI  = (*ec2.Client)(nil)
	_ DeregisterAPI = (*ec2.Client)(nil)
	_ RetainAPI     = (*ec2.Client)(nil)
	_ PreflightAPI  = (*ec2.Client)(nil)
	_ CopyAPI       = (*ec2.Client)(nil)
	_ API           = (*ec2.Client)(nil)

	_ DescribeKeyAPI = (*kms.Client)(nil)
)
