package distribute

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// PublishInput says where the AMIs of a distribution are consumed: SSM
// parameters to point at them and launch templates to get a version with
// them.
type PublishInput struct {
	// Images maps region to the AMI to publish there (the output of a
	// distribution, e.g. DistributeOutput.ImageIDs). Required, non-empty.
	Images map[string]string
	// Parameters are the SSM parameters to write.
	Parameters []Parameter
	// LaunchTemplates are the launch templates to update.
	LaunchTemplates []LaunchTemplate
	// RunID marks what this run makes: launch template versions carry the
	// description "ami-distribute run <RunID>" and CreateLaunchTemplateVersion
	// a ClientToken derived from it, so that a call whose answer was lost is
	// resolved for certain, and a re-run with the same RunID does not make
	// second versions. "" = NewRunID().
	RunID string
	// Account names the account the clients act in, when it is not the
	// caller's own (a TargetAccount): it goes into the results and the
	// ledger entries. "" = the caller's account.
	Account string
}

// Parameter is an SSM parameter that is to hold the AMI of its region.
type Parameter struct {
	// Name is the parameter's full name, such as /golden/web/latest: 1 to
	// 1011 characters of a-zA-Z0-9_.-/, a name with a "/" starts with one,
	// at most 15 levels, not starting with "aws" or "ssm" (in any case).
	// Required.
	Name string
	// Region is the one region whose AMI the parameter holds. "" = the
	// parameter is written in every region of PublishInput.Images;
	// otherwise it must be one of them.
	Region string
	// Tags are put on the parameter when this run creates it (SSM takes
	// tags only then); an existing parameter keeps its own.
	Tags map[string]string
	// Description is set when this run creates the parameter (at most 1024
	// characters); an existing parameter keeps its own, so that undoing the
	// write restores it exactly.
	Description string
}

// LaunchTemplate is a launch template that is to get a new version with
// the AMI of its region.
type LaunchTemplate struct {
	// Region is the template's region. "" = every region of
	// PublishInput.Images, which only a Name can address (an ID belongs to
	// one region, so Region is required with ID); otherwise it must be one
	// of them.
	Region string
	// ID is the template's ID (lt-…). Exactly one of ID and Name is
	// required.
	ID string
	// Name is the template's name.
	Name string
	// SourceVersion is the version the new one is based on: "$Default"
	// (also the zero value), "$Latest" or a version number. It is resolved
	// to a number before the new version is made.
	SourceVersion string
	// SetDefault makes the new version the template's default version.
	SetDefault bool
}

// PublishStatus is the outcome of publishing to one parameter or launch
// template in one region.
type PublishStatus string

// Statuses of ParameterResult and LaunchTemplateResult.
const (
	// PublishWritten: the parameter holds the AMI, or the launch template
	// has a version with it (and it is the default when asked).
	PublishWritten PublishStatus = "written"
	// PublishRestored: the write was undone; the parameter holds its
	// previous value again, or the template's previous default version is
	// the default again (the version this run made is still there only
	// when Err says that deleting it failed, or when an earlier call of the
	// run made it).
	PublishRestored PublishStatus = "restored"
	// PublishDeleted: the parameter this run created was deleted again.
	PublishDeleted PublishStatus = "deleted"
	// PublishRemoved: the launch template version this run made was
	// deleted again (and the previous default restored when it was set).
	PublishRemoved PublishStatus = "removed"
	// PublishFailed: the write failed; Err says why.
	PublishFailed PublishStatus = "failed"
	// PublishUnknown: a call was interrupted and it could not be found out
	// whether it took effect; Err names what to check.
	PublishUnknown PublishStatus = "unknown"
	// PublishLeft: the write was to be undone, but someone else changed
	// the parameter or template since; it was not touched.
	PublishLeft PublishStatus = "left"
	// PublishNotStarted: nothing was done, because an earlier write failed
	// or the context ended.
	PublishNotStarted PublishStatus = "not-started"
)

// PublishOutput is the result of Publish: one result per parameter and
// launch template per region, regions in sorted order, each in input order.
type PublishOutput struct {
	Parameters      []ParameterResult      `json:"parameters,omitempty"`
	LaunchTemplates []LaunchTemplateResult `json:"launch_templates,omitempty"`
}

// Err joins the errors of every result, or returns nil.
func (out *PublishOutput) Err() error {
	var errs []error
	for _, r := range out.Parameters {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	for _, r := range out.LaunchTemplates {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// ParameterResult is the outcome for one parameter in one region.
type ParameterResult struct {
	// Account is the account of the parameter, "" for the caller's own
	// (PublishInput.Account).
	Account string `json:"account,omitempty"`
	// Region and Name name the parameter.
	Region string `json:"region"`
	Name   string `json:"name"`
	// ImageID is the AMI written.
	ImageID string `json:"image_id"`
	// Version is the parameter version that holds ImageID: the one this
	// run wrote, or the current one when the parameter held ImageID already.
	Version int64 `json:"version,omitempty"`
	// Previous is the value before this run ("" when the run created the
	// parameter).
	Previous string `json:"previous,omitempty"`
	// Created reports whether this run created the parameter.
	Created bool `json:"created,omitempty"`
	// Status is the outcome.
	Status PublishStatus `json:"status"`
	// Err is the failure; serialized as "error".
	Err error `json:"-"`
}

// Resource is the ledger entry of the parameter's write.
func (r ParameterResult) Resource() ledger.Resource {
	return ledger.Resource{Kind: ledger.KindParameter, ID: r.Name, Region: r.Region, Account: r.Account}
}

// MarshalJSON adds Err as the string field "error".
func (r ParameterResult) MarshalJSON() ([]byte, error) {
	type plain ParameterResult
	return marshalWithError(plain(r), r.Err)
}

// UnmarshalJSON reads what MarshalJSON writes; "error" becomes an error
// with that text.
func (r *ParameterResult) UnmarshalJSON(b []byte) error {
	type plain ParameterResult
	return unmarshalWithError(b, (*plain)(r), &r.Err)
}

// LaunchTemplateResult is the outcome for one launch template in one
// region.
type LaunchTemplateResult struct {
	// Account is the account of the template, "" for the caller's own
	// (PublishInput.Account).
	Account string `json:"account,omitempty"`
	// Region, ID and Name name the template.
	Region string `json:"region"`
	ID     string `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	// ImageID is the AMI of the new version.
	ImageID string `json:"image_id"`
	// Version is the version made (0 when none was).
	Version int64 `json:"version,omitempty"`
	// SourceVersion is the version it was based on, resolved to a number.
	SourceVersion int64 `json:"source_version,omitempty"`
	// PreviousDefault is the default version before this run.
	PreviousDefault int64 `json:"previous_default,omitempty"`
	// Default reports whether Version is the default version now.
	Default bool `json:"default"`
	// Status is the outcome.
	Status PublishStatus `json:"status"`
	// Err is the failure; serialized as "error".
	Err error `json:"-"`
}

// Resource is the ledger entry of the version made.
func (r LaunchTemplateResult) Resource() ledger.Resource {
	return ledger.Resource{Kind: ledger.KindLaunchTemplateVersion, ID: fmt.Sprintf("%s:%d", r.ID, r.Version), Region: r.Region, Account: r.Account}
}

// MarshalJSON adds Err as the string field "error".
func (r LaunchTemplateResult) MarshalJSON() ([]byte, error) {
	type plain LaunchTemplateResult
	return marshalWithError(plain(r), r.Err)
}

// UnmarshalJSON reads what MarshalJSON writes; "error" becomes an error
// with that text.
func (r *LaunchTemplateResult) UnmarshalJSON(b []byte) error {
	type plain LaunchTemplateResult
	return unmarshalWithError(b, (*plain)(r), &r.Err)
}

// Limits of the SSM and EC2 APIs checked by PublishInput.Validate.
const (
	maxParameterName        = 1011
	maxParameterLevels      = 15
	maxParameterDescription = 1024
	maxParameterTags        = 50
	maxRunID                = 200 // keeps the version description within 255 characters
)

var (
	parameterNameRe      = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)
	launchTemplateIDRe   = regexp.MustCompile(`^lt-[0-9a-f]{8,17}$`)
	launchTemplateNameRe = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)
)

// Validate checks in without any AWS call and reports every problem at
// once, each naming its field.
func (in *PublishInput) Validate() error {
	if in == nil {
		return errors.New("publish: input is nil")
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(in.Images) == 0 {
		add("images: at least one region and AMI is required")
	}
	for _, region := range slices.Sorted(maps.Keys(in.Images)) {
		if err := ValidateRegion(region); err != nil {
			add("images[%q]: %w", region, err)
		}
		if id := in.Images[region]; !strings.HasPrefix(id, "ami-") {
			add("images[%q]: %q is not an AMI ID (ami-…)", region, id)
		}
	}
	if len(in.RunID) > maxRunID {
		add("run_id: %d characters; at most %d", len(in.RunID), maxRunID)
	}
	seenParam := map[string]int{}
	for i, p := range in.Parameters {
		in.validateParameter(i, p, seenParam, add)
	}
	seenLT := map[string]int{}
	for i, lt := range in.LaunchTemplates {
		in.validateLaunchTemplate(i, lt, seenLT, add)
	}
	return errors.Join(errs...)
}

// validateParameter checks Parameters[i] and hands every problem to add.
// seen maps each region and name written by the parameters before it to
// the index of the one that writes it.
func (in *PublishInput) validateParameter(i int, p Parameter, seen map[string]int, add func(string, ...any)) {
	f := fmt.Sprintf("parameters[%d]", i)
	if err := ValidateParameterName(p.Name); err != nil {
		add("%s.name: %w", f, err)
	}
	in.checkRegion(f, p.Region, add)
	if len(p.Description) > maxParameterDescription {
		add("%s.description: %d characters; at most %d", f, len(p.Description), maxParameterDescription)
	}
	if len(p.Tags) > maxParameterTags {
		add("%s.tags: %d tags; at most %d", f, len(p.Tags), maxParameterTags)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
		switch v := p.Tags[k]; {
		case k == "" || len(k) > 128:
			add("%s.tags: key %q must have 1 to 128 characters", f, k)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			add("%s.tags: key %q: the aws: prefix is reserved for AWS", f, k)
		case len(v) > 256:
			add("%s.tags[%q]: value has %d characters; at most 256", f, k, len(v))
		}
	}
	if region, j, ok := claim(seen, i, targetRegions(in.Images, p.Region), p.Name); ok {
		add("%s: %s in %s is also written by parameters[%d]", f, p.Name, region, j)
	}
}

// validateLaunchTemplate checks LaunchTemplates[i] and hands every problem
// to add. seen maps each region and template updated by the launch
// templates before it to the index of the one that updates it.
func (in *PublishInput) validateLaunchTemplate(i int, lt LaunchTemplate, seen map[string]int, add func(string, ...any)) {
	f := fmt.Sprintf("launch_templates[%d]", i)
	switch {
	case lt.ID == "" && lt.Name == "":
		add("%s: an id or a name is required", f)
	case lt.ID != "" && lt.Name != "":
		add("%s: give an id or a name, not both", f)
	case lt.ID != "" && ValidateLaunchTemplateID(lt.ID) != nil:
		add("%s.id: %w", f, ValidateLaunchTemplateID(lt.ID))
	case lt.ID != "" && lt.Region == "":
		add("%s.region: required with an id (a launch template ID belongs to one region)", f)
	case lt.Name != "" && ValidateLaunchTemplateName(lt.Name) != nil:
		add("%s.name: %w", f, ValidateLaunchTemplateName(lt.Name))
	}
	in.checkRegion(f, lt.Region, add)
	if err := ValidateSourceVersion(lt.SourceVersion); err != nil {
		add("%s.source_version: %w", f, err)
	}
	if region, j, ok := claim(seen, i, targetRegions(in.Images, lt.Region), lt.ID+"\x00"+lt.Name); ok {
		add("%s: the template is also updated in %s by launch_templates[%d]", f, region, j)
	}
}

// checkRegion refuses the region of the item named field unless it is ""
// or a region of in.Images: there is no AMI to publish elsewhere.
func (in *PublishInput) checkRegion(field, region string, add func(string, ...any)) {
	if region != "" && in.Images != nil {
		if _, ok := in.Images[region]; !ok {
			add("%s.region: %s is not a region of images", field, region)
		}
	}
}

// claim records in seen that item i writes ref in each of regions, and
// returns the first region where an item j before it writes ref already:
// two items must not write the same thing in one region.
func claim(seen map[string]int, i int, regions []string, ref string) (region string, j int, clash bool) {
	for _, r := range regions {
		key := r + "\x00" + ref
		if prev, ok := seen[key]; ok && prev != i {
			return r, prev, true
		}
		seen[key] = i
	}
	return "", 0, false
}

// ValidateLaunchTemplateID checks the syntax of a launch template ID.
func ValidateLaunchTemplateID(id string) error {
	if !launchTemplateIDRe.MatchString(id) {
		return fmt.Errorf("%q is not a launch template ID (lt- and 8 to 17 hexadecimal digits)", id)
	}
	return nil
}

// ValidateLaunchTemplateName checks the syntax of a launch template name.
func ValidateLaunchTemplateName(name string) error {
	if !launchTemplateNameRe.MatchString(name) {
		return fmt.Errorf("%q is not a launch template name (3 to 128 characters of a-zA-Z0-9().-/_)", name)
	}
	return nil
}

// ValidateSourceVersion checks LaunchTemplate.SourceVersion: "",
// "$Default", "$Latest" or a version number.
func ValidateSourceVersion(s string) error {
	_, err := parseSourceVersion(s)
	return err
}

// ValidateParameterName checks the naming rules of SSM parameters.
func ValidateParameterName(name string) error {
	switch {
	case name == "":
		return errors.New("required")
	case len(name) > maxParameterName:
		return fmt.Errorf("%d characters; at most %d", len(name), maxParameterName)
	case !parameterNameRe.MatchString(name):
		return fmt.Errorf("%q: only a-zA-Z0-9_.-/ are allowed", name)
	case strings.Contains(name, "/") && !strings.HasPrefix(name, "/"):
		return fmt.Errorf("%q: a name in a hierarchy starts with /", name)
	case strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		return fmt.Errorf("%q: every level of the hierarchy needs a name", name)
	}
	bare := strings.ToLower(strings.TrimPrefix(name, "/"))
	if strings.HasPrefix(bare, "aws") || strings.HasPrefix(bare, "ssm") {
		return fmt.Errorf("%q: names starting with aws or ssm (in any case) are reserved", name)
	}
	if n := strings.Count(bare, "/") + 1; n > maxParameterLevels {
		return fmt.Errorf("%q: %d levels; at most %d", name, n, maxParameterLevels)
	}
	return nil
}

// sourceVersion is a parsed LaunchTemplate.SourceVersion: an alias or a
// number.
type sourceVersion struct {
	alias  string // "$Default" or "$Latest"
	number int64
}

// resolve returns the version number sv stands for in a template whose
// default and latest versions are def and latest.
func (sv sourceVersion) resolve(def, latest int64) int64 {
	switch sv.alias {
	case "$Default":
		return def
	case "$Latest":
		return latest
	}
	return sv.number
}

func parseSourceVersion(s string) (sourceVersion, error) {
	switch s {
	case "", "$Default":
		return sourceVersion{alias: "$Default"}, nil
	case "$Latest":
		return sourceVersion{alias: "$Latest"}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return sourceVersion{}, fmt.Errorf("%q is not $Default, $Latest or a version number", s)
	}
	return sourceVersion{number: n}, nil
}

// targetRegions returns the regions an item with region applies to, in
// sorted order.
func targetRegions(images map[string]string, region string) []string {
	if region != "" {
		return []string{region}
	}
	return slices.Sorted(maps.Keys(images))
}

// versionDescription returns the description Publish gives the launch
// template versions of a run.
func versionDescription(runID string) string {
	return "ami-distribute run " + runID
}

// Publish puts each AMI of in.Images where it is consumed: it writes the
// SSM parameters in.Parameters (type String, data type aws:ec2:image) and
// gives the launch templates in.LaunchTemplates a new version with the AMI
// of their region, made the default version when asked.
//
// Regions are worked on one after another in sorted order, in each the
// parameters first, then the launch templates, each in input order. A
// parameter that holds the AMI already is not written again. A
// CreateLaunchTemplateVersion call carries a ClientToken derived from the
// run ID, the region and the template, so that a call whose answer was lost
// is repeated without making a second version; a PutParameter whose answer
// was lost is checked with GetParameter (the AMI ID tells this run's write
// from anyone else's).
//
// Error policy: the first failure, or the end of ctx, stops the run, and
// every change Publish made is undone in reverse order with a fresh
// context bounded by Options.CleanupTimeout: a parameter gets its previous
// value back (or is deleted when this run created it), a launch template
// its previous default version, and the version this run made is deleted.
// A parameter or template that someone else changed since this run wrote
// it is left as it is (status PublishLeft, and a log message). Publish then
// returns the output with every result's status and the error joined with
// cleanup failures.
//
// On success, when Options.Ledger is set, every change is recorded there
// (kinds ledger.KindParameter and ledger.KindLaunchTemplateVersion) with
// the same undo, so that a caller whose later step fails can roll back with
// Ledger.Undo.
//
// The parameters are written with the SSM clients of Options.SSM, which
// may be nil when in.Parameters is empty; clients may be nil when
// in.LaunchTemplates is empty.
func Publish[C LaunchTemplateAPI](ctx context.Context, clients func(region string) C, in *PublishInput, optFns ...func(*Options)) (*PublishOutput, error) {
	o := newOptions(optFns)
	if err := checkPublishClients(in, clients == nil, o.SSM == nil); err != nil {
		return nil, err
	}
	p := &publisher{in: in, o: o, clients: func(r string) LaunchTemplateAPI { return clients(r) }, runID: in.RunID, out: &PublishOutput{}}
	if p.runID == "" {
		p.runID = NewRunID()
	}
	return p.run(ctx)
}

// publisher is one Publish call.
type publisher struct {
	in      *PublishInput
	o       Options
	clients func(region string) LaunchTemplateAPI
	runID   string
	out     *PublishOutput
	steps   []publishStep
	undos   []undoEntry
}

// publishStep is one write to make: a parameter or a launch template in one
// region.
type publishStep struct {
	region, image string
	param         *Parameter
	lt            *LaunchTemplate
	index         int // into out.Parameters or out.LaunchTemplates
}

// undoEntry is a change Publish made, with the function that undoes it.
// undo returns the status the result gets ("" = unchanged), also together
// with an error when it got part of the way.
type undoEntry struct {
	res  ledger.Resource
	undo func(context.Context) (PublishStatus, error)
	set  func(PublishStatus, error) // records the outcome in the result
}

func (p *publisher) run(ctx context.Context) (*PublishOutput, error) {
	for _, region := range slices.Sorted(maps.Keys(p.in.Images)) {
		image := p.in.Images[region]
		for i := range p.in.Parameters {
			prm := &p.in.Parameters[i]
			if prm.Region != "" && prm.Region != region {
				continue
			}
			p.steps = append(p.steps, publishStep{region: region, image: image, param: prm, index: len(p.out.Parameters)})
			p.out.Parameters = append(p.out.Parameters, ParameterResult{Account: p.in.Account, Region: region, Name: prm.Name, ImageID: image, Status: PublishNotStarted})
		}
		for i := range p.in.LaunchTemplates {
			lt := &p.in.LaunchTemplates[i]
			if lt.Region != "" && lt.Region != region {
				continue
			}
			p.steps = append(p.steps, publishStep{region: region, image: image, lt: lt, index: len(p.out.LaunchTemplates)})
			p.out.LaunchTemplates = append(p.out.LaunchTemplates, LaunchTemplateResult{Account: p.in.Account, Region: region, ID: lt.ID, Name: lt.Name, ImageID: image, Status: PublishNotStarted})
		}
	}
	for _, s := range p.steps {
		var err error
		if err = ctx.Err(); err == nil {
			if s.param != nil {
				err = p.writeParameter(ctx, s)
			} else {
				err = p.writeLaunchTemplate(ctx, s)
			}
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				err = errors.Join(err, fmt.Errorf("publish: %w", context.Cause(ctx)))
			}
			return p.out, p.rollback(ctx, err)
		}
	}
	p.handOver()
	return p.out, nil
}

// undoOutcome returns the set function of an undoEntry for a result with
// the given status and error: the status an undo reports replaces the
// result's, and an undo's error is joined to the result's.
func undoOutcome(status *PublishStatus, errp *error) func(PublishStatus, error) {
	return func(st PublishStatus, err error) {
		if st != "" {
			*status = st
		}
		if err != nil {
			*errp = errors.Join(*errp, err)
		}
	}
}

// record notes a change this run made.
func (p *publisher) record(e undoEntry) { p.undos = append(p.undos, e) }

// rollback undoes every change of this run in reverse order with a fresh
// context and joins the failures to err.
func (p *publisher) rollback(ctx context.Context, err error) error {
	if len(p.undos) == 0 {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.CleanupTimeout)
	defer cancel()
	var errs []error
	for i := len(p.undos) - 1; i >= 0; i-- {
		e := p.undos[i]
		st, uerr := e.undo(cctx)
		if uerr != nil {
			uerr = fmt.Errorf("undo %s: %w", e.res, uerr)
			errs = append(errs, uerr)
		}
		if st != "" || uerr != nil {
			e.set(st, uerr)
		}
	}
	if len(errs) > 0 {
		return errors.Join(err, fmt.Errorf("publish: roll back: %w", errors.Join(errs...)))
	}
	return err
}

// handOver records every change in Options.Ledger, when set.
func (p *publisher) handOver() {
	if p.o.Ledger == nil {
		return
	}
	for _, e := range p.undos {
		undo := e.undo
		p.o.Ledger.Record(e.res, func(ctx context.Context) error {
			_, err := undo(ctx)
			return err
		})
	}
}

// PreflightPublish checks, without changing anything, that Publish can
// succeed with in: the input is valid (no AWS call is made otherwise),
// every launch template exists in each of its regions (DescribeLaunchTemplates),
// and every parameter that exists already is a String parameter
// (GetParameter). The AMIs of in.Images are not looked at, so that a
// distribution can check its publishing before its copies exist. Problems
// are reported all at once. As with Publish, the parameters are read with
// the SSM clients of Options.SSM.
func PreflightPublish[C LaunchTemplateAPI](ctx context.Context, clients func(region string) C, in *PublishInput, optFns ...func(*Options)) (*PreflightPublishOutput, error) {
	var lt func(region string) LaunchTemplateAPI
	if clients != nil {
		lt = func(r string) LaunchTemplateAPI { return clients(r) }
	}
	if err := preflightPublish(ctx, lt, in, newOptions(optFns)); err != nil {
		return nil, err
	}
	return &PreflightPublishOutput{}, nil
}

// PreflightPublishOutput is the result of PreflightPublish; it carries
// nothing yet.
type PreflightPublishOutput struct{}

// checkPublishClients validates in and refuses it when it needs a client
// function that is missing: SSM clients (Options.SSM) for parameters, EC2
// clients for launch templates.
func checkPublishClients(in *PublishInput, noEC2, noSSM bool) error {
	if err := in.Validate(); err != nil {
		return fmt.Errorf("publish: invalid input: %w", err)
	}
	if len(in.Parameters) > 0 && noSSM {
		return errors.New("publish: parameters are given but Options.SSM is nil; it must return the SSM client of each region")
	}
	if len(in.LaunchTemplates) > 0 && noEC2 {
		return errors.New("publish: launch templates are given but no EC2 client function")
	}
	return nil
}

func preflightPublish(ctx context.Context, clients func(region string) LaunchTemplateAPI, in *PublishInput, o Options) error {
	if err := checkPublishClients(in, clients == nil, o.SSM == nil); err != nil {
		return err
	}
	var errs []error
	where := ""
	if in.Account != "" {
		where = " of account " + in.Account
	}
	for _, region := range slices.Sorted(maps.Keys(in.Images)) {
		for _, p := range in.Parameters {
			if p.Region != "" && p.Region != region {
				continue
			}
			cur, err := getParameter(ctx, o.SSM(region), p.Name)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("read parameter %s%s in %s: %w", p.Name, where, region, err))
			case cur != nil && cur.Type != "String":
				errs = append(errs, fmt.Errorf("parameter %s%s in %s is of type %s; only a String parameter can hold an AMI", p.Name, where, region, cur.Type))
			}
		}
		for _, lt := range in.LaunchTemplates {
			if lt.Region != "" && lt.Region != region {
				continue
			}
			_, err := describeLaunchTemplate(ctx, clients(region), lt.ID, lt.Name)
			switch {
			case isLaunchTemplateNotFound(err):
				errs = append(errs, fmt.Errorf("launch template %s%s does not exist in %s", lt.ID+lt.Name, where, region))
			case err != nil:
				errs = append(errs, fmt.Errorf("describe launch template %s%s in %s: %w", lt.ID+lt.Name, where, region, err))
			}
		}
	}
	return errors.Join(errs...)
}
