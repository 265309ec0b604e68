package distribute

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// GroupAll is the permission group meaning "everyone" (public).
const GroupAll = "all"

// DefaultEBSKeyAlias is the alias of the AWS-managed KMS key EBS uses when
// no key is named. Images encrypted with it cannot be shared.
const DefaultEBSKeyAlias = "alias/aws/ebs"

// Errors for sharing that AWS refuses; Share, Preflight and Copy return them
// (wrapped) before any call that changes something.
var (
	// ErrShareDefaultKey: an image encrypted with the AWS-managed default
	// key cannot be shared with other accounts, organizations or OUs.
	ErrShareDefaultKey = errors.New("an image encrypted with the AWS-managed key " + DefaultEBSKeyAlias + " cannot be shared with other accounts; copy it with a customer-managed KMS key")
	// ErrPublicEncrypted: encrypted images and snapshots cannot be public.
	ErrPublicEncrypted = errors.New("encrypted images and snapshots cannot be made public")
)

// Permissions lists who may launch an AMI and who may create volumes from
// its snapshots. The zero value grants nothing.
type Permissions struct {
	// Accounts are 12-digit AWS account IDs allowed to launch the AMI.
	Accounts []string `json:"accounts,omitempty"`
	// Groups are launch-permission groups; the only one is "all" (public).
	Groups []string `json:"groups,omitempty"`
	// OrgARNs are AWS Organizations organization ARNs allowed to launch it.
	OrgARNs []string `json:"org_arns,omitempty"`
	// OUARNs are organizational unit ARNs allowed to launch it.
	OUARNs []string `json:"ou_arns,omitempty"`
	// SnapshotAccounts are account IDs given create-volume permission on
	// every snapshot of the AMI.
	SnapshotAccounts []string `json:"snapshot_accounts,omitempty"`
	// SnapshotGroups are create-volume permission groups ("all").
	SnapshotGroups []string `json:"snapshot_groups,omitempty"`
}

// Empty reports whether p grants nothing.
func (p Permissions) Empty() bool {
	return len(p.Accounts)+len(p.Groups)+len(p.OrgARNs)+len(p.OUARNs)+len(p.SnapshotAccounts)+len(p.SnapshotGroups) == 0
}

func (p Permissions) launchEmpty() bool {
	return len(p.Accounts)+len(p.Groups)+len(p.OrgARNs)+len(p.OUARNs) == 0
}

func (p Permissions) snapshotEmpty() bool {
	return len(p.SnapshotAccounts)+len(p.SnapshotGroups) == 0
}

func (p Permissions) clone() Permissions {
	return Permissions{
		Accounts: slices.Clone(p.Accounts), Groups: slices.Clone(p.Groups),
		OrgARNs: slices.Clone(p.OrgARNs), OUARNs: slices.Clone(p.OUARNs),
		SnapshotAccounts: slices.Clone(p.SnapshotAccounts), SnapshotGroups: slices.Clone(p.SnapshotGroups),
	}
}

// Encryption describes how an AMI's snapshots are encrypted.
type Encryption struct {
	// Encrypted is true when any snapshot of the AMI is encrypted.
	Encrypted bool
	// KMSKeyID is the key, as named by the caller or reported by EC2 for
	// the AMI's snapshots (DescribeSnapshots; DescribeImages never reports
	// it). "" with Encrypted means the account's default EBS key, which is
	// taken to be the AWS-managed alias/aws/ebs.
	KMSKeyID string
	// KeyManager is who manages KMSKeyID, as KMS DescribeKey reports it:
	// "AWS" or "CUSTOMER". "" = not looked up; AWSManagedKey then judges
	// by the key's name.
	KeyManager string
}

var awsManagedEBSKeyRe = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:alias/aws/ebs$`)

// AWSManagedKey reports whether e is encryption with the AWS-managed EBS
// key. When KeyManager is known it decides; otherwise KMSKeyID empty,
// "alias/aws/ebs" or that alias's ARN count as AWS-managed, and a key
// named by ID or key ARN as customer-managed.
func (e Encryption) AWSManagedKey() bool {
	if !e.Encrypted {
		return false
	}
	if e.KeyManager != "" {
		return e.KeyManager == string(kmstypes.KeyManagerTypeAws)
	}
	return e.KMSKeyID == "" || e.KMSKeyID == DefaultEBSKeyAlias || awsManagedEBSKeyRe.MatchString(e.KMSKeyID)
}

// grantsOthers reports whether p gives another account, organization or
// OU anything: the grants that depend on who manages the key.
func (p Permissions) grantsOthers() bool {
	return len(p.Accounts)+len(p.OrgARNs)+len(p.OUARNs)+len(p.SnapshotAccounts) > 0
}

// resolveKey completes e for the sharing check of grants add in region. It
// does nothing unless the AMI is encrypted and add gives others access, the
// only case where the key's manager matters. Then, when e names no key, it
// reads the key of the snapshots (DescribeSnapshots: DescribeImages never
// reports KmsKeyId), and, when Options.KMS is set, asks KMS DescribeKey
// whether the key is AWS-managed.
func (o Options) resolveKey(ctx context.Context, api DescribeSnapshotsAPI, region string, snaps []string, add Permissions, e Encryption) (Encryption, error) {
	if !e.Encrypted || !add.grantsOthers() || e.KeyManager != "" {
		return e, nil
	}
	if e.KMSKeyID == "" && len(snaps) > 0 && api != nil {
		var out *ec2.DescribeSnapshotsOutput
		err := o.retryNotFound(ctx, func() error {
			var err error
			out, err = api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
			return err
		})
		if err != nil {
			return e, fmt.Errorf("read the KMS key of snapshots %s in %s: %w", strings.Join(snaps, ", "), region, err)
		}
		for _, s := range out.Snapshots {
			if aws.ToBool(s.Encrypted) && aws.ToString(s.KmsKeyId) != "" {
				e.KMSKeyID = aws.ToString(s.KmsKeyId)
				break
			}
		}
	}
	if e.KMSKeyID == "" || o.KMS == nil {
		return e, nil
	}
	out, err := o.KMS(region).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(e.KMSKeyID)})
	if err != nil {
		return e, fmt.Errorf("find out whether KMS key %s in %s is AWS-managed (kms:DescribeKey): %w", e.KMSKeyID, region, err)
	}
	if out.KeyMetadata != nil {
		e.KeyManager = string(out.KeyMetadata.KeyManager)
	}
	return e, nil
}

// CheckSharing refuses, without any AWS call, grants that AWS would refuse
// for an image with encryption e: any grant to other accounts,
// organizations or OUs when e uses the AWS-managed key (ErrShareDefaultKey),
// and public launch or create-volume permission for an encrypted image
// (ErrPublicEncrypted). Only additions are checked; removals are always
// allowed.
func CheckSharing(add Permissions, e Encryption) error {
	if !e.Encrypted {
		return nil
	}
	var errs []error
	if slices.Contains(add.Groups, GroupAll) || slices.Contains(add.SnapshotGroups, GroupAll) {
		errs = append(errs, ErrPublicEncrypted)
	}
	if e.AWSManagedKey() && add.grantsOthers() {
		errs = append(errs, ErrShareDefaultKey)
	}
	return errors.Join(errs...)
}

// EncryptionOf reports the encryption of img from its block device
// mappings.
func EncryptionOf(img types.Image) Encryption {
	var e Encryption
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs == nil || !aws.ToBool(m.Ebs.Encrypted) {
			continue
		}
		e.Encrypted = true
		if k := aws.ToString(m.Ebs.KmsKeyId); k != "" && e.KMSKeyID == "" {
			e.KMSKeyID = k
		}
	}
	return e
}

// ShareInput is the input of Share.
type ShareInput struct {
	// ImageID is the AMI to change. Required.
	ImageID string
	// Region is used in messages only; the client decides the region.
	Region string
	// Add are the permissions to grant.
	Add Permissions
	// Remove are the permissions to revoke.
	Remove Permissions
	// SnapshotIDs are the AMI's snapshots. nil = read from the image
	// (DescribeImages), which also yields the encryption.
	SnapshotIDs []string
	// Encryption of the image. nil = read from the image (and, when the
	// image is encrypted and Add grants other accounts, the key from its
	// snapshots and who manages it from KMS; see Options.KMS).
	Encryption *Encryption
}

// ShareOutput is the result of Share.
type ShareOutput struct {
	// SnapshotIDs are the snapshots whose permissions were changed.
	SnapshotIDs []string
}

// Share grants and revokes launch permissions on an AMI and create-volume
// permissions on its snapshots. It validates in.Add and in.Remove and
// applies CheckSharing before changing anything. Calls that hit
// eventual consistency (*.NotFound right after a copy) are retried until
// Options.ConsistencyTimeout.
//
// Launch permissions are changed with one ModifyImageAttribute call per
// operation (add, remove); snapshot permissions with the flat
// OperationType/UserIds/GroupNames form of ModifySnapshotAttribute, one call
// per snapshot and operation.
func Share(ctx context.Context, api ShareAPI, in *ShareInput, optFns ...func(*Options)) (*ShareOutput, error) {
	o := newOptions(optFns)
	if in == nil || in.ImageID == "" {
		return nil, errors.New("share: ImageID is required")
	}
	where := regionSuffix(in.Region)
	if err := errors.Join(in.Add.Validate(), in.Remove.Validate()); err != nil {
		return nil, fmt.Errorf("share %s%s: %w", in.ImageID, where, err)
	}
	if in.Add.Empty() && in.Remove.Empty() {
		return &ShareOutput{SnapshotIDs: in.SnapshotIDs}, nil
	}
	snaps, enc, err := in.imageFacts(ctx, api, o)
	if err != nil {
		return nil, fmt.Errorf("share %s%s: describe: %w", in.ImageID, where, err)
	}
	e, err := o.resolveKey(ctx, api, in.Region, snaps, in.Add, enc)
	if err != nil {
		return nil, fmt.Errorf("share %s%s: %w", in.ImageID, where, err)
	}
	if err := CheckSharing(in.Add, e); err != nil {
		return nil, fmt.Errorf("share %s%s: %w", in.ImageID, where, err)
	}
	for _, op := range []struct {
		name  string
		perms Permissions
	}{{"add", in.Add}, {"remove", in.Remove}} {
		if err := o.changePermissions(ctx, api, in.ImageID, where, op.name, op.perms, snaps); err != nil {
			return nil, err
		}
	}
	return &ShareOutput{SnapshotIDs: snaps}, nil
}

// imageFacts returns the image's snapshots and encryption: as the caller
// gave them, or else read from the image, which a copy made just before
// may not show yet (so *.NotFound is retried).
func (in *ShareInput) imageFacts(ctx context.Context, api DescribeImagesAPI, o Options) ([]string, Encryption, error) {
	snaps, enc := in.SnapshotIDs, in.Encryption
	if snaps != nil && enc != nil {
		return snaps, *enc, nil
	}
	var img types.Image
	err := o.retryNotFound(ctx, func() error {
		var err error
		img, err = describeImage(ctx, api, in.ImageID)
		return err
	})
	if err != nil {
		return nil, Encryption{}, err
	}
	if snaps == nil {
		snaps = snapshotIDs(img)
	}
	if enc == nil {
		e := EncryptionOf(img)
		enc = &e
	}
	return snaps, *enc, nil
}

// changePermissions adds (op "add") or revokes (op "remove") perms: the
// launch permissions on image id, the create-volume permissions on each of
// snaps. where names the region in messages.
func (o Options) changePermissions(ctx context.Context, api ShareAPI, id, where, op string, perms Permissions, snaps []string) error {
	if !perms.launchEmpty() {
		mods := &types.LaunchPermissionModifications{}
		if op == "add" {
			mods.Add = launchPermissions(perms)
		} else {
			mods.Remove = launchPermissions(perms)
		}
		err := o.retryNotFound(ctx, func() error {
			_, err := api.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
				ImageId:          aws.String(id),
				LaunchPermission: mods,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s launch permissions of %s%s: %w", op, id, where, err)
		}
		o.logf("%s launch permissions of %s%s", op, id, where)
	}
	if perms.snapshotEmpty() {
		return nil
	}
	for _, snap := range snaps {
		err := o.retryNotFound(ctx, func() error {
			_, err := api.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
				SnapshotId:    aws.String(snap),
				Attribute:     types.SnapshotAttributeNameCreateVolumePermission,
				OperationType: types.OperationType(op),
				UserIds:       perms.SnapshotAccounts,
				GroupNames:    perms.SnapshotGroups,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s create-volume permissions of %s (of %s)%s: %w", op, snap, id, where, err)
		}
	}
	return nil
}

func launchPermissions(p Permissions) []types.LaunchPermission {
	var lp []types.LaunchPermission
	for _, a := range p.Accounts {
		lp = append(lp, types.LaunchPermission{UserId: aws.String(a)})
	}
	for _, g := range p.Groups {
		lp = append(lp, types.LaunchPermission{Group: types.PermissionGroup(g)})
	}
	for _, a := range p.OrgARNs {
		lp = append(lp, types.LaunchPermission{OrganizationArn: aws.String(a)})
	}
	for _, a := range p.OUARNs {
		lp = append(lp, types.LaunchPermission{OrganizationalUnitArn: aws.String(a)})
	}
	return lp
}

func regionSuffix(region string) string {
	if region == "" {
		return ""
	}
	return " in " + region
}
