package distribute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"
)

// BundleDeleteAPI is the client behaviour Retain needs to delete the S3
// bundle (manifest and parts) of an instance-store AMI it removes, given
// the AMI's region (an instance-store AMI is registered from a bucket in
// its own region, so this is the region of the S3 client to use) and
// manifest location ("bucket/prefix/image.manifest.xml"). A caller
// typically implements it with package bundlestore's Delete and an S3
// client of that region.
//
// An error wrapping ErrBundleSkipped (for example AccessDenied on a
// bucket of another account) is reported as a warning on the Decision, not
// as a failure: the AMI is removed, its bundle left.
type BundleDeleteAPI interface {
	DeleteBundle(ctx context.Context, region, manifestLocation string) error
}

// ErrBundleSkipped marks a bundle a BundleDeleteAPI chose not to, or may
// not, delete; see BundleDeleteAPI.
var ErrBundleSkipped = errors.New("bundle not deleted")

// Selector chooses the AMIs retention may consider, among the caller's own
// AMIs (owner "self"). At least one of Name and Tags must be set.
type Selector struct {
	// Name is a name pattern: "*" matches any run of characters, "?" one
	// character, everything else itself (EC2's name filter syntax).
	Name string `json:"name,omitempty"`
	// Tags must all be present on the AMI with exactly these values.
	Tags map[string]string `json:"tags,omitempty"`
}

// Validate refuses an empty selector, which would select every AMI of the
// account.
func (s Selector) Validate() error {
	if s.Name == "" && len(s.Tags) == 0 {
		return errors.New("selector: set a name pattern or tags (an empty selector would select every AMI)")
	}
	for k := range s.Tags {
		if k == "" {
			return errors.New("selector: empty tag key")
		}
	}
	return nil
}

// Match reports whether img is selected by s.
func (s Selector) Match(img types.Image) bool {
	if s.Name != "" && !globRe(s.Name).MatchString(aws.ToString(img.Name)) {
		return false
	}
	for k, v := range s.Tags {
		if !hasTag(img, k, v) {
			return false
		}
	}
	return true
}

func globRe(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func (s Selector) filters() []types.Filter {
	var f []types.Filter
	if s.Name != "" {
		f = append(f, types.Filter{Name: aws.String("name"), Values: []string{s.Name}})
	}
	for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
		f = append(f, types.Filter{Name: aws.String("tag:" + k), Values: []string{s.Tags[k]}})
	}
	return f
}

// RetainInput is the input of Retain.
type RetainInput struct {
	// Regions to prune. Required.
	Regions []string
	// Selector chooses the AMIs considered. Required.
	Selector Selector
	// KeepNewest keeps the N most recently created selected AMIs per
	// region. 0 = no count rule.
	KeepNewest int
	// KeepWithin keeps the selected AMIs created less than this long ago.
	// 0 = no age rule. With both rules, an AMI is kept when either keeps
	// it. At least one rule must be set.
	KeepWithin time.Duration
	// Protect lists AMI IDs never removed, such as the ones just made. They
	// count towards KeepNewest.
	Protect []string
	// Parameters are SSM parameters (as Publish writes them: Region ""
	// = every region) whose current values are never removed. They need
	// Options.SSM.
	Parameters []Parameter
	// LaunchTemplates are launch templates (as Publish updates them) whose
	// versions, every one of them, keep their AMIs. Any template's default
	// and latest versions keep theirs in any case.
	LaunchTemplates []LaunchTemplate
	// DryRun only returns the decisions; nothing is changed.
	DryRun bool
	// KeepSnapshots leaves the snapshots of removed AMIs. By default they
	// are deleted.
	KeepSnapshots bool
	// Bundles deletes the S3 bundles of removed instance-store AMIs. When
	// nil, instance-store AMIs are not removed (an error says so) rather
	// than leaving their bundles behind.
	Bundles BundleDeleteAPI
	// Concurrency caps the number of regions worked on at once.
	// 0 (DefaultConcurrency) = every region at once.
	Concurrency int
}

// Validate checks in without any AWS call.
func (in *RetainInput) Validate() error {
	var errs []error
	if len(in.Regions) == 0 {
		errs = append(errs, errors.New("Regions: at least one region is required"))
	}
	errs = append(errs, ValidateEach("Regions", in.Regions, ValidateRegion))
	if err := in.Selector.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Selector: %w", err))
	}
	for i, p := range in.Parameters {
		if err := ValidateParameterName(p.Name); err != nil {
			errs = append(errs, fmt.Errorf("Parameters[%d].Name: %w", i, err))
		}
	}
	switch {
	case in.KeepNewest < 0:
		errs = append(errs, fmt.Errorf("KeepNewest: %d is negative", in.KeepNewest))
	case in.KeepWithin < 0:
		errs = append(errs, fmt.Errorf("KeepWithin: %s is negative", in.KeepWithin))
	case in.KeepNewest == 0 && in.KeepWithin == 0:
		errs = append(errs, errors.New("KeepNewest or KeepWithin must be set (otherwise every selected AMI would be removed)"))
	}
	return errors.Join(errs...)
}

// Action is what retention does with an AMI.
type Action string

// Actions of a Decision.
const (
	ActionKeep   Action = "keep"
	ActionRemove Action = "remove"
)

// Decision is what retention decided, and did, for one AMI.
type Decision struct {
	// Account is the account of the AMI when retention ran with the
	// clients of another account; "" otherwise (set by the caller).
	Account string    `json:"account,omitempty"`
	Region  string    `json:"region"`
	ImageID string    `json:"image_id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created,omitzero"`
	Action  Action    `json:"action"`
	// Reason explains the action ("newest 3", "in use by i-…", …).
	Reason string `json:"reason"`
	// Removed is true once the AMI was deregistered (never in a dry run).
	Removed bool `json:"removed,omitempty"`
	// DeletedSnapshotIDs are the snapshots deleted with it.
	DeletedSnapshotIDs []string `json:"deleted_snapshot_ids,omitempty"`
	// BundleLocation is the deleted S3 bundle of an instance-store AMI.
	BundleLocation string `json:"bundle_location,omitempty"`
	// Warnings are problems that did not stop the removal, such as a
	// bundle left in a bucket that may not be changed.
	Warnings []string `json:"warnings,omitempty"`
	// Err is a failure to remove the AMI.
	Err error `json:"-"`
}

// Decisions lists retention decisions: per region in input order, newest
// AMI first.
type Decisions []Decision

// ToRemove returns the decisions to remove.
func (ds Decisions) ToRemove() Decisions {
	return slices.DeleteFunc(slices.Clone(ds), func(d Decision) bool { return d.Action != ActionRemove })
}

// WriteTable prints one line per AMI.
func (ds Decisions) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tIMAGE\tNAME\tCREATED\tACTION\tREASON")
	for _, d := range ds {
		act := string(d.Action)
		switch {
		case d.Err != nil:
			act += " (failed: " + firstLine(d.Err.Error()) + ")"
		case d.Removed:
			act = "removed"
			if len(d.Warnings) > 0 {
				act += " (warning: " + firstLine(d.Warnings[0]) + ")"
			}
		}
		created := "-"
		if !d.Created.IsZero() {
			created = d.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Region, d.ImageID, dash(d.Name), created, act, d.Reason)
	}
	return tw.Flush()
}

// RetainOutput is the result of Retain.
type RetainOutput struct {
	// Decisions covers every selected AMI in every region.
	Decisions Decisions
}

// Retain removes, in each region, the caller's AMIs matching in.Selector
// that neither retention rule keeps, and returns a decision for every
// selected AMI. With in.DryRun it only plans.
//
// Only AMIs owned by the caller (DescribeImages with owner "self") are
// considered. An AMI is never removed when it is not matched by the
// selector (checked on EC2's answer again, not only through the request's
// filters), is listed in in.Protect, has no readable creation
// date, is used by a pending, running, stopping or stopped instance
// (DescribeInstances, filter image-id), or is the image of the latest or
// default version of a launch template (one paginated
// DescribeLaunchTemplateVersions per region across all templates, filter
// image-id; launch templates that name their AMI through an SSM parameter
// are not resolved). These checks run only for removal candidates; if they
// fail, nothing is removed in that region.
//
// Removing an AMI deregisters it, deletes its snapshots (unless
// in.KeepSnapshots) and, for an instance-store AMI, its S3 bundle through
// in.Bundles.
//
// Error policy: every region and every AMI is tried; failures are recorded
// on their Decision and returned joined with errors.Join, alongside the
// output.
func Retain[C RetainAPI](ctx context.Context, clients func(region string) C, in *RetainInput, optFns ...func(*Options)) (*RetainOutput, error) {
	o := newOptions(optFns)
	if in == nil {
		return nil, errors.New("retain: input is nil")
	}
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("retain: invalid input: %w", err)
	}
	per := make([]Decisions, len(in.Regions))
	errs := make([]error, len(in.Regions))
	var g errgroup.Group
	g.SetLimit(concurrency(in.Concurrency, len(in.Regions)))
	for i, region := range in.Regions {
		g.Go(func() error {
			rr := &regionRetention{api: clients(region), region: region, in: in, o: o}
			per[i], errs[i] = rr.run(ctx)
			return nil
		})
	}
	_ = g.Wait()
	return &RetainOutput{Decisions: slices.Concat(per...)}, errors.Join(errs...)
}

// regionRetention is Retain in one region.
type regionRetention struct {
	api    RetainAPI
	region string
	in     *RetainInput
	o      Options
}

// agedImage is a selected AMI with its creation time; known is false when
// the creation date cannot be read.
type agedImage struct {
	img     types.Image
	created time.Time
	known   bool
}

// run decides on every selected AMI of the region and removes the ones to
// remove, unless in.DryRun. Every removal is tried; the failures are
// returned joined.
func (rr *regionRetention) run(ctx context.Context) (Decisions, error) {
	sel := rr.in.Selector
	imgs, err := ownImages(ctx, rr.api, sel.filters(), func(img types.Image) bool {
		return sel.Match(img) && img.State != types.ImageStateDeregistered
	})
	if err != nil {
		return nil, fmt.Errorf("retain in %s: list AMIs: %w", rr.region, err)
	}
	items := newestFirst(imgs)
	ds, cands := rr.decide(items)
	if len(cands) == 0 {
		return ds, nil
	}
	if err := rr.keepInUse(ctx, ds, cands); err != nil {
		return ds, err
	}
	if rr.in.DryRun || len(cands) == 0 {
		return ds, nil
	}
	var errs []error
	for _, i := range slices.Sorted(maps.Values(cands)) {
		if err := rr.remove(ctx, &ds[i], items[i].img); err != nil {
			errs = append(errs, err)
		}
	}
	return ds, errors.Join(errs...)
}

// newestFirst returns imgs with their creation times, the most recently
// created first (unreadable dates last), AMIs created at the same time in
// the order of their IDs.
func newestFirst(imgs []types.Image) []agedImage {
	items := make([]agedImage, len(imgs))
	for i, img := range imgs {
		t, err := time.Parse(time.RFC3339, aws.ToString(img.CreationDate))
		items[i] = agedImage{img: img, created: t, known: err == nil}
	}
	slices.SortStableFunc(items, func(a, b agedImage) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(aws.ToString(a.img.ImageId), aws.ToString(b.img.ImageId))
	})
	return items
}

// decide applies the retention rules to items, newest first, and returns
// a decision for each and the candidates for removal (AMI ID → index),
// which the in-use checks may still keep.
func (rr *regionRetention) decide(items []agedImage) (Decisions, map[string]int) {
	in, now := rr.in, rr.o.Now()
	ds := make(Decisions, len(items))
	cands := map[string]int{}
	for i, it := range items {
		id := aws.ToString(it.img.ImageId)
		d := Decision{Region: rr.region, ImageID: id, Name: aws.ToString(it.img.Name), Created: it.created, Action: ActionKeep}
		switch {
		case slices.Contains(in.Protect, id):
			d.Reason = "protected"
		case !it.known:
			d.Reason = fmt.Sprintf("creation date %q unreadable", aws.ToString(it.img.CreationDate))
		case in.KeepNewest > 0 && i < in.KeepNewest:
			d.Reason = fmt.Sprintf("among the newest %d", in.KeepNewest)
		case in.KeepWithin > 0 && now.Sub(it.created) < in.KeepWithin:
			d.Reason = fmt.Sprintf("younger than %s", in.KeepWithin)
		default:
			d.Action = ActionRemove
			d.Reason = removeReason(in, i)
			cands[id] = i
		}
		ds[i] = d
	}
	return ds, cands
}

// keepInUse keeps the candidates that an instance, the latest or default
// version of a launch template, or what in.Parameters and
// in.LaunchTemplates publish still uses, and takes them out of cands. When
// that cannot be found out, every candidate is kept: nothing is removed in
// the region.
func (rr *regionRetention) keepInUse(ctx context.Context, ds Decisions, cands map[string]int) error {
	users, err := imagesInUse(ctx, rr.api, slices.Sorted(maps.Keys(cands)))
	var published map[string]string
	if err == nil {
		published, err = publishedImages(ctx, rr.api, rr.o, rr.region, rr.in)
	}
	if err != nil {
		for _, i := range cands {
			ds[i].Action, ds[i].Reason = ActionKeep, "in-use check failed"
		}
		return fmt.Errorf("retain in %s: %w (nothing removed in this region)", rr.region, err)
	}
	for id, user := range published {
		if _, ok := cands[id]; ok && users[id] == "" {
			users[id] = user
		}
	}
	for id, user := range users {
		i := cands[id]
		ds[i].Action, ds[i].Reason = ActionKeep, "in use by "+user
		delete(cands, id)
	}
	return nil
}

// remove deregisters the AMI img of d, deletes its snapshots unless
// in.KeepSnapshots and, for an instance-store AMI, its bundle; without
// in.Bundles an instance-store AMI is kept, so that its bundle is not
// left behind. It records the outcome on d and returns the failure to
// report.
func (rr *regionRetention) remove(ctx context.Context, d *Decision, img types.Image) error {
	in, o, region := rr.in, rr.o, rr.region
	loc := ""
	if img.RootDeviceType == types.DeviceTypeInstanceStore {
		loc = aws.ToString(img.ImageLocation)
		if in.Bundles == nil {
			d.Err = fmt.Errorf("instance-store AMI with bundle %q: no bundle deleter given; not removed so that the bundle is not left behind", loc)
			return fmt.Errorf("retain in %s: %s: %w", region, d.ImageID, d.Err)
		}
	}
	d.Removed, d.DeletedSnapshotIDs, d.Err = o.deregisterImage(ctx, rr.api, d.ImageID, region, !in.KeepSnapshots)
	if d.Removed && loc != "" {
		switch err := in.Bundles.DeleteBundle(ctx, region, loc); {
		case errors.Is(err, ErrBundleSkipped):
			w := fmt.Sprintf("bundle %q of %s left in place: %v", loc, d.ImageID, err)
			d.Warnings = append(d.Warnings, w)
			o.logf("%s: %s", region, w)
		case err != nil:
			d.Err = errors.Join(d.Err, fmt.Errorf("delete bundle %q of %s in %s: %w", loc, d.ImageID, region, err))
		default:
			d.BundleLocation = loc
		}
	}
	if d.Err != nil {
		return fmt.Errorf("retain in %s: %w", region, d.Err)
	}
	o.logf("removed %s (%s) in %s: %s", d.ImageID, d.Name, region, d.Reason)
	return nil
}

func removeReason(in *RetainInput, rank int) string {
	var parts []string
	if in.KeepNewest > 0 {
		parts = append(parts, fmt.Sprintf("number %d by age, beyond the newest %d", rank+1, in.KeepNewest))
	}
	if in.KeepWithin > 0 {
		parts = append(parts, fmt.Sprintf("older than %s", in.KeepWithin))
	}
	return strings.Join(parts, ", ")
}

var activeInstanceStates = []string{"pending", "running", "stopping", "stopped"}

// imagesInUse maps each of ids used by an instance or by the latest or
// default version of a launch template to a description of the user.
func imagesInUse(ctx context.Context, api RetainAPI, ids []string) (map[string]string, error) {
	users := map[string]string{}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for batch := range slices.Chunk(ids, 200) {
		pg := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{
				{Name: aws.String("image-id"), Values: batch},
				{Name: aws.String("instance-state-name"), Values: activeInstanceStates},
			},
		})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("find instances using the AMIs: %w", err)
			}
			for _, res := range page.Reservations {
				for _, inst := range res.Instances {
					id := aws.ToString(inst.ImageId)
					state := ""
					if inst.State != nil {
						state = string(inst.State.Name)
					}
					if want[id] && slices.Contains(activeInstanceStates, state) && users[id] == "" {
						users[id] = fmt.Sprintf("instance %s (%s)", aws.ToString(inst.InstanceId), state)
					}
				}
			}
		}
		pt := ec2.NewDescribeLaunchTemplateVersionsPaginator(api, &ec2.DescribeLaunchTemplateVersionsInput{
			Versions:   []string{"$Latest", "$Default"},
			Filters:    []types.Filter{{Name: aws.String("image-id"), Values: batch}},
			MaxResults: aws.Int32(200),
		})
		for pt.HasMorePages() {
			page, err := pt.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("find launch templates using the AMIs: %w", err)
			}
			for _, v := range page.LaunchTemplateVersions {
				if v.LaunchTemplateData == nil {
					continue
				}
				id := aws.ToString(v.LaunchTemplateData.ImageId)
				if want[id] && users[id] == "" {
					users[id] = fmt.Sprintf("launch template %s version %d", aws.ToString(v.LaunchTemplateId), aws.ToInt64(v.VersionNumber))
				}
			}
		}
	}
	return users, nil
}
