// Package distribute is the ami-distribute post-processor: it copies an AMI
// to more regions, shares it with accounts, organizations and
// organizational units, tags, encrypts and deprecates it, and removes older
// releases, on top of package sdk/distribute.
//
// Its input is an artifact whose ID is "region:ami-…[,region:ami-…]" (this
// plugin's builders, HashiCorp's amazon builders), or an existing AMI named
// by source_ami or source_ami_filter. Everything is checked before the
// first change; when anything fails, or the build is cancelled, every copy
// made is deregistered with its snapshots and nothing else is touched.
// Retention is the last change: once it has started the new AMIs are kept,
// and a failure of retention is reported without removing them.
package distribute

//lint:file-ignore SA1019 Packer's Ui.Message prints the indented detail lines this output is made of; Say would make each a "==>" heading

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// cleanupTimeout bounds removing copies after a failure or cancellation.
const cleanupTimeout = 15 * time.Minute

// PostProcessor is the ami-distribute post-processor.
type PostProcessor struct {
	config Config
}

var _ packersdk.PostProcessor = (*PostProcessor)(nil)

// ConfigSpec returns the HCL2 specification of the configuration.
func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Configure decodes and validates the configuration without any network
// call.
func (p *PostProcessor) Configure(raws ...any) error {
	return p.config.Prepare(raws...)
}

// PostProcess distributes the input artifact's AMI (or source_ami). It
// always keeps the input artifact: its AMIs are part of the output.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, in packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	if p.config.nothingToDo() {
		ui.Say("Nothing to copy, share, tag or retain (regions and sharing lists are empty); passing the AMIs through unchanged.")
		return p.passThrough(in), true, true, nil
	}
	sess, err := p.config.AccessConfig.Session(ctx, amiconfig.AppIDDistribute)
	if err != nil {
		return nil, true, true, err
	}
	r := &run{c: &p.config, ui: ui, sess: sess, clients: distribute.PerRegion(sess.EC2), now: time.Now(), runID: distribute.NewRunID(),
		accounts: map[string]*awscfg.Session{}}
	art, err := r.do(ctx, in)
	if err != nil {
		return nil, true, true, err
	}
	return art, true, true, nil
}

// passThrough is the artifact of a run with nothing to do, made without
// any AWS call: the input's AMIs (source_ami when set, else the input
// artifact's), none of them a copy, so that Destroy removes nothing and
// the input artifact, which Packer keeps, is never destroyed through it.
func (p *PostProcessor) passThrough(in packersdk.Artifact) *Artifact {
	c := &p.config
	a := &Artifact{Amis: map[string]string{}, InputImages: inputRegistryImages(in)}
	switch {
	case c.SourceAMI != "" && !amiconfig.Unknown(c.SourceAMI):
		region := cmp.Or(c.Region(), os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
		if region != "" {
			a.Amis[region] = c.SourceAMI
		}
	case c.SourceAMIFilter.Empty() && in != nil:
		if id, err := amiconfig.ParseArtifactID(in.Id()); err == nil {
			maps.Copy(a.Amis, id)
		}
	}
	return a
}

// run is one PostProcess call.
type run struct {
	c       *Config
	ui      packersdk.Ui
	sess    *awscfg.Session
	clients distribute.ClientFunc
	now     time.Time
	ledger  ledger.Ledger
	// runID goes into the CopyImage idempotency tokens: retries within
	// this run reuse them, a later run (after a failure) gets new ones.
	runID string

	inputs []RegionAMI // every AMI of the input, sorted by region
	// inputImages is the input artifact's HCP Packer metadata.
	inputImages []registryimage.Image
	source      RegionAMI // the one copied from
	sourceImg   types.Image
	manifest    Manifest
	// committed is set once retention starts: from then on the copies are
	// kept even when the run fails.
	committed bool

	din      *distribute.DistributeInput // the plan
	mu       sync.Mutex
	accounts map[string]*awscfg.Session // target account ID → its role's session
}

func (r *run) opts() func(*distribute.Options) {
	return func(o *distribute.Options) {
		o.Ledger = &r.ledger
		o.Logf = func(format string, args ...any) { r.ui.Message(fmt.Sprintf(format, args...)) }
		o.Wait = r.c.Polling.ImageWait()
		o.Now = func() time.Time { return r.now }
		o.KMS = func(region string) distribute.DescribeKeyAPI { return r.sess.KMS(region) }
		o.SSM = func(region string) distribute.SSMAPI { return r.sess.SSM(region) }
		o.Accounts = r.accountClients
	}
}

func (r *run) do(ctx context.Context, in packersdk.Artifact) (art *Artifact, err error) {
	c := r.c
	r.manifest = Manifest{Time: r.now.UTC(), DryRun: c.DryRun, BuildName: c.PackerBuildName}
	defer func() {
		if err != nil && !r.committed {
			err = r.fail(err)
		}
		if werr := r.writeManifest(err); werr != nil {
			if err == nil && !r.committed {
				// The copies exist but the manifest the user asked for
				// is missing: fail, and remove the copies.
				err = r.fail(werr)
				art = nil
			} else {
				err = errors.Join(err, werr)
				art = nil
			}
		}
	}()

	if err := r.resolveInputs(ctx, in); err != nil {
		return nil, err
	}
	din, err := r.plan(ctx)
	if err != nil {
		return nil, err
	}
	out, err := distribute.Distribute(ctx, r.clients, din, r.opts())
	if out != nil {
		r.manifest.Regions = out.Results
		r.manifest.Parameters, r.manifest.LaunchTemplates = out.Parameters, out.LaunchTemplates
	}
	if err != nil {
		r.sayResults()
		return nil, err
	}
	if c.DryRun {
		return r.dryRun(ctx, out.Planned)
	}

	art = r.artifact()
	r.manifest.ArtifactID = art.Id()
	if !c.anyRetention() {
		r.sayResults()
		return art, nil
	}

	// Retention last: removing old releases cannot be undone, so once it
	// starts the new AMIs are kept whatever happens. The manifest is
	// written first, so that a failure to write it can still remove the
	// copies.
	if err := r.writeManifest(nil); err != nil {
		r.sayResults()
		return nil, err
	}
	r.commit()
	rerr := r.retain(ctx, false)
	r.sayResults()
	if rerr != nil {
		r.ui.Error(fmt.Sprintf("Retention failed; the new AMIs are kept: %s", art.Id()))
		return nil, fmt.Errorf("%w (the new AMIs are kept: %s)", rerr, art.Id())
	}
	return art, nil
}

// commit hands the copies over to the caller: from here on a failure no
// longer removes them.
func (r *run) commit() {
	for _, res := range r.ledger.Resources() {
		r.ledger.Forget(res.Kind, res.ID)
	}
	r.committed = true
}

// fail removes every copy still recorded and joins the cleanup's errors to
// err. It runs with a fresh context, so it also works after Ctrl-C. Then
// it tells the user what is left (sayLeftovers).
func (r *run) fail(err error) error {
	if len(r.ledger.Resources()) > 0 {
		r.ui.Say("Undoing what this run made...")
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		for _, res := range r.ledger.Resources() {
			r.ui.Message(undoMessage(res))
		}
		before := r.ledger.Resources()
		uerr := r.ledger.Undo(ctx)
		distribute.MarkUndone(r.manifest.Parameters, r.manifest.LaunchTemplates, before, r.ledger.Resources())
		left := map[string]bool{}
		for _, res := range r.ledger.Resources() {
			left[res.ID] = true
		}
		for i := range r.manifest.Regions {
			if res := &r.manifest.Regions[i]; !res.Source && res.ImageID != "" && res.Status == distribute.StatusAvailable && !left[res.ImageID] {
				res.Status = distribute.StatusRemoved
			}
		}
		if uerr != nil {
			err = errors.Join(err, fmt.Errorf("undo the run's changes: %w", uerr))
		}
	}
	r.sayLeftovers()
	return err
}

// sayLeftovers tells the user, after a failure, what became of the copies:
// every region whose CopyImage outcome cleanup could not find out, with
// the AMI name and the tag to look for; every copy that still exists; and
// which copies were removed. It says that every copy was removed only
// when that is so.
func (r *run) sayLeftovers() {
	var removed, kept []string
	unknown := false
	for _, res := range r.manifest.Regions {
		switch {
		case res.Source:
		case res.Status == distribute.StatusUnknown:
			if !unknown {
				r.ui.Error("Cleanup could not find out whether these copies were made; check by hand:")
				unknown = true
			}
			r.ui.Error(fmt.Sprintf("  %s: an interrupted copy may exist; check %s for an AMI named %q tagged %s=%s",
				res.Region, res.Region, res.Name, distribute.CopyTokenTag, res.ClientToken))
		case res.Status == distribute.StatusRemoved:
			removed = append(removed, strings.TrimPrefix(inAccount(res.Account)+" ", " ")+res.Region)
		case res.ImageID != "" && res.Status == distribute.StatusAvailable:
			kept = append(kept, strings.TrimPrefix(inAccount(res.Account)+" ", " ")+res.Region+" "+res.ImageID)
		}
	}
	if len(kept) > 0 {
		r.ui.Error("These copies could not be removed; deregister them and delete their snapshots by hand: " + strings.Join(kept, ", "))
	}
	switch {
	case len(removed) == 0:
	case !unknown && len(kept) == 0:
		r.ui.Say("Every copy this run made was removed again.")
	default:
		r.ui.Say("The copies in " + strings.Join(removed, ", ") + " were removed again.")
	}
}

// resolveInputs finds the AMIs to distribute: source_ami or
// source_ami_filter when set, else the input artifact's AMIs.
func (r *run) resolveInputs(ctx context.Context, in packersdk.Artifact) error {
	c := r.c
	region := c.Region()
	if c.SourceAMI != "" || !c.SourceAMIFilter.Empty() {
		if c.SourceAMI != "" {
			r.ui.Say(fmt.Sprintf("Looking up source_ami %s in %s...", c.SourceAMI, region))
		} else {
			r.ui.Say(fmt.Sprintf("Looking up the AMI to distribute by source_ami_filter in %s...", region))
		}
		fin := c.SourceAMIFilter.FindInput(c.SourceAMI, region)
		out, err := image.Find(ctx, r.sess.EC2(region), fin)
		if err != nil {
			return fmt.Errorf("find the AMI to distribute in %s: %w", region, err)
		}
		r.inputs = []RegionAMI{{Region: region, ImageID: aws.ToString(out.Image.ImageId)}}
		r.source, r.sourceImg = r.inputs[0], out.Image
	} else {
		if in == nil {
			return errors.New("no input artifact; set source_ami or source_ami_filter to distribute an existing AMI")
		}
		amis, err := inputAMIs(in.Id())
		if err != nil {
			return fmt.Errorf("the input artifact (builder %s) names no AMI to distribute: %w; set source_ami or source_ami_filter to distribute an existing AMI", in.BuilderId(), err)
		}
		r.inputs = amis
		r.inputImages = inputRegistryImages(in)
		r.source = amis[pickSource(amis, region)]
		out, err := image.Find(ctx, r.sess.EC2(r.source.Region), &image.FindInput{ImageIDs: []string{r.source.ImageID}, IncludeDeprecated: true, Region: r.source.Region})
		if err != nil {
			return fmt.Errorf("describe the input AMI %s in %s: %w", r.source.ImageID, r.source.Region, err)
		}
		r.sourceImg = out.Image
	}
	r.ui.Say(fmt.Sprintf("Distributing %s (%s) from %s", r.source.ImageID, aws.ToString(r.sourceImg.Name), r.source.Region))
	r.manifest.Source = ManifestSource{Region: r.source.Region, ImageID: r.source.ImageID, Name: aws.ToString(r.sourceImg.Name)}
	r.manifest.Inputs = r.inputs
	return nil
}

// plan turns the configuration into the SDK's input: the copy from the
// source to the target regions and, with share_source, the tags of each
// input AMI.
func (r *run) plan(ctx context.Context) (*distribute.DistributeInput, error) {
	c := r.c
	dep, err := c.deprecation(r.now)
	if err != nil {
		return nil, err
	}
	din := &distribute.DistributeInput{
		Copy: distribute.CopyInput{
			SourceImageID: r.source.ImageID,
			SourceRegion:  r.source.Region,
			Encrypted:     c.EncryptBoot.True(),
			CopyImageTags: c.CopyImageTags,
			Permissions:   c.permissions(),
			Deprecation:   dep,
			Concurrency:   c.CopyConcurrency,
			RunID:         r.runID,
			Source:        &r.sourceImg, // described by resolveInputs
		},
		ShareInputs: c.shareSource(),
		Protection: distribute.Protection{
			Enabled:      c.DeregistrationProtection.Enabled,
			WithCooldown: c.DeregistrationProtection.WithCooldown,
		},
		DryRun: c.DryRun,
	}
	inputRegions := map[string]bool{}
	for _, a := range r.inputs {
		inputRegions[a.Region] = true
		im := distribute.InputImage{Region: a.Region, ImageID: a.ImageID}
		if a == r.source {
			im.Image = &r.sourceImg
		}
		if din.ShareInputs {
			data := newTemplateData(r.sourceImg, r.source.Region, a.Region)
			if im.Tags, err = c.renderTags("tags", c.Tags, data); err != nil {
				return nil, err
			}
			if im.SnapshotTags, err = c.renderTags("snapshot_tags", c.SnapshotTags, data); err != nil {
				return nil, err
			}
		}
		din.Inputs = append(din.Inputs, im)
	}
	for _, region := range c.TargetRegions() {
		if inputRegions[region] {
			r.ui.Message(fmt.Sprintf("%s already holds an input AMI; it is not copied there", region))
			continue
		}
		t, err := r.target(region)
		if err != nil {
			return nil, err
		}
		din.Copy.Targets = append(din.Copy.Targets, t)
	}
	if err := r.planPublish(ctx, din); err != nil {
		return nil, err
	}
	r.din = din
	return din, nil
}

// target renders the settings of one target region.
func (r *run) target(region string) (distribute.Target, error) {
	c := r.c
	s := c.target(region)
	data := newTemplateData(r.sourceImg, r.source.Region, region)
	t := distribute.Target{Region: region, KMSKeyID: s.kmsKeyID}
	var err error
	nameTpl := cmp.Or(s.name, c.AMIName)
	if t.Name, err = c.render(nameTpl, data); err != nil {
		return t, fmt.Errorf("ami_name for %s: %w", region, err)
	}
	if nameTpl != "" && !amiconfig.ValidAMIName(t.Name) {
		return t, fmt.Errorf("ami_name for %s: %q is not a valid AMI name", region, t.Name)
	}
	if t.Description, err = c.render(cmp.Or(s.description, c.AMIDescription), data); err != nil {
		return t, fmt.Errorf("ami_description for %s: %w", region, err)
	}
	if s.encryptedSet {
		t.Encrypted = aws.Bool(s.encrypted)
	}
	t.CopyImageTags = aws.Bool(s.copyImageTags)
	perms := s.perms
	t.Permissions = &perms
	// The top-level tags are rendered for this region and merged with the
	// override's, so that {{ .Region }} names the copy's region.
	all := mergeMaps(c.Tags, s.tags)
	if t.Tags, err = c.renderTags("tags", all, data); err != nil {
		return t, fmt.Errorf("%s: %w", region, err)
	}
	if t.SnapshotTags, err = c.renderTags("snapshot_tags", mergeMaps(c.SnapshotTags, s.snapTags), data); err != nil {
		return t, fmt.Errorf("%s: %w", region, err)
	}
	return t, nil
}

// dryRun prints what a real run would do and changes nothing.
func (r *run) dryRun(ctx context.Context, planned []distribute.PlannedCopy) (*Artifact, error) {
	r.ui.Say("Dry run: nothing is changed. The run would make these copies:")
	r.manifest.Regions = nil
	r.manifest.Planned = planned
	if len(r.manifest.Planned) == 0 {
		r.ui.Message("(no copy)")
	}
	for _, p := range r.manifest.Planned {
		enc := "unencrypted"
		if p.Encrypted {
			enc = "encrypted"
			if p.KMSKeyID != "" {
				enc += " with " + p.KMSKeyID
			}
		}
		r.ui.Message(fmt.Sprintf("%s: %q, %s, shared with %s", p.Region, p.Name, enc, cmp.Or(p.Permissions.String(), "nobody")))
	}
	if r.c.anyRetention() {
		if err := r.retain(ctx, true); err != nil {
			return nil, err
		}
	}
	amis := map[string]string{}
	for _, a := range r.inputs {
		amis[a.Region] = a.ImageID
	}
	art := &Artifact{Amis: amis, SourceAMI: r.source.ImageID, SourceRegion: r.source.Region, InputImages: r.inputImages}
	r.manifest.ArtifactID = art.Id()
	return art, nil
}

// retain applies keep_releases/keep_days in every region of the output,
// and each target account's keep_releases/keep_days in its regions.
func (r *run) retain(ctx context.Context, dryRun bool) error {
	c := r.c
	regions, protect := r.outputRegionsAndIDs()
	var errs []error
	if c.retentionEnabled() {
		in := r.retainInput(regions, protect, c.KeepReleases, c.KeepDays, dryRun)
		in.Parameters, in.LaunchTemplates = r.din.Parameters, r.din.LaunchTemplates
		in.Bundles = &bundleDeleter{sess: r.sess}
		errs = append(errs, r.retainIn(ctx, "", r.clients, r.sess, in, dryRun))
	}
	for _, a := range r.din.Accounts {
		ac := r.accountConfig(a.AccountID)
		if ac == nil || ac.KeepReleases == 0 && ac.KeepDays == 0 {
			continue
		}
		r.mu.Lock()
		sess := r.accounts[a.AccountID]
		r.mu.Unlock()
		if sess == nil {
			errs = append(errs, fmt.Errorf("retention in account %s: no session for the account", a.AccountID))
			continue
		}
		accountRegions := regions
		if len(a.Regions) > 0 {
			accountRegions = a.Regions
		}
		in := r.retainInput(accountRegions, protect, ac.KeepReleases, ac.KeepDays, dryRun)
		in.Parameters, in.LaunchTemplates = a.Parameters, a.LaunchTemplates
		errs = append(errs, r.retainIn(ctx, a.AccountID, distribute.PerRegion(sess.EC2), sess, in, dryRun))
	}
	return errors.Join(errs...)
}

func (r *run) retainInput(regions, protect []string, keep, days int, dryRun bool) *distribute.RetainInput {
	c := r.c
	return &distribute.RetainInput{
		Regions:       regions,
		Selector:      distribute.Selector{Name: c.Retention.NamePattern, Tags: c.Retention.Tags},
		KeepNewest:    keep,
		KeepWithin:    time.Duration(days) * 24 * time.Hour,
		Protect:       protect,
		DryRun:        dryRun,
		KeepSnapshots: c.Retention.KeepSnapshots,
		Concurrency:   c.CopyConcurrency,
	}
}

// retainIn runs retention in one account ("" = this one).
func (r *run) retainIn(ctx context.Context, account string, clients distribute.ClientFunc, sess *awscfg.Session, in *distribute.RetainInput, dryRun bool) error {
	verb, where := "Removing", ""
	if dryRun {
		verb = "Dry run: would remove"
	}
	if account != "" {
		where = " of account " + account
	}
	r.ui.Say(fmt.Sprintf("Retention in %s%s: keeping %s of the AMIs matching %s...", strings.Join(in.Regions, ", "), where,
		describeKeepOf(in.KeepNewest, int(in.KeepWithin/(24*time.Hour))), describeSelector(in.Selector)))
	out, err := distribute.Retain(ctx, clients, in, func(o *distribute.Options) {
		o.Logf = func(format string, args ...any) { r.ui.Message(fmt.Sprintf(format, args...)) }
		o.Now = func() time.Time { return r.now }
		o.SSM = func(region string) distribute.SSMAPI { return sess.SSM(region) }
	})
	if out != nil {
		for i := range out.Decisions {
			out.Decisions[i].Account = account
		}
		r.manifest.Retention = append(r.manifest.Retention, out.Decisions...)
		remove := out.Decisions.ToRemove()
		r.ui.Say(fmt.Sprintf("%s %d AMI(s)%s:", verb, len(remove), where))
		var b strings.Builder
		_ = out.Decisions.WriteTable(&b)
		r.ui.Message(strings.TrimRight(b.String(), "\n"))
	}
	if err != nil {
		if account != "" {
			return fmt.Errorf("retention in account %s: %w", account, err)
		}
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

// accountConfig returns the target_accounts block of an account.
func (r *run) accountConfig(id string) *TargetAccountConfig {
	for i := range r.c.TargetAccounts {
		if r.c.TargetAccounts[i].AccountID == id {
			return &r.c.TargetAccounts[i]
		}
	}
	return nil
}

// outputRegionsAndIDs returns the regions of the output (sorted) and the
// AMI IDs of the run (inputs and copies).
func (r *run) outputRegionsAndIDs() ([]string, []string) {
	seen := map[string]bool{}
	var regions, ids []string
	add := func(region, id string) {
		if !seen[region] {
			seen[region] = true
			regions = append(regions, region)
		}
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, a := range r.inputs {
		add(a.Region, a.ImageID)
	}
	for _, res := range r.manifest.Regions {
		if res.Account != "" {
			// Another account's copy: protected, but its region is not one
			// of this account's output.
			if res.ImageID != "" && !slices.Contains(ids, res.ImageID) {
				ids = append(ids, res.ImageID)
			}
			continue
		}
		add(res.Region, res.ImageID)
	}
	if r.c.DryRun {
		for _, p := range r.manifest.Planned {
			add(p.Region, "")
		}
	}
	slices.Sort(regions)
	return regions, ids
}

// artifact builds the output artifact.
func (r *run) artifact() *Artifact {
	a := &Artifact{
		Amis:         map[string]string{},
		Copies:       map[string]string{},
		SourceAMI:    r.source.ImageID,
		SourceRegion: r.source.Region,
		InputImages:  r.inputImages,
		Results:      r.manifest.Regions,
		EC2:          amiconfig.EC2Deregister(r.sess.EC2),
	}
	for _, in := range r.inputs {
		a.Amis[in.Region] = in.ImageID
	}
	for _, res := range r.manifest.Regions {
		if res.Source || res.ImageID == "" || res.Status != distribute.StatusAvailable {
			continue
		}
		if res.Account != "" {
			if a.AccountAmis == nil {
				a.AccountAmis = map[string]map[string]string{}
				a.AccountEC2 = r.accountEC2
			}
			if a.AccountAmis[res.Account] == nil {
				a.AccountAmis[res.Account] = map[string]string{}
			}
			a.AccountAmis[res.Account][res.Region] = res.ImageID
			continue
		}
		a.Amis[res.Region] = res.ImageID
		a.Copies[res.Region] = res.ImageID
	}
	return a
}

// accountEC2 returns the EC2 client of a target account's region, for
// Artifact.Destroy.
func (r *run) accountEC2(account, region string) image.DeregisterAPI {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.accounts[account]; s != nil {
		return s.EC2(region)
	}
	return nil
}

// sayResults prints the per-region table.
func (r *run) sayResults() {
	if len(r.manifest.Regions) == 0 {
		return
	}
	r.ui.Say("Per-region results:")
	r.ui.Message(strings.TrimRight(distribute.Results(r.manifest.Regions).String(), "\n"))
	if len(r.manifest.Parameters) > 0 || len(r.manifest.LaunchTemplates) > 0 {
		var b strings.Builder
		_ = distribute.WritePublishTable(&b, r.manifest.Parameters, r.manifest.LaunchTemplates)
		r.ui.Say("Published:")
		r.ui.Message(strings.TrimRight(b.String(), "\n"))
	}
}

// mergeMaps returns base with the entries of over added, a key in both
// taking over's value, without changing either map; nil when both are
// empty.
func mergeMaps(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	m := make(map[string]string, len(base)+len(over))
	maps.Copy(m, base)
	maps.Copy(m, over)
	return m
}

// describeKeepOf says which AMIs retention keeps: the newest keep, those
// younger than days, or both.
func describeKeepOf(keep, days int) string {
	var parts []string
	if keep > 0 {
		parts = append(parts, fmt.Sprintf("the newest %d", keep))
	}
	if days > 0 {
		parts = append(parts, fmt.Sprintf("those younger than %d days", days))
	}
	return strings.Join(parts, " and ")
}

// describeSelector says which AMIs retention applies to.
func describeSelector(s distribute.Selector) string {
	var parts []string
	if s.Name != "" {
		parts = append(parts, fmt.Sprintf("name %q", s.Name))
	}
	for _, k := range sortedKeys(s.Tags) {
		parts = append(parts, fmt.Sprintf("tag %s=%s", k, s.Tags[k]))
	}
	return strings.Join(parts, " and ")
}
