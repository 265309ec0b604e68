package distribute

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// DefaultConcurrency is the zero value of CopyInput.Concurrency and
// RetainInput.Concurrency: every region is worked on at once, since a copy
// is mostly waiting for EC2 and no region's copy should wait in line behind
// another's. Each copy costs one DescribeImages call every 10 seconds
// while it is pending (WaitOptions' default).
const DefaultConcurrency = 0

// concurrency is how many of a number of regions are worked on at once:
// n, or every one of them when n is 0 (DefaultConcurrency).
func concurrency(n, regions int) int {
	if n <= 0 {
		return max(regions, 1)
	}
	return n
}

// Target is one destination region of Copy, with overrides of the
// defaults in CopyInput (Image Builder's per-region distribution settings).
type Target struct {
	// Region is the destination region. Required.
	Region string `json:"region"`
	// Name of the copy. "" = CopyInput.Name.
	Name string `json:"name,omitempty"`
	// Description of the copy. "" = CopyInput.Description.
	Description string `json:"description,omitempty"`
	// Encrypted asks for encrypted snapshots. nil = CopyInput.Encrypted.
	Encrypted *bool `json:"encrypted,omitempty"`
	// KMSKeyID encrypts the copy with this key (ID, ARN or alias in the
	// destination region); implies Encrypted. "" = CopyInput.KMSKeyID.
	KMSKeyID string `json:"kms_key_id,omitempty"`
	// CopyImageTags copies the source AMI's tags. nil =
	// CopyInput.CopyImageTags.
	CopyImageTags *bool `json:"copy_image_tags,omitempty"`
	// Permissions replace CopyInput.Permissions for this region when set.
	Permissions *Permissions `json:"permissions,omitempty"`
	// Tags are merged over CopyInput.Tags (a key here wins).
	Tags map[string]string `json:"tags,omitempty"`
	// SnapshotTags are merged over CopyInput.SnapshotTags.
	SnapshotTags map[string]string `json:"snapshot_tags,omitempty"`
}

// CopyInput is the input of Copy and Preflight.
type CopyInput struct {
	// SourceImageID is the AMI to copy. Required.
	SourceImageID string
	// SourceRegion is the region of SourceImageID. Required.
	SourceRegion string
	// Targets are the destination regions, each at most once. A target in
	// SourceRegion makes a second AMI there (for example an encrypted one).
	Targets []Target
	// IncludeSource applies Permissions, Tags, Deprecation and Protection to
	// the source AMI as well; it is reported as the first Result. The source
	// is handled before any copy starts and is never removed; changes made
	// to it are not undone when a copy fails.
	IncludeSource bool

	// Name of the copies. "" = the source AMI's name.
	Name string
	// Description of the copies. "" = the source AMI's description.
	Description string
	// Encrypted asks for encrypted copies (with the destination's default
	// EBS key unless a KMS key is given).
	Encrypted bool
	// KMSKeyID encrypts every copy with this key unless a Target names its
	// own; implies Encrypted.
	KMSKeyID string
	// CopyImageTags copies the source AMI's tags to the copies.
	CopyImageTags bool
	// SnapshotCopyMinutes asks for time-based copies: EC2 completes the
	// copy of each snapshot within this many minutes (a multiple of 15, at
	// least 15), at a charge. 0 = standard, best-effort copies.
	SnapshotCopyMinutes int

	// Permissions are granted on every AMI (and its snapshots) as soon as
	// it is available.
	Permissions Permissions
	// Tags are put on every AMI and its snapshots.
	Tags map[string]string
	// SnapshotTags are put on every AMI's snapshots in addition to Tags (a
	// key here wins).
	SnapshotTags map[string]string
	// Deprecation is set on every AMI as soon as it is available.
	Deprecation Deprecation
	// Protection is turned on for every AMI after all regions succeeded
	// (so that a failure can still remove the copies).
	Protection Protection

	// Concurrency caps the number of regions worked on at once.
	// 0 (DefaultConcurrency) = every target region at once.
	Concurrency int
	// KeepOnFailure keeps the copies already made when a region fails. By
	// default they are deregistered, with their snapshots, in every region.
	KeepOnFailure bool
	// RunID identifies one run in the CopyImage idempotency tokens (see
	// ClientToken): calls with the same RunID reuse their tokens, so pass
	// the RunID of an interrupted call to resume it without second copies.
	// "" = Copy picks a new one (NewRunID) for each call, and Preflight
	// reports no tokens.
	RunID string
	// SkipPreflight skips the region and name checks Copy otherwise runs
	// first (the source AMI is still described, and input still validated).
	SkipPreflight bool
	// SkipRegionCheck leaves out the check that every target region is one
	// DescribeRegions lists as enabled; names are still checked in each.
	SkipRegionCheck bool
	// SkipNameCheck leaves out the check that no AMI of the caller has the
	// copy's name in any target region, for a caller that checked the
	// names itself (as the builders do before they launch). A name taken
	// since then makes that region's CopyImage fail, and the copies made
	// are removed as for any failure.
	SkipNameCheck bool
	// Preflighted says that Preflight passed for this same input just
	// before, as it does for a caller that checks everything before it
	// changes anything: Copy then does not run the region and name checks
	// again.
	Preflighted bool
	// Source, when set, is the source AMI as the caller has just described
	// it in SourceRegion (its ImageId is SourceImageID): Preflight and Copy
	// use it instead of describing the source again.
	Source *types.Image
}

// ClientToken returns the idempotency token Copy sends with CopyImage for
// one copy: a digest of the run ID, the source region and AMI, the
// destination region and the copy's name. Within one run (one RunID) a
// repeated call sends the same token, so EC2 never makes a second copy; a
// new run has a new RunID and so new tokens, so that EC2 does not answer
// with a copy an earlier run made and removed again.
func ClientToken(runID, sourceRegion, sourceImageID, region, name string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{"copy-image/v2", runID, sourceRegion, sourceImageID, region, name}, "\x00")))
	return "amiforge-" + hex.EncodeToString(h[:20])
}

// NewRunID returns a random run ID for CopyInput.RunID.
func NewRunID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; a time-based
		// ID still differs between runs.
		return fmt.Sprintf("t%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// Validate checks in without any AWS call and reports every problem at
// once, each naming its field.
func (in *CopyInput) Validate() error {
	return in.validate(time.Now())
}

// validate is Validate with the time deprecation times must lie after.
func (in *CopyInput) validate(now time.Time) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if in.SourceImageID == "" {
		add(errors.New("SourceImageID is required"))
	} else if !strings.HasPrefix(in.SourceImageID, "ami-") {
		add(fmt.Errorf("SourceImageID: %q is not an AMI ID (ami-…)", in.SourceImageID))
	}
	if in.Source != nil && aws.ToString(in.Source.ImageId) != in.SourceImageID {
		add(fmt.Errorf("Source: describes %q, not SourceImageID %q", aws.ToString(in.Source.ImageId), in.SourceImageID))
	}
	if in.SourceRegion == "" {
		add(errors.New("SourceRegion is required"))
	} else if err := ValidateRegion(in.SourceRegion); err != nil {
		add(fmt.Errorf("SourceRegion: %w", err))
	}
	if len(in.Targets) == 0 && !in.IncludeSource {
		add(errors.New("Targets: at least one target region is required"))
	}
	if in.Concurrency < 0 {
		add(fmt.Errorf("Concurrency: %d is negative", in.Concurrency))
	}
	if m := in.SnapshotCopyMinutes; m < 0 || m%15 != 0 {
		add(fmt.Errorf("SnapshotCopyMinutes: %d is not a multiple of 15 minutes", m))
	}
	if in.KMSKeyID != "" {
		if err := ValidateKMSKeyID(in.KMSKeyID); err != nil {
			add(fmt.Errorf("KMSKeyID: %w", err))
		}
	}
	add(in.Permissions.ValidateNamed(permissionFields("Permissions")))
	if err := in.Deprecation.Validate(now); err != nil {
		add(fmt.Errorf("Deprecation: %w", err))
	}
	seen := map[string]bool{}
	for i, t := range in.Targets {
		in.validateTarget(fmt.Sprintf("Targets[%d]", i), t, seen, add)
	}
	return errors.Join(errs...)
}

// validateTarget checks the target named f and hands every problem to add.
// seen holds the regions of the targets before it, so that a region listed
// twice is reported where it comes again.
func (in *CopyInput) validateTarget(f string, t Target, seen map[string]bool, add func(error)) {
	if t.Region == "" {
		add(fmt.Errorf("%s.Region is required", f))
	} else if err := ValidateRegion(t.Region); err != nil {
		add(fmt.Errorf("%s.Region: %w", f, err))
	} else if seen[t.Region] {
		add(fmt.Errorf("%s.Region: %s is listed more than once", f, t.Region))
	}
	seen[t.Region] = true
	if t.KMSKeyID != "" {
		if err := ValidateKMSKeyID(t.KMSKeyID); err != nil {
			add(fmt.Errorf("%s.KMSKeyID: %w", f, err))
		}
	}
	if t.Encrypted != nil && !*t.Encrypted && (t.KMSKeyID != "" || in.KMSKeyID != "") {
		add(fmt.Errorf("%s.Encrypted is false but a KMS key is set", f))
	}
	if t.Permissions != nil {
		add(t.Permissions.ValidateNamed(permissionFields(f + ".Permissions")))
	}
	// Sharing rules that do not depend on the source AMI: a copy
	// explicitly encrypted.
	rt := in.resolve(t, types.Image{})
	if rt.enc.Encrypted {
		if err := CheckSharing(rt.perms, rt.enc); err != nil {
			add(fmt.Errorf("%s (%s): %w", f, t.Region, err))
		}
	}
}

// resolvedTarget is a Target with every default applied.
type resolvedTarget struct {
	region, name, description string
	encrypted                 bool // requested
	kmsKeyID                  string
	copyImageTags             bool
	perms                     Permissions
	tags, snapshotTags        map[string]string
	enc                       Encryption // expected encryption of the copy
	keepsSourceKey            bool       // an encrypted copy in the source region, with the source's key
	token                     string
}

func (in *CopyInput) resolve(t Target, src types.Image) resolvedTarget {
	rt := resolvedTarget{
		region:        t.Region,
		name:          cmp.Or(t.Name, in.Name, aws.ToString(src.Name)),
		description:   cmp.Or(t.Description, in.Description, aws.ToString(src.Description)),
		encrypted:     in.Encrypted,
		kmsKeyID:      cmp.Or(t.KMSKeyID, in.KMSKeyID),
		copyImageTags: in.CopyImageTags,
		perms:         in.Permissions.clone(),
		tags:          merge(in.Tags, t.Tags),
		snapshotTags:  merge(in.SnapshotTags, t.SnapshotTags),
	}
	if t.Encrypted != nil {
		rt.encrypted = *t.Encrypted
	}
	if rt.kmsKeyID != "" {
		rt.encrypted = true
	}
	if t.CopyImageTags != nil {
		rt.copyImageTags = *t.CopyImageTags
	}
	if t.Permissions != nil {
		rt.perms = t.Permissions.clone()
	}
	srcEnc := EncryptionOf(src)
	rt.enc = Encryption{Encrypted: rt.encrypted || srcEnc.Encrypted, KMSKeyID: rt.kmsKeyID}
	if rt.kmsKeyID == "" && t.Region == in.SourceRegion && !rt.encrypted {
		// A copy in the same region keeps the source's key.
		rt.keepsSourceKey = srcEnc.Encrypted
		rt.enc.KMSKeyID = srcEnc.KMSKeyID
	}
	if in.RunID != "" {
		rt.token = ClientToken(in.RunID, in.SourceRegion, in.SourceImageID, t.Region, rt.name)
	}
	return rt
}

func merge(base, over map[string]string) map[string]string {
	if base == nil && over == nil {
		return nil
	}
	m := maps.Clone(base)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, over)
	return m
}
