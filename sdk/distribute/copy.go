package distribute

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/ec2tag"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// DefaultConcurrency, the zero value of CopyInput.Concurrency and
// RetainInput.Concurrency, works on every region at once: a copy is mostly
// waiting for EC2, and no region's copy should wait in line behind
// another's. Each copy costs one DescribeImages call every 10 seconds
// while it is pending (WaitOptions' default).
const DefaultConcurrency = 0

// CopyTokenTag is the tag key Copy puts on every copy when CopyImage makes
// it (CopyImage TagSpecifications), with the call's ClientToken as value.
// The token is unique to one run, source, region and name, so an AMI that
// carries it was made by that run and by nothing else. Cleanup selects by
// this tag, never by name: an AMI another run or a person made under the
// same name is never touched.
const CopyTokenTag = "ami-build:copy-token"

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

// CopyOutput is the output of Copy.
type CopyOutput struct {
	// Results holds one Result per region: the source first when
	// IncludeSource, then the targets in input order.
	Results Results
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
	add(in.Permissions.ValidateNamed(FieldNames{
		Accounts: "Permissions.Accounts", Groups: "Permissions.Groups", OrgARNs: "Permissions.OrgARNs",
		OUARNs: "Permissions.OUARNs", SnapshotAccounts: "Permissions.SnapshotAccounts", SnapshotGroups: "Permissions.SnapshotGroups",
	}))
	if err := in.Deprecation.Validate(now); err != nil {
		add(fmt.Errorf("Deprecation: %w", err))
	}
	seen := map[string]bool{}
	for i, t := range in.Targets {
		f := fmt.Sprintf("Targets[%d]", i)
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
			add(t.Permissions.ValidateNamed(FieldNames{
				Accounts: f + ".Permissions.Accounts", Groups: f + ".Permissions.Groups", OrgARNs: f + ".Permissions.OrgARNs",
				OUARNs: f + ".Permissions.OUARNs", SnapshotAccounts: f + ".Permissions.SnapshotAccounts", SnapshotGroups: f + ".Permissions.SnapshotGroups",
			}))
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
	return errors.Join(errs...)
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

// PlannedCopy is one copy as Preflight resolved it.
type PlannedCopy struct {
	Region      string      `json:"region"`
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Encrypted   bool        `json:"encrypted"`
	KMSKeyID    string      `json:"kms_key_id,omitempty"`
	Permissions Permissions `json:"permissions"`
	// ClientToken is the CopyImage token; "" unless CopyInput.RunID is set.
	ClientToken string `json:"client_token,omitempty"`
}

// PreflightOutput is the output of Preflight.
type PreflightOutput struct {
	// Source is the source AMI as described in its region.
	Source types.Image
	// Copies are the copies Copy would make, in input order.
	Copies []PlannedCopy
}

// plan is what Preflight found and Copy acts on.
type plan struct {
	src         types.Image
	srcEnc      Encryption // the source's encryption, its key resolved when sharing needs it
	targets     []resolvedTarget
	deprecateAt time.Time
}

// Preflight checks, without changing anything, that Copy can succeed:
// the input is valid (no AWS call is made otherwise), the source AMI exists
// and is available, every target region exists and is enabled
// (DescribeRegions in the source region), no AMI owned by the caller has
// the copy's name in any target region, and the sharing rules hold for the
// encryption each copy will have. Problems are reported all at once,
// joined with errors.Join.
func Preflight(ctx context.Context, clients ClientFunc, in *CopyInput, optFns ...func(*Options)) (*PreflightOutput, error) {
	o := newOptions(optFns)
	p, err := prepare(ctx, clients, in, o, true)
	if err != nil {
		return nil, err
	}
	out := &PreflightOutput{Source: p.src}
	for _, t := range p.targets {
		out.Copies = append(out.Copies, PlannedCopy{
			Region: t.region, Name: t.name, Description: t.description,
			Encrypted: t.enc.Encrypted, KMSKeyID: t.kmsKeyID, Permissions: t.perms, ClientToken: t.token,
		})
	}
	return out, nil
}

func prepare(ctx context.Context, clients ClientFunc, in *CopyInput, o Options, full bool) (*plan, error) {
	if in == nil {
		return nil, errors.New("copy: input is nil")
	}
	now := o.Now()
	if err := in.validate(now); err != nil {
		return nil, fmt.Errorf("copy %s: invalid input: %w", in.SourceImageID, err)
	}
	srcAPI := clients(in.SourceRegion)
	var src types.Image
	if in.Source != nil {
		src = *in.Source
	} else {
		var err error
		if src, err = describeImage(ctx, srcAPI, in.SourceImageID); err != nil {
			return nil, fmt.Errorf("copy %s: describe source in %s: %w", in.SourceImageID, in.SourceRegion, err)
		}
	}
	if src.State != types.ImageStateAvailable {
		return nil, fmt.Errorf("copy %s: %w", in.SourceImageID, &ImageStateError{ImageID: in.SourceImageID, Region: in.SourceRegion, State: string(src.State), Reason: "the source must be available"})
	}
	p := &plan{src: src, deprecateAt: in.Deprecation.Time(now), srcEnc: EncryptionOf(src)}
	// The source's key matters for sharing the source itself and for
	// copies in its region that keep its key; DescribeImages never reports
	// it, so it is read from the snapshots (and KMS) only then.
	rts := make([]resolvedTarget, len(in.Targets))
	srcGrants := Permissions{}
	if in.IncludeSource {
		srcGrants = in.Permissions
	}
	for i, t := range in.Targets {
		rts[i] = in.resolve(t, src)
		if rts[i].keepsSourceKey && rts[i].perms.grantsOthers() {
			srcGrants = rts[i].perms
		}
	}
	var errs []error
	enc, err := o.resolveKey(ctx, srcAPI, in.SourceRegion, snapshotIDs(src), srcGrants, p.srcEnc)
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", in.SourceImageID, err)
	}
	p.srcEnc = enc
	if in.IncludeSource {
		if err := CheckSharing(in.Permissions, p.srcEnc); err != nil {
			errs = append(errs, fmt.Errorf("source %s in %s: %w", in.SourceImageID, in.SourceRegion, err))
		}
	}
	for _, rt := range rts {
		if rt.name == "" {
			errs = append(errs, fmt.Errorf("%s: the source AMI has no name; set a name for the copy", rt.region))
		}
		if rt.keepsSourceKey {
			rt.enc.KMSKeyID, rt.enc.KeyManager = p.srcEnc.KMSKeyID, p.srcEnc.KeyManager
		} else if rt.kmsKeyID != "" {
			// The key the copy is made with, named by the caller: ask KMS
			// who manages it (no snapshot to read yet).
			e, err := o.resolveKey(ctx, nil, rt.region, nil, rt.perms, rt.enc)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", rt.region, err))
				p.targets = append(p.targets, rt)
				continue
			}
			rt.enc = e
		}
		if err := CheckSharing(rt.perms, rt.enc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rt.region, err))
		}
		p.targets = append(p.targets, rt)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("copy %s: %w", in.SourceImageID, err)
	}
	if !full || len(p.targets) == 0 {
		return p, nil
	}

	// Regions.
	enabled := map[string]bool{}
	if in.SkipRegionCheck {
		for _, t := range p.targets {
			enabled[t.region] = true
		}
	} else {
		regOut, err := srcAPI.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
		if err != nil {
			return nil, fmt.Errorf("copy %s: list regions from %s: %w", in.SourceImageID, in.SourceRegion, err)
		}
		for _, r := range regOut.Regions {
			enabled[aws.ToString(r.RegionName)] = true
		}
	}
	// Every name lookup runs (a failed one does not stop the others), so
	// the error lists every region with a problem at once; only the
	// regions are checked with SkipNameCheck.
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(concurrency(in.Concurrency, len(p.targets)))
	for _, t := range p.targets {
		if !enabled[t.region] {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: region does not exist or is not enabled for the account", t.region))
			mu.Unlock()
			continue
		}
		if in.SkipNameCheck {
			continue
		}
		g.Go(func() error {
			imgs, err := image.FindByName(ctx, clients(t.region), t.name, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: look up name %q: %w", t.region, t.name, err))
			case len(imgs) > 0:
				errs = append(errs, fmt.Errorf("%s: name %q is already used by %s", t.region, t.name, aws.ToString(imgs[0].ImageId)))
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("copy %s: preflight: %w", in.SourceImageID, err)
	}
	return p, nil
}

// concurrency is how many of a number of regions are worked on at once:
// n, or every one of them when n is 0 (DefaultConcurrency).
func concurrency(n, regions int) int {
	if n <= 0 {
		return max(regions, 1)
	}
	return n
}

// Copy copies an AMI to every target region and, in each region as soon as
// its copy is available, shares it and its snapshots, tags them and sets
// the deprecation time; deregistration protection is turned on last, once
// every region succeeded.
//
// Unless in.SkipPreflight or in.Preflighted, Copy first runs the checks of
// Preflight and changes nothing if they fail. Then it works on every target region at once
// (at most in.Concurrency when set). Each CopyImage carries ClientToken(in.RunID, ...), so a
// retried call (by the SDK's retryer, or by running Copy again with the
// same RunID) never makes a second copy, while a new run (a new RunID) is
// never answered with an earlier run's copy. Waiting polls DescribeImages every 10 seconds
// (Options.Wait), logs each pending copy's progress once a minute (with
// Options.Logf) and fails with *ImageStateError.
//
// Every copy is tagged when CopyImage makes it with CopyTokenTag (the
// call's ClientToken).
//
// Error policy: the first failing region cancels the others. Unless
// in.KeepOnFailure, every copy made so far, in every region, is then
// deregistered and its snapshots deleted (with a fresh context bounded by
// Options.CleanupTimeout, so this also happens after ctx is cancelled).
// A CopyImage call that EC2 refused (an HTTP 4xx answer) made nothing, and
// nothing is looked for. A call whose outcome is unknown (no answer, a lost
// answer, a 5xx error, or ctx ended while it was in flight) is replayed
// with the same ClientToken: EC2 answers with the copy the first call made,
// or makes it now, and either way that ID is removed. If the replay fails
// too, the region is searched for an AMI carrying this call's
// CopyTokenTag; if that finds nothing either, the region's Result has
// StatusUnknown and the error names the region and the AMI name to check.
// Nothing else is touched: AMIs are never selected by name, and the source
// AMI is never removed (changes made to it with IncludeSource stay).
//
// Copy returns the output (one Result per region, with status and error)
// whenever it got past validation, together with an error joining every
// region's own failure, the context's error and cleanup failures.
func Copy(ctx context.Context, clients ClientFunc, in *CopyInput, optFns ...func(*Options)) (*CopyOutput, error) {
	o := newOptions(optFns)
	if in == nil {
		return nil, errors.New("copy: input is nil")
	}
	if in.RunID == "" {
		cp := *in
		cp.RunID = NewRunID()
		in = &cp
	}
	p, err := prepare(ctx, clients, in, o, !in.SkipPreflight && !in.Preflighted)
	if err != nil {
		return nil, err
	}
	c := &copier{in: in, o: o, clients: clients, p: p}
	return c.run(ctx)
}

type copier struct {
	in      *CopyInput
	o       Options
	clients ClientFunc
	p       *plan

	results  Results       // source (if included) first, then targets
	outcomes []callOutcome // per target: what is known of its CopyImage call
}

// callOutcome is what is known of one target's CopyImage call.
type callOutcome int32

const (
	notCalled callOutcome = iota
	answered              // EC2 answered with an image ID
	refused               // EC2 refused (HTTP 4xx): nothing was made
	unknown               // no answer: a copy may or may not exist
)

func (c *copier) run(ctx context.Context) (*CopyOutput, error) {
	in, p := c.in, c.p
	off := 0
	if in.IncludeSource {
		off = 1
		src := Result{
			Region: in.SourceRegion, ImageID: in.SourceImageID, Name: aws.ToString(p.src.Name),
			Source: true, Status: StatusAvailable, SnapshotIDs: snapshotIDs(p.src),
		}
		src.Encrypted, src.KMSKeyID = p.srcEnc.Encrypted, p.srcEnc.KMSKeyID
		c.results = append(c.results, src)
	}
	for _, t := range p.targets {
		c.results = append(c.results, Result{Region: t.region, Name: t.name, Status: StatusNotStarted, ClientToken: t.token})
	}
	c.outcomes = make([]callOutcome, len(p.targets))

	var errs []error
	if in.IncludeSource {
		r := &c.results[0]
		if err := c.finish(ctx, c.clients(in.SourceRegion), r, in.Permissions, in.Tags, in.SnapshotTags, p.srcEnc); err != nil {
			r.Status, r.Err = StatusFailed, err
			for i := 1; i < len(c.results); i++ {
				c.results[i].Status = StatusNotStarted
			}
			return &CopyOutput{Results: c.results}, fmt.Errorf("source %s in %s: %w", in.SourceImageID, in.SourceRegion, err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(in.Concurrency, len(p.targets)))
	for i := range p.targets {
		g.Go(func() error { return c.copyOne(gctx, i, &c.results[off+i]) })
	}
	gerr := g.Wait()
	failed := gerr != nil

	// Sort outcomes: a region's own failure is reported; a region stopped
	// because of another's failure or of ctx is "cancelled".
	if ctx.Err() != nil {
		failed = true
		errs = append(errs, fmt.Errorf("copy %s: %w", in.SourceImageID, context.Cause(ctx)))
	}
	for i := off; i < len(c.results); i++ {
		r := &c.results[i]
		if r.Err == nil {
			continue
		}
		if errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded) {
			// Stopped by another region's failure (reported there) or by
			// ctx (reported once above).
			r.Status = StatusCancelled
			continue
		}
		r.Status = StatusFailed
		errs = append(errs, fmt.Errorf("%s: %w", r.Region, r.Err))
	}

	if failed && len(errs) == 0 {
		errs = append(errs, gerr)
	}
	if !failed && in.Protection.Enabled {
		if err := c.protectAll(ctx); err != nil {
			failed = true
			errs = append(errs, err)
		}
	}
	if failed && !in.KeepOnFailure {
		if err := c.cleanup(ctx, off); err != nil {
			errs = append(errs, err)
		}
	}
	return &CopyOutput{Results: c.results}, errors.Join(errs...)
}

func (c *copier) copyOne(ctx context.Context, i int, r *Result) error {
	t := c.p.targets[i]
	if err := ctx.Err(); err != nil {
		r.Err = err
		return err
	}
	api := c.clients(t.region)
	c.o.logf("copying %s from %s to %s as %q", c.in.SourceImageID, c.in.SourceRegion, t.region, t.name)
	c.outcomes[i] = unknown
	start := time.Now()
	out, err := api.CopyImage(ctx, c.copyInput(t))
	if err != nil {
		if awserr.IsRefusal(err) {
			c.outcomes[i] = refused
		}
		r.Err = fmt.Errorf("copy %s from %s to %s as %q: %w", c.in.SourceImageID, c.in.SourceRegion, t.region, t.name, err)
		return r.Err
	}
	c.outcomes[i] = answered
	id := aws.ToString(out.ImageId)
	r.ImageID = id
	r.Encrypted, r.KMSKeyID = t.enc.Encrypted, t.enc.KMSKeyID
	if c.o.Ledger != nil {
		region, o := t.region, c.o
		c.o.Ledger.Record(ledger.Resource{Kind: ledger.KindImage, ID: id, Region: region}, func(ctx context.Context) error {
			_, _, err := o.deregisterImage(ctx, c.clients(region), id, region, true)
			return err
		})
	}
	img, err := image.Wait(ctx, api, id, t.region, c.waitOptions(start))
	if err != nil {
		r.Err = err
		return err
	}
	r.Duration = time.Since(start)
	c.o.logf("copy %s in %s is available after %s", id, t.region, took(r.Duration))
	r.SnapshotIDs = snapshotIDs(img)
	enc := t.enc
	if e := EncryptionOf(img); e.Encrypted {
		r.Encrypted, enc.Encrypted = true, true
		if e.KMSKeyID != "" && e.KMSKeyID != enc.KMSKeyID {
			r.KMSKeyID, enc.KMSKeyID, enc.KeyManager = e.KMSKeyID, e.KMSKeyID, ""
		}
	}
	tags, snapTags := t.tags, t.snapshotTags
	if !tagsAfterCopy(t) {
		tags, snapTags = nil, nil // CopyImage tagged the copy (tagSpecs)
	}
	if err := c.finish(ctx, api, r, t.perms, tags, snapTags, enc); err != nil {
		r.Err = err
		return err
	}
	r.Status = StatusAvailable
	return nil
}

// progressInterval is the shortest time between two progress lines of one
// region's copy.
const progressInterval = time.Minute

// waitOptions are Options.Wait with, when Options.Logf is set, a progress
// line per region at most once a minute ("eu-west-1: ami-… copying,
// snapshots 45 %, 3m10s", the time since CopyImage was sent at start). The
// caller's own Progress, if any, is still called as it asked; without one
// the wait reports (and describes snapshots) only once a minute.
func (c *copier) waitOptions(start time.Time) WaitOptions {
	w := c.o.Wait
	if w.Since.IsZero() {
		w.Since = start
	}
	if c.o.Logf == nil {
		return w
	}
	caller := w.Progress
	if caller == nil {
		w.ProgressInterval = progressInterval
	}
	last := start // of the last line logged
	w.Progress = func(p image.Progress) {
		if caller != nil {
			caller(p)
		}
		now := time.Now()
		if now.Sub(last) < progressInterval {
			return
		}
		last = now
		pct := "unknown"
		if p.SnapshotPercent >= 0 {
			pct = fmt.Sprintf("%d %%", p.SnapshotPercent)
		}
		c.o.logf("%s: %s copying, snapshots %s, %s", p.Region, p.ImageID, pct, now.Sub(start).Round(time.Second))
	}
	return w
}

// copyInput is the CopyImage request for t. A replay after an unknown
// outcome sends the same request, so EC2 recognises its ClientToken.
func (c *copier) copyInput(t resolvedTarget) *ec2.CopyImageInput {
	cin := &ec2.CopyImageInput{
		SourceImageId:     aws.String(c.in.SourceImageID),
		SourceRegion:      aws.String(c.in.SourceRegion),
		Name:              aws.String(t.name),
		ClientToken:       aws.String(t.token),
		TagSpecifications: c.tagSpecs(t),
	}
	if t.description != "" {
		cin.Description = aws.String(t.description)
	}
	if t.encrypted {
		cin.Encrypted = aws.Bool(true)
	}
	if t.kmsKeyID != "" {
		cin.KmsKeyId = aws.String(t.kmsKeyID)
	}
	if c.in.SnapshotCopyMinutes > 0 {
		cin.SnapshotCopyCompletionDurationMinutes = aws.Int64(int64(c.in.SnapshotCopyMinutes))
	}
	if t.copyImageTags {
		cin.CopyImageTags = aws.Bool(true)
	}
	return cin
}

// tagSpecs are the tags CopyImage puts on the copy as it makes it: the
// target's tags and CopyTokenTag on the AMI, the tags and snapshot tags on
// its new snapshots (when the source has any: an instance-store AMI has
// none). Tagging at creation saves a CreateTags per region, and a copy is
// never seen without its tags.
func (c *copier) tagSpecs(t resolvedTarget) []types.TagSpecification {
	specs := ec2tag.Spec(types.ResourceTypeImage, merge(t.tags, map[string]string{CopyTokenTag: t.token}))
	if len(snapshotIDs(c.p.src)) > 0 {
		specs = append(specs, ec2tag.Spec(types.ResourceTypeSnapshot, merge(t.tags, t.snapshotTags))...)
	}
	return specs
}

// tagsAfterCopy reports whether a copy's tags must still be put on with
// CreateTags once it is available: only when CopyImageTags also copies the
// source's tags, because EC2 does not say which value wins when a key is in
// both, and the target's tags must.
func tagsAfterCopy(t resolvedTarget) bool {
	return t.copyImageTags && (len(t.tags) > 0 || len(t.snapshotTags) > 0)
}

// finish shares, tags and deprecates one available AMI.
func (c *copier) finish(ctx context.Context, api API, r *Result, perms Permissions, tags, snapTags map[string]string, enc Encryption) error {
	optFn := func(o *Options) { *o = c.o }
	// The snapshots are known from the image described available.
	snaps := r.SnapshotIDs
	if snaps == nil {
		snaps = []string{}
	}
	if !perms.Empty() {
		if _, err := Share(ctx, api, &ShareInput{ImageID: r.ImageID, Region: r.Region, Add: perms, SnapshotIDs: snaps, Encryption: &enc}, optFn); err != nil {
			return err
		}
		r.SharedWith = perms
	}
	if len(tags) > 0 || len(snapTags) > 0 {
		if err := c.o.tagImage(ctx, api, r.ImageID, r.Region, tags, snapTags, snaps); err != nil {
			return err
		}
	}
	if at := c.p.deprecateAt; !at.IsZero() {
		out, err := Deprecate(ctx, api, &DeprecateInput{ImageID: r.ImageID, Region: r.Region, At: at}, optFn)
		switch {
		case err == nil:
			r.DeprecateAt = &out.DeprecateAt
		case c.in.Deprecation.Optional && ctx.Err() == nil:
			r.Warnings = append(r.Warnings, err.Error())
		default:
			return err
		}
	}
	return nil
}

// protectAll turns on deregistration protection in every region.
func (c *copier) protectAll(ctx context.Context) error {
	var errs []error
	for i := range c.results {
		r := &c.results[i]
		err := Protect(ctx, c.clients(r.Region), &ProtectInput{ImageID: r.ImageID, Region: r.Region, WithCooldown: c.in.Protection.WithCooldown}, func(o *Options) { *o = c.o })
		switch {
		case err == nil:
			r.Protected = true
		case c.in.Protection.Optional:
			r.Warnings = append(r.Warnings, err.Error())
		default:
			r.Status, r.Err = StatusFailed, err
			errs = append(errs, fmt.Errorf("%s: %w", r.Region, err))
		}
	}
	return errors.Join(errs...)
}

// cleanup removes every copy made, in every region, with a fresh context.
// A region whose CopyImage call has an unknown outcome is first made
// certain (recoverCopy); what cannot be made certain is reported with
// StatusUnknown and an error naming the region and the name to check.
func (c *copier) cleanup(ctx context.Context, off int) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.CleanupTimeout)
	defer cancel()
	o := c.o
	var mu sync.Mutex
	var errs []error
	fail := func(r *Result, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
		r.Err = errors.Join(r.Err, err)
	}
	g := new(errgroup.Group) // every region is cleaned up; errors are collected
	g.SetLimit(concurrency(c.in.Concurrency, len(c.p.targets)))
	for i, t := range c.p.targets {
		r := &c.results[off+i]
		if r.ImageID == "" && c.outcomes[i] != unknown {
			// Not called, or refused: nothing was made.
			continue
		}
		g.Go(func() error {
			api := c.clients(t.region)
			ids := []string{r.ImageID}
			recovered := false
			if r.ImageID == "" {
				found, err := c.recoverCopy(cctx, api, t)
				if err != nil {
					mu.Lock()
					r.Status = StatusUnknown
					mu.Unlock()
					fail(r, fmt.Errorf("cleanup in %s: %w", t.region, err))
					return nil
				}
				ids, recovered = found, true
			}
			for _, id := range ids {
				if r.Protected {
					if err := Unprotect(cctx, api, &UnprotectInput{ImageID: id, Region: t.region}, func(uo *Options) { *uo = o }); err != nil {
						o.logf("cleanup: %v", err)
					}
				}
				if _, _, err := o.deregisterImage(cctx, api, id, t.region, true); err != nil {
					fail(r, fmt.Errorf("cleanup in %s: %w", t.region, err))
					continue
				}
				o.logf("removed copy %s in %s", id, t.region)
				if o.Ledger != nil {
					o.Ledger.Forget(ledger.KindImage, id)
				}
				mu.Lock()
				if recovered {
					if r.ImageID == "" {
						r.ImageID = id
					}
					r.Warnings = append(r.Warnings, "removed "+id+", made by an interrupted CopyImage call")
				}
				r.Status = StatusRemoved
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// recoverCopy finds out for certain whether an interrupted CopyImage call
// for t made a copy, and returns its ID (none when it made nothing).
//
// It replays the call with the same ClientToken: EC2 answers a repeated
// token with the image the first call made, or, when the first call never
// reached it, makes the copy now; either way the answer names the one copy
// this call stands for. A refusal of the replay means no copy exists for
// the token. When the replay has no answer either, the region is searched
// for AMIs carrying the call's CopyTokenTag (set when CopyImage makes the
// copy). If that search fails as well the outcome cannot be known and an
// error names the region, the AMI name and the tag to check.
func (c *copier) recoverCopy(ctx context.Context, api API, t resolvedTarget) ([]string, error) {
	rctx, cancel := context.WithTimeout(ctx, replayTimeout)
	out, rerr := api.CopyImage(rctx, c.copyInput(t))
	cancel()
	if rerr == nil {
		if id := aws.ToString(out.ImageId); id != "" {
			return []string{id}, nil
		}
	}
	if rerr != nil && !awserr.IsRefusal(rerr) {
		c.o.logf("cleanup: replaying CopyImage in %s: %v", t.region, rerr)
	}
	// Refused, or no answer: look for the tag. A refused replay still gets
	// this look, in case the first request arrived after the replay.
	imgs, err := imagesTagged(ctx, api, CopyTokenTag, t.token)
	if err != nil {
		return nil, &UnknownCopyError{Region: t.region, Name: t.name, ClientToken: t.token, Err: errors.Join(rerr, err)}
	}
	var ids []string
	for _, img := range imgs {
		ids = append(ids, aws.ToString(img.ImageId))
	}
	if len(ids) == 0 && rerr != nil && !awserr.IsRefusal(rerr) {
		// Nothing carries the tag, but the replay did not get an answer:
		// a copy may still be on its way.
		return nil, &UnknownCopyError{Region: t.region, Name: t.name, ClientToken: t.token, Err: rerr}
	}
	return ids, nil
}

// replayTimeout bounds the replay of an interrupted CopyImage in cleanup,
// so that an endpoint that does not answer cannot hold the cleanup of the
// other regions; the tag search follows.
const replayTimeout = 2 * time.Minute

// UnknownCopyError reports a CopyImage call whose outcome Copy could not
// find out during cleanup: a copy may exist in Region under Name, tagged
// CopyTokenTag=ClientToken. Use errors.As.
type UnknownCopyError struct {
	Region, Name, ClientToken string
	Err                       error
}

func (e *UnknownCopyError) Error() string {
	return fmt.Sprintf("could not find out whether CopyImage made a copy in %s; check %s for an AMI named %q tagged %s=%s and deregister it: %v",
		e.Region, e.Region, e.Name, CopyTokenTag, e.ClientToken, e.Err)
}

func (e *UnknownCopyError) Unwrap() error { return e.Err }

// imagesTagged lists the caller's AMIs carrying tag key=value. The answer
// is checked, not only the filter trusted.
func imagesTagged(ctx context.Context, api DescribeImagesAPI, key, value string) ([]types.Image, error) {
	var out []types.Image
	pg := ec2.NewDescribeImagesPaginator(api, &ec2.DescribeImagesInput{
		Owners:            []string{"self"},
		Filters:           []types.Filter{{Name: aws.String("tag:" + key), Values: []string{value}}},
		IncludeDeprecated: aws.Bool(true),
	})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, img := range page.Images {
			for _, tg := range img.Tags {
				if aws.ToString(tg.Key) == key && aws.ToString(tg.Value) == value {
					out = append(out, img)
					break
				}
			}
		}
	}
	return out, nil
}
