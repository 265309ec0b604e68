package distribute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// InputImage is an AMI a build already holds in one region: the AMI it
// made in its build region, or one of several a build made in different
// regions. Distribute never copies into a region that holds one and never
// removes one.
type InputImage struct {
	// Region is the AMI's region. Required.
	Region string
	// ImageID is the AMI. Required.
	ImageID string
	// Tags and SnapshotTags are put on the AMI and its snapshots when
	// DistributeInput.ShareInputs is set.
	Tags, SnapshotTags map[string]string
	// Image, when set, is the AMI as the caller has just described it, so
	// that it is not described again.
	Image *types.Image
}

// DistributeInput is one distribution of a build's AMIs: copies of a
// source AMI to more regions, and the sharing, tagging, deprecation and
// deregistration protection of every AMI of the output.
type DistributeInput struct {
	// Copy copies the source AMI (Copy.SourceImageID in Copy.SourceRegion)
	// to Copy.Targets, which may be empty. Its Permissions, Tags,
	// SnapshotTags and Deprecation apply to every copy. Its IncludeSource,
	// KeepOnFailure and Protection are not used: see ShareInputs and
	// Protection.
	Copy CopyInput
	// Inputs are the AMIs of the build, the source among them; nil means
	// the source alone. A target region that holds an input is refused.
	Inputs []InputImage
	// ShareInputs grants Copy.Permissions on every input AMI, sets
	// Copy.Deprecation on it and puts its own Tags on it, once every copy
	// succeeded, the source first. Without it the inputs are not changed.
	ShareInputs bool
	// Protection turns on deregistration protection for every copy (and
	// every input with ShareInputs) once everything else succeeded.
	Protection Protection
	// Parameters and LaunchTemplates point consumers in the caller's
	// account at the output's AMIs (see Publish), once every copy, the
	// inputs and every account succeeded. Parameters need Options.SSM.
	Parameters      []Parameter
	LaunchTemplates []LaunchTemplate
	// Accounts get their own copies of the source AMI, made with their own
	// credentials (Options.Accounts), in the regions of the output, and
	// their own parameters and launch templates.
	Accounts []TargetAccount
	// DryRun runs the pre-flight checks only and reports the copies a real
	// run would make in DistributeOutput.Planned.
	DryRun bool
}

// DistributeOutput is the result of Distribute.
type DistributeOutput struct {
	// Results holds one Result per AMI: the inputs first (the source
	// first), then the copies in target order. Empty for a dry run.
	Results Results
	// Planned are the copies a dry run would make.
	Planned []PlannedCopy
	// Parameters and LaunchTemplates are what was published, in the
	// caller's account and each target account (their Account field).
	Parameters      []ParameterResult
	LaunchTemplates []LaunchTemplateResult
}

// ImageIDs returns the AMI of every region of the output that is
// available: inputs and copies.
func (out *DistributeOutput) ImageIDs() map[string]string {
	m := map[string]string{}
	for _, r := range out.Results {
		if r.Account == "" && r.ImageID != "" && r.Status == StatusAvailable {
			m[r.Region] = r.ImageID
		}
	}
	return m
}

// AccountImageIDs returns the AMI of every region of a target account's
// output that is available.
func (out *DistributeOutput) AccountImageIDs(account string) map[string]string {
	m := map[string]string{}
	for _, r := range out.Results {
		if account != "" && r.Account == account && r.ImageID != "" && r.Status == StatusAvailable {
			m[r.Region] = r.ImageID
		}
	}
	return m
}

// Copies returns the copies Distribute made and kept, by region.
func (out *DistributeOutput) Copies() map[string]string {
	m := map[string]string{}
	for _, r := range out.Results {
		if r.Account == "" && !r.Source && r.ImageID != "" && r.Status == StatusAvailable {
			m[r.Region] = r.ImageID
		}
	}
	return m
}

// Validate checks the input without any AWS call.
func (in *DistributeInput) Validate() error {
	if in == nil {
		return errors.New("distribute: input is nil")
	}
	var errs []error
	c := in.Copy
	c.IncludeSource = true // a distribution without targets is valid
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for i, im := range in.Inputs {
		switch {
		case im.Region == "" || im.ImageID == "":
			errs = append(errs, fmt.Errorf("inputs[%d]: region and image ID are required", i))
		case seen[im.Region]:
			errs = append(errs, fmt.Errorf("inputs[%d]: %s holds more than one input AMI; give one per region", i, im.Region))
		}
		seen[im.Region] = true
	}
	if len(in.Inputs) > 0 && !inputHas(in.Inputs, in.Copy.SourceRegion, in.Copy.SourceImageID) {
		errs = append(errs, fmt.Errorf("inputs: the source %s in %s is not among them", in.Copy.SourceImageID, in.Copy.SourceRegion))
	}
	for _, t := range in.Copy.Targets {
		if seen[t.Region] {
			errs = append(errs, fmt.Errorf("targets: %s already holds an input AMI; it is not copied there", t.Region))
		}
	}
	regions := in.outputRegions()
	if err := validatePublishing(regions, in.Parameters, in.LaunchTemplates); err != nil {
		errs = append(errs, err)
	}
	accounts := map[string]bool{}
	for i, a := range in.Accounts {
		f := fmt.Sprintf("Accounts[%d]", i)
		errs = append(errs, a.validate(f, regions)...)
		if accounts[a.AccountID] {
			errs = append(errs, fmt.Errorf("%s.AccountID: %s is listed more than once", f, a.AccountID))
		}
		accounts[a.AccountID] = true
		if err := validatePublishing(a.regions(regions), a.Parameters, a.LaunchTemplates); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
		}
	}
	return errors.Join(errs...)
}

// validatePublishing checks the parameters and launch templates of one
// account against the regions of its output, before any AMI of it exists.
func validatePublishing(regions []string, params []Parameter, lts []LaunchTemplate) error {
	if len(params) == 0 && len(lts) == 0 {
		return nil
	}
	pub := &PublishInput{Images: placeholderImages(regions), Parameters: params, LaunchTemplates: lts}
	return pub.Validate()
}

// outputRegions lists the regions of the output: the inputs' (the source
// first), then the targets.
func (in *DistributeInput) outputRegions() []string {
	rs := []string{in.Copy.SourceRegion}
	for _, im := range in.Inputs {
		if !slices.Contains(rs, im.Region) {
			rs = append(rs, im.Region)
		}
	}
	for _, t := range in.Copy.Targets {
		if !slices.Contains(rs, t.Region) {
			rs = append(rs, t.Region)
		}
	}
	return rs
}

func inputHas(ins []InputImage, region, id string) bool {
	for _, im := range ins {
		if im.Region == region && im.ImageID == id {
			return true
		}
	}
	return false
}

// Distribute runs a whole distribution with the guarantees of Copy for
// every AMI of the output:
//
//  1. Pre-flight: the checks of Preflight for the copies and, with
//     ShareInputs, for every input AMI (regions enabled, names free in
//     every target region, sharing allowed for each AMI's encryption).
//     Nothing changes unless every check passes; a dry run stops here.
//  2. Copies: every region at once (at most Copy.Concurrency when set),
//     each copy shared, tagged and deprecated as soon as it is available
//     (Copy).
//  3. With ShareInputs, every input AMI is shared, tagged and deprecated,
//     the source first.
//  4. With Protection.Enabled, deregistration protection is turned on for
//     every copy (and input with ShareInputs).
//
// When any step fails or ctx ends, every copy made, in every region, is
// deregistered with its snapshots (protection turned off first), with a
// fresh context bounded by Options.CleanupTimeout; copies whose CopyImage
// outcome cannot be made certain are reported with StatusUnknown (see
// Copy). Input AMIs are never removed, and changes made to them are not
// undone. Nothing else is touched.
//
// On success the copies belong to the caller. When Options.Ledger is set
// they are recorded there (with an undo that turns protection off and
// deregisters the copy with its snapshots), so that a caller whose later
// step fails can still remove them with Ledger.Undo; a caller that keeps
// them forgets them.
//
// Distribute returns the output whenever it got past validation, with the
// error of the failing step joined with cleanup failures.
func Distribute[C API](ctx context.Context, clients func(region string) C, in *DistributeInput, optFns ...func(*Options)) (*DistributeOutput, error) {
	o := newOptions(optFns)
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if len(in.Parameters) > 0 && o.SSM == nil {
		return nil, errors.New("parameters: Options.SSM is nil; it must return the SSM client of each region")
	}
	if len(in.Accounts) > 0 && o.Accounts == nil {
		return nil, errors.New("accounts: Options.Accounts is nil; it must return the clients of each target account")
	}
	return newDistribution(in, o, func(r string) API { return clients(r) }).run(ctx)
}

// distribution is one Distribute call.
type distribution struct {
	in      *DistributeInput
	o       Options
	clients ClientFunc
	out     *DistributeOutput

	copyIn   CopyInput
	shares   []*CopyInput // one share-only input per input AMI, the source first
	copies   ledger.Ledger
	inner    Options // o with Ledger = &copies
	accounts []*account
	srcEnc   Encryption // the source's, resolved for sharing with accounts
}

// newDistribution sets up one Distribute call: the copies' input is
// in.Copy without the settings Distribute handles itself, and with a run
// ID; the operations it calls record what they make in the distribution's
// own ledger, for the rollback.
func newDistribution(in *DistributeInput, o Options, clients ClientFunc) *distribution {
	d := &distribution{in: in, o: o, clients: clients, out: &DistributeOutput{}}
	d.copyIn = in.Copy
	d.copyIn.IncludeSource, d.copyIn.KeepOnFailure, d.copyIn.Protection = false, false, Protection{}
	if d.copyIn.RunID == "" {
		d.copyIn.RunID = NewRunID()
	}
	d.inner = o
	d.inner.Ledger = &d.copies
	return d
}

// run carries out the steps Distribute lists, in their order.
func (d *distribution) run(ctx context.Context) (*DistributeOutput, error) {
	inputs := d.inputs()

	// 1. Pre-flight.
	pre, err := d.preflight(ctx, inputs)
	if err != nil {
		return nil, err
	}
	if d.in.DryRun {
		d.reportPlanned(ctx, pre)
		return d.out, nil
	}

	// 2. Copies.
	copyResults, err := d.copyTargets(ctx)
	if err != nil {
		// Copy removed its copies itself.
		d.out.Results = slices.Concat(d.untouched(inputs), copyResults)
		return d.out, err
	}

	// 3. The accounts' copies, then parameters and launch templates in the
	// caller's account and in each target account: all of it can still be
	// undone, unlike the changes to the inputs that follow.
	accountResults, err := d.copyToAccounts(ctx)
	if err != nil {
		d.out.Results = slices.Concat(d.untouched(inputs), copyResults, accountResults)
		return d.out, d.rollback(err)
	}
	d.out.Results = slices.Concat(d.untouched(inputs), copyResults)
	if err := d.publish(ctx, accountResults); err != nil {
		d.out.Results = append(d.out.Results, accountResults...)
		return d.out, d.rollback(err)
	}

	// 4. The inputs change only once everything else succeeded.
	inputResults := d.untouched(inputs)
	if d.in.ShareInputs {
		inputResults, err = d.shareInputs(ctx)
	}
	d.out.Results = slices.Concat(inputResults, copyResults, accountResults)
	if err != nil {
		return d.out, d.rollback(err)
	}

	// 5. Protection last, so that until here a failure can still remove
	// the copies.
	if d.in.Protection.Enabled {
		if err := d.protect(ctx); err != nil {
			return d.out, d.rollback(err)
		}
	}
	if err := ctx.Err(); err != nil {
		return d.out, d.rollback(fmt.Errorf("distribute %s: %w", d.in.Copy.SourceImageID, context.Cause(ctx)))
	}
	d.handOver()
	return d.out, nil
}

// preflight runs every check before anything changes: the copies' and,
// with ShareInputs, every input AMI's, then the target accounts' and the
// publishing's. It returns the copies' pre-flight, nil when there are no
// targets.
func (d *distribution) preflight(ctx context.Context, inputs []InputImage) (*PreflightOutput, error) {
	d.o.logf("checking %s in %s and the target regions before any change", d.in.Copy.SourceImageID, d.in.Copy.SourceRegion)
	var pre *PreflightOutput
	if len(d.copyIn.Targets) > 0 {
		var err error
		if pre, err = Preflight(ctx, d.clients, &d.copyIn, d.setInner); err != nil {
			return nil, fmt.Errorf("pre-flight: %w", err)
		}
		d.copyIn.Preflighted = true
		if d.copyIn.Source == nil {
			d.copyIn.Source = &pre.Source
		}
	}
	if d.in.ShareInputs {
		if err := d.preflightInputs(ctx, inputs); err != nil {
			return nil, err
		}
	}
	if err := d.preflightPublish(ctx, pre); err != nil {
		return nil, err
	}
	return pre, nil
}

// preflightInputs checks that every input AMI can be shared, tagged and
// deprecated as ShareInputs asks, and keeps for each the share-only Copy
// input that does it later.
func (d *distribution) preflightInputs(ctx context.Context, inputs []InputImage) error {
	c := d.in.Copy
	for _, im := range inputs {
		s := &CopyInput{
			SourceImageID: im.ImageID, SourceRegion: im.Region, IncludeSource: true,
			Permissions: c.Permissions, Tags: im.Tags, SnapshotTags: im.SnapshotTags,
			Deprecation: c.Deprecation, Source: im.Image,
		}
		if s.Source == nil && im.Region == c.SourceRegion && im.ImageID == c.SourceImageID {
			s.Source = d.copyIn.Source
		}
		if _, err := Preflight(ctx, d.clients, s, d.setInner); err != nil {
			return fmt.Errorf("pre-flight of input AMI %s in %s: %w", im.ImageID, im.Region, err)
		}
		s.Preflighted = true
		d.shares = append(d.shares, s)
	}
	return nil
}

// reportPlanned reports, for a dry run, the copies a real run would make: the
// caller's (pre, nil without targets) and each target account's.
func (d *distribution) reportPlanned(ctx context.Context, pre *PreflightOutput) {
	if pre != nil {
		d.out.Planned = pre.Copies
	}
	for _, a := range d.accounts {
		if pout, err := Preflight(ctx, a.clients.EC2, &a.in, d.setInner); err == nil {
			d.out.Planned = append(d.out.Planned, pout.Copies...)
		}
	}
}

// copyTargets copies the source to the target regions of the caller's
// account and returns the copies' results. A failing Copy has removed its
// copies itself.
func (d *distribution) copyTargets(ctx context.Context) (Results, error) {
	if len(d.copyIn.Targets) == 0 {
		return nil, nil
	}
	regions := make([]string, len(d.copyIn.Targets))
	for i, t := range d.copyIn.Targets {
		regions[i] = t.Region
	}
	d.o.logf("copying %s from %s to %s (at most %d at a time)", d.in.Copy.SourceImageID, d.in.Copy.SourceRegion,
		strings.Join(regions, ", "), concurrency(d.copyIn.Concurrency, len(regions)))
	out, err := Copy(ctx, d.clients, &d.copyIn, d.setInner)
	if out == nil {
		return nil, err
	}
	return out.Results, err
}

// shareInputs shares, tags and deprecates every input AMI, the source
// first, and returns their results; it stops at the first failure.
func (d *distribution) shareInputs(ctx context.Context) (Results, error) {
	var rs Results
	for _, s := range d.shares {
		d.o.logf("sharing, tagging and deprecating input AMI %s in %s", s.SourceImageID, s.SourceRegion)
		out, err := Copy(ctx, d.clients, s, d.setInner)
		if out != nil {
			rs = append(rs, out.Results...)
		}
		if err != nil {
			return rs, err
		}
	}
	return rs, nil
}

func (d *distribution) setInner(o *Options) { *o = d.inner }

// inputs returns the input AMIs, the source first.
func (d *distribution) inputs() []InputImage {
	src := InputImage{Region: d.in.Copy.SourceRegion, ImageID: d.in.Copy.SourceImageID, Image: d.in.Copy.Source}
	out := []InputImage{src}
	for _, im := range d.in.Inputs {
		if im.Region == src.Region && im.ImageID == src.ImageID {
			if im.Image == nil {
				im.Image = src.Image
			}
			out[0] = im
			continue
		}
		out = append(out, im)
	}
	return out
}

// untouched lists the input AMIs as results when they are not changed, so
// that the results show every region of the output.
func (d *distribution) untouched(inputs []InputImage) Results {
	var rs Results
	for i, im := range inputs {
		r := Result{Region: im.Region, ImageID: im.ImageID, Source: true, Status: StatusAvailable}
		switch {
		case im.Image != nil:
			r.Name = aws.ToString(im.Image.Name)
		case i == 0 && d.copyIn.Source != nil:
			r.Name = aws.ToString(d.copyIn.Source.Name)
		}
		rs = append(rs, r)
	}
	return rs
}

// protect turns on deregistration protection for every copy, and every
// input with ShareInputs. On failure it turns it off again where it was
// turned on.
func (d *distribution) protect(ctx context.Context) error {
	var done []*Result
	for i := range d.out.Results {
		r := &d.out.Results[i]
		if r.ImageID == "" || r.Status != StatusAvailable || (r.Source && !d.in.ShareInputs) {
			continue
		}
		d.o.logf("turning on deregistration protection of %s in %s%s", r.ImageID, r.Region, inAccount(r.Account))
		err := protect(ctx, d.clientsOf(r.Account)(r.Region), &ProtectInput{ImageID: r.ImageID, Region: r.Region, WithCooldown: d.in.Protection.WithCooldown}, d.setInner)
		if err == nil {
			r.Protected = true
			done = append(done, r)
			continue
		}
		if d.in.Protection.Optional {
			r.Warnings = append(r.Warnings, err.Error())
			continue
		}
		r.Err = err
		d.unprotect(done)
		return fmt.Errorf("deregistration protection of %s in %s: %w", r.ImageID, r.Region, err)
	}
	return nil
}

// unprotect turns protection off again, with a fresh context.
func (d *distribution) unprotect(done []*Result) {
	ctx, cancel := context.WithTimeout(context.Background(), d.o.CleanupTimeout)
	defer cancel()
	for _, r := range done {
		if err := unprotect(ctx, d.clientsOf(r.Account)(r.Region), &UnprotectInput{ImageID: r.ImageID, Region: r.Region}); err != nil {
			d.o.logf("cleanup: %v", err)
			continue
		}
		r.Protected = false
	}
}

// rollback removes every copy after a later step failed and joins the
// cleanup's failures to err.
func (d *distribution) rollback(err error) error {
	if len(d.copies.Resources()) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.o.CleanupTimeout)
	defer cancel()
	for _, res := range d.copies.Resources() {
		if res.Kind == ledger.KindImage {
			d.o.logf("removing copy %s in %s%s with its snapshots", res.ID, res.Region, inAccount(res.Account))
		}
	}
	before := d.copies.Resources()
	uerr := d.copies.Undo(ctx)
	MarkUndone(d.out.Parameters, d.out.LaunchTemplates, before, d.copies.Resources())
	left := map[string]bool{}
	for _, res := range d.copies.Resources() {
		left[res.ID] = true
	}
	for i := range d.out.Results {
		if r := &d.out.Results[i]; !r.Source && r.ImageID != "" && r.Status == StatusAvailable && !left[r.ImageID] {
			r.Status = StatusRemoved
		}
	}
	if uerr != nil {
		return errors.Join(err, fmt.Errorf("undo the run's changes: %w", uerr))
	}
	return err
}

// handOver gives the copies to the caller: recorded in Options.Ledger when
// set, with an undo that turns protection off first.
func (d *distribution) handOver() {
	if d.o.Ledger == nil {
		return
	}
	for _, r := range d.out.Results {
		if r.Source || r.ImageID == "" || r.Status != StatusAvailable {
			continue
		}
		id, region, protected, o := r.ImageID, r.Region, r.Protected, d.o
		api := d.clientsOf(r.Account)(region)
		d.o.Ledger.Record(ledger.Resource{Kind: ledger.KindImage, ID: id, Region: region, Account: r.Account}, func(ctx context.Context) error {
			if protected {
				if err := unprotect(ctx, api, &UnprotectInput{ImageID: id, Region: region}); err != nil {
					return err
				}
			}
			_, _, err := o.deregisterImage(ctx, api, id, region, true)
			return err
		})
	}
	// Parameters and launch template versions go with their undo, after
	// the copies they point at, so that an undo puts them back first.
	d.copies.MoveTo(d.o.Ledger, func(r ledger.Resource) bool { return r.Kind != ledger.KindImage && r.Kind != KindShare })
}

// inAccount returns " in account N" for another account's resource.
func inAccount(account string) string {
	if account == "" {
		return ""
	}
	return " in account " + account
}
