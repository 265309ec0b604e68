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
)

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

// PreflightOutput is the result of Preflight.
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
func Preflight[C PreflightAPI](ctx context.Context, clients func(region string) C, in *CopyInput, optFns ...func(*Options)) (*PreflightOutput, error) {
	o := newOptions(optFns)
	p, err := prepare(ctx, func(r string) PreflightAPI { return clients(r) }, in, o, true)
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

// prepare validates in, describes the source and resolves every target
// into the plan Copy carries out. With full it also runs the region and
// name checks, which a caller that ran them already (Preflighted) or does
// not want them (SkipPreflight) goes without.
func prepare(ctx context.Context, clients func(region string) PreflightAPI, in *CopyInput, o Options, full bool) (*plan, error) {
	if in == nil {
		return nil, errors.New("copy: input is nil")
	}
	now := o.Now()
	if err := in.validate(now); err != nil {
		return nil, fmt.Errorf("copy %s: invalid input: %w", in.SourceImageID, err)
	}
	srcAPI := clients(in.SourceRegion)
	src, err := in.sourceImage(ctx, srcAPI)
	if err != nil {
		return nil, err
	}
	p := &plan{src: src, deprecateAt: in.Deprecation.Time(now), srcEnc: EncryptionOf(src)}
	if err := p.resolveTargets(ctx, srcAPI, in, o); err != nil {
		return nil, fmt.Errorf("copy %s: %w", in.SourceImageID, err)
	}
	if !full || len(p.targets) == 0 {
		return p, nil
	}
	if err := p.checkDestinations(ctx, clients, srcAPI, in); err != nil {
		return nil, err
	}
	return p, nil
}

// sourceImage returns the source AMI, described in its region unless the
// caller passed it as in.Source, and refuses one that is not available:
// nothing can be copied from it.
func (in *CopyInput) sourceImage(ctx context.Context, api DescribeImagesAPI) (types.Image, error) {
	src := in.Source
	if src == nil {
		img, err := describeImage(ctx, api, in.SourceImageID)
		if err != nil {
			return types.Image{}, fmt.Errorf("copy %s: describe source in %s: %w", in.SourceImageID, in.SourceRegion, err)
		}
		src = &img
	}
	if src.State != types.ImageStateAvailable {
		return types.Image{}, fmt.Errorf("copy %s: %w", in.SourceImageID, &ImageStateError{ImageID: in.SourceImageID, Region: in.SourceRegion, State: string(src.State), Reason: "the source must be available"})
	}
	return *src, nil
}

// resolveTargets applies every default to the targets and checks the
// sharing rules for the encryption each AMI will have: the source's when
// it is shared itself (IncludeSource), and each copy's. Every problem is
// reported at once.
func (p *plan) resolveTargets(ctx context.Context, srcAPI PreflightAPI, in *CopyInput, o Options) error {
	// The source's key matters for sharing the source itself and for
	// copies in its region that keep its key; DescribeImages never reports
	// it, so it is read from the snapshots (and KMS) only then.
	rts := make([]resolvedTarget, len(in.Targets))
	srcGrants := Permissions{}
	if in.IncludeSource {
		srcGrants = in.Permissions
	}
	for i, t := range in.Targets {
		rts[i] = in.resolve(t, p.src)
		if rts[i].keepsSourceKey && rts[i].perms.grantsOthers() {
			srcGrants = rts[i].perms
		}
	}
	enc, err := o.resolveKey(ctx, srcAPI, in.SourceRegion, snapshotIDs(p.src), srcGrants, p.srcEnc)
	if err != nil {
		return err
	}
	p.srcEnc = enc
	var errs []error
	if in.IncludeSource {
		if err := CheckSharing(in.Permissions, p.srcEnc); err != nil {
			errs = append(errs, fmt.Errorf("source %s in %s: %w", in.SourceImageID, in.SourceRegion, err))
		}
	}
	for _, rt := range rts {
		rt, terrs := p.checkTarget(ctx, o, rt)
		errs = append(errs, terrs...)
		p.targets = append(p.targets, rt)
	}
	return errors.Join(errs...)
}

// checkTarget completes the expected encryption of the copy rt stands for
// with who manages its key, and reports a copy without a name and sharing
// that AWS would refuse for that encryption.
func (p *plan) checkTarget(ctx context.Context, o Options, rt resolvedTarget) (resolvedTarget, []error) {
	var errs []error
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
			return rt, append(errs, fmt.Errorf("%s: %w", rt.region, err))
		}
		rt.enc = e
	}
	if err := CheckSharing(rt.perms, rt.enc); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", rt.region, err))
	}
	return rt, errs
}

// checkDestinations refuses target regions that are not enabled for the
// account and copy names that an AMI of the caller already has in the
// target region. Every name lookup runs (a failed one does not stop the
// others), so that the error lists every region with a problem at once;
// with SkipNameCheck only the regions are checked.
func (p *plan) checkDestinations(ctx context.Context, clients func(region string) PreflightAPI, srcAPI DescribeRegionsAPI, in *CopyInput) error {
	enabled, err := p.enabledRegions(ctx, srcAPI, in.SkipRegionCheck)
	if err != nil {
		return fmt.Errorf("copy %s: list regions from %s: %w", in.SourceImageID, in.SourceRegion, err)
	}
	errs := make([]error, len(p.targets))
	var g errgroup.Group
	g.SetLimit(concurrency(in.Concurrency, len(p.targets)))
	for i, t := range p.targets {
		switch {
		case !enabled[t.region]:
			errs[i] = fmt.Errorf("%s: region does not exist or is not enabled for the account", t.region)
		case !in.SkipNameCheck:
			g.Go(func() error {
				errs[i] = checkName(ctx, clients(t.region), t)
				return nil
			})
		}
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("copy %s: preflight: %w", in.SourceImageID, err)
	}
	return nil
}

// enabledRegions returns the regions a copy may go to: the ones
// DescribeRegions lists in the source region (it lists the enabled ones),
// or with skip the targets' own, taken on trust.
func (p *plan) enabledRegions(ctx context.Context, srcAPI DescribeRegionsAPI, skip bool) (map[string]bool, error) {
	enabled := map[string]bool{}
	if skip {
		for _, t := range p.targets {
			enabled[t.region] = true
		}
		return enabled, nil
	}
	out, err := srcAPI.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, err
	}
	for _, r := range out.Regions {
		enabled[aws.ToString(r.RegionName)] = true
	}
	return enabled, nil
}

// checkName refuses the copy t when an AMI of the caller in its region
// has its name already (CopyImage would fail there after other regions
// copied), or when that cannot be looked up.
func checkName(ctx context.Context, api DescribeImagesAPI, t resolvedTarget) error {
	found, err := image.FindByName(ctx, api, &image.FindByNameInput{Name: t.name})
	switch {
	case err != nil:
		return fmt.Errorf("%s: look up name %q: %w", t.region, t.name, err)
	case len(found.Images) > 0:
		return fmt.Errorf("%s: name %q is already used by %s", t.region, t.name, aws.ToString(found.Images[0].ImageId))
	}
	return nil
}
