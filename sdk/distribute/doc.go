// Package distribute copies, shares, tags, deprecates and prunes AMIs
// across regions, on the AWS SDK for Go v2 and nothing else.
//
// The operations follow the SDK's shape: a context first, then the client
// (a narrow interface for one-region operations, a function
// func(region string) C returning each region's client for multi-region
// ones), then an input struct and functional options that modify
// [Options]:
//
//   - Distribute is a whole distribution of a build's AMIs, as the
//     ami-distribute post-processor and the builders' ami_regions and
//     sharing options run it: pre-flight checks for every AMI, the copies
//     (Copy), then sharing, tagging and deprecating the build's own AMIs,
//     then deregistration protection; any failure or cancellation removes
//     every copy in every region, and on success the copies are handed to
//     the caller's ledger.
//     With DistributeInput.Accounts, other accounts get copies of their
//     own: the source is shared with each account for the time of the
//     copies, which the account makes with its own credentials
//     (Options.Accounts, typically a role assumed with
//     awscfg.Session.Assume), so the account owns them. With
//     DistributeInput.Parameters and LaunchTemplates, and the accounts'
//     own, SSM parameters and launch templates are pointed at the new
//     AMIs (Publish). A rollback undoes all of it: parameters get their
//     previous values, templates their previous default version, the
//     versions made are deleted, every account's copies removed and the
//     sharing revoked.
//   - Publish writes SSM parameters (data type aws:ec2:image) and launch
//     template versions for AMIs that exist already, remembering what it
//     replaced, and undoes everything on failure or cancellation;
//     PreflightPublish checks that it can succeed without changing
//     anything.
//   - Copy copies an AMI to many regions, all at once unless
//     CopyInput.Concurrency caps them, and shares, tags and deprecates each
//     copy as soon as it is available. CopyImage carries a ClientToken made from the run's ID
//     (CopyInput.RunID) and the copy, so retries within a run never make a
//     second copy and a new run never gets an earlier run's copy back. When a region fails, the others are
//     cancelled and every copy already made is removed with its snapshots
//     (unless CopyInput.KeepOnFailure); the caller gets one Result per
//     region and an error joining the failures.
//   - Preflight checks, without changing anything, that a Copy can succeed:
//     regions enabled, names free in every target region, sharing allowed
//     for the encryption each copy will have.
//   - Share grants and revokes launch permissions (accounts, "all",
//     organizations, organizational units) and snapshot create-volume
//     permissions, refusing what AWS refuses (CheckSharing).
//   - Deprecate sets deprecation times; Protect turns deregistration
//     protection on and Unprotect turns it off again.
//   - Retain keeps the newest N and/or the recent AMIs matching a Selector
//     in each region and removes the others, never one in use (by an
//     instance, a launch template's default or latest version, any version
//     of RetainInput.LaunchTemplates, or the value of a parameter of
//     RetainInput.Parameters) or protected, with a dry run that returns the
//     plan.
//
// The Validate functions (ValidateAccountID, ValidateOrgARN, ValidateOUARN,
// ValidateKMSKeyID, ValidateRegion, ValidateEach, ValidateParameterName,
// ValidateLaunchTemplateID, ValidateLaunchTemplateName,
// ValidateSourceVersion, CopyInput.Validate, PublishInput.Validate,
// DistributeInput.Validate, RetainInput.Validate) check input without any
// AWS call, so that callers can refuse bad configuration before touching
// AWS.
//
// The multi-region operations take a function func(region string) C
// returning a region's client, where C is any client type with the methods
// the operation uses: a PreflightAPI for Preflight, a CopyAPI for Copy, a
// RetainAPI for Retain, a LaunchTemplateAPI for Publish and
// PreflightPublish, all of them (API) for Distribute. *ec2.Client satisfies
// every one, so an awscfg.Session's EC2 method value can be passed as it is
// (distribute.Copy(ctx, sess.EC2, in)); a test passes fakes with no more
// methods than the operation calls. The SSM clients parameters need come
// from Options.SSM.
package distribute
