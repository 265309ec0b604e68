package distribute

import (
	"context"
	"errors"
	"fmt"
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

// CopyTokenTag is the tag key Copy puts on every copy when CopyImage makes
// it (CopyImage TagSpecifications), with the call's ClientToken as value.
// The token is unique to one run, source, region and name, so an AMI that
// carries it was made by that run and by nothing else. Cleanup selects by
// this tag, never by name: an AMI another run or a person made under the
// same name is never touched.
const CopyTokenTag = "ami-build:copy-token"

// CopyOutput is the result of Copy.
type CopyOutput struct {
	// Results holds one Result per region: the source first when
	// IncludeSource, then the targets in input order.
	Results Results
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
func Copy[C CopyAPI](ctx context.Context, clients func(region string) C, in *CopyInput, optFns ...func(*Options)) (*CopyOutput, error) {
	o := newOptions(optFns)
	if in == nil {
		return nil, errors.New("copy: input is nil")
	}
	if in.RunID == "" {
		cp := *in
		cp.RunID = NewRunID()
		in = &cp
	}
	p, err := prepare(ctx, func(r string) PreflightAPI { return clients(r) }, in, o, !in.SkipPreflight && !in.Preflighted)
	if err != nil {
		return nil, err
	}
	c := &copier{in: in, o: o, clients: func(r string) CopyAPI { return clients(r) }, p: p}
	return c.run(ctx)
}

// copier is one Copy call.
type copier struct {
	in      *CopyInput
	o       Options
	clients func(region string) CopyAPI
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

// run carries out the plan: the source first (with IncludeSource), then
// every target region, then protection; after a failure it removes the
// copies made, as Copy's error policy says.
func (c *copier) run(ctx context.Context) (*CopyOutput, error) {
	off := c.initResults()
	if c.in.IncludeSource {
		if err := c.finishSource(ctx); err != nil {
			return &CopyOutput{Results: c.results}, err
		}
	}
	gerr := c.copyAll(ctx, off)
	failed := gerr != nil
	var errs []error
	if ctx.Err() != nil {
		failed = true
		errs = append(errs, fmt.Errorf("copy %s: %w", c.in.SourceImageID, context.Cause(ctx)))
	}
	errs = append(errs, c.sortOutcomes(off)...)
	if failed && len(errs) == 0 {
		errs = append(errs, gerr)
	}
	if !failed && c.in.Protection.Enabled {
		if err := c.protectAll(ctx); err != nil {
			failed = true
			errs = append(errs, err)
		}
	}
	if failed && !c.in.KeepOnFailure {
		if err := c.cleanup(ctx, off); err != nil {
			errs = append(errs, err)
		}
	}
	return &CopyOutput{Results: c.results}, errors.Join(errs...)
}

// initResults sets up a Result for the source (with IncludeSource) and one
// not started for each target, and returns the index of the first
// target's.
func (c *copier) initResults() int {
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
	return off
}

// finishSource shares, tags and deprecates the source AMI before any copy
// starts; when that fails no copy is made and the targets stay not
// started.
func (c *copier) finishSource(ctx context.Context) error {
	in, r := c.in, &c.results[0]
	if err := c.finish(ctx, c.clients(in.SourceRegion), r, in.Permissions, in.Tags, in.SnapshotTags, c.p.srcEnc); err != nil {
		r.Status, r.Err = StatusFailed, err
		return fmt.Errorf("source %s in %s: %w", in.SourceImageID, in.SourceRegion, err)
	}
	return nil
}

// copyAll copies to every target region, at most in.Concurrency at once.
// The first region that fails cancels the others, which then stop at
// their next call.
func (c *copier) copyAll(ctx context.Context, off int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(c.in.Concurrency, len(c.p.targets)))
	for i := range c.p.targets {
		g.Go(func() error { return c.copyOne(gctx, i, &c.results[off+i]) })
	}
	return g.Wait()
}

// sortOutcomes gives every target that did not succeed its status and
// returns the failures to report: a region's own failure is reported; a
// region stopped by another's failure (reported there) or by ctx
// (reported once by run) is only marked cancelled.
func (c *copier) sortOutcomes(off int) []error {
	var errs []error
	for i := off; i < len(c.results); i++ {
		r := &c.results[i]
		if r.Err == nil {
			continue
		}
		if errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded) {
			r.Status = StatusCancelled
			continue
		}
		r.Status = StatusFailed
		errs = append(errs, fmt.Errorf("%s: %w", r.Region, r.Err))
	}
	return errs
}

// copyOne makes the copy of target i and, once it is available, shares,
// tags and deprecates it, recording in r what became of it.
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
	waited, err := image.Wait(ctx, api, &image.WaitInput{ImageID: id, Region: t.region, Wait: c.waitOptions(start)})
	if err != nil {
		r.Err = err
		return err
	}
	img := waited.Image
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
func (c *copier) finish(ctx context.Context, api CopyAPI, r *Result, perms Permissions, tags, snapTags map[string]string, enc Encryption) error {
	// The snapshots are known from the image described available.
	snaps := r.SnapshotIDs
	if snaps == nil {
		snaps = []string{}
	}
	if !perms.Empty() {
		if _, err := Share(ctx, api, &ShareInput{ImageID: r.ImageID, Region: r.Region, Add: perms, SnapshotIDs: snaps, Encryption: &enc}, c.o.reuse); err != nil {
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
		out, err := Deprecate(ctx, api, &DeprecateInput{ImageID: r.ImageID, Region: r.Region, At: at}, c.o.reuse)
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
		err := protect(ctx, c.clients(r.Region), &ProtectInput{ImageID: r.ImageID, Region: r.Region, WithCooldown: c.in.Protection.WithCooldown}, c.o.reuse)
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
