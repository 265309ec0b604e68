package instance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/ec2tag"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/lost"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Kinds of the resources RunSpot records besides the instance.
const (
	// KindLaunchTemplate is a launch template; its ID is "lt-…".
	KindLaunchTemplate ledger.Kind = "launch-template"
	// KindFleet is an EC2 Fleet; its ID is "fleet-…".
	KindFleet ledger.Kind = "fleet"
)

// SpotAPI is the client behaviour RunSpot needs: the launch template, the
// fleet, the instance, and the tags of the spot request.
type SpotAPI interface {
	CreateLaunchTemplate(ctx context.Context, in *ec2.CreateLaunchTemplateInput, optFns ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error)
	DeleteLaunchTemplate(ctx context.Context, in *ec2.DeleteLaunchTemplateInput, optFns ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateOutput, error)
	// DescribeLaunchTemplates finds the template a failed create may have
	// made.
	DescribeLaunchTemplates(ctx context.Context, in *ec2.DescribeLaunchTemplatesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error)
	CreateFleet(ctx context.Context, in *ec2.CreateFleetInput, optFns ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error)
	// DescribeFleets finds the fleet a failed create may have made.
	DescribeFleets(ctx context.Context, in *ec2.DescribeFleetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeFleetsOutput, error)
	DeleteFleets(ctx context.Context, in *ec2.DeleteFleetsInput, optFns ...func(*ec2.Options)) (*ec2.DeleteFleetsOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	// CreateTags tags the spot instance request (SpotTags).
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
}

var _ SpotAPI = (*ec2.Client)(nil)

// SpotAllocationStrategies are the spot allocation strategies accepted by
// RunSpotInput.AllocationStrategy.
var SpotAllocationStrategies = []string{"price-capacity-optimized", "capacity-optimized", "diversified", "lowest-price"}

// RunSpotInput describes a spot instance to launch through an EC2 Fleet.
type RunSpotInput struct {
	// RunInput describes the instance. InstanceType is used when
	// InstanceTypes is empty; ClientToken is the fleet's idempotency token.
	RunInput
	// InstanceTypes are the instance types the fleet may choose from, in
	// place of RunInput.InstanceType.
	InstanceTypes []string
	// MaxPrice is the highest price per instance-hour, in US dollars, such
	// as "0.05". Empty means the on-demand price of the chosen type.
	MaxPrice string
	// AllocationStrategy decides which spot pool the fleet launches from:
	// one of SpotAllocationStrategies. Empty means EC2's default
	// (lowest-price).
	AllocationStrategy string
	// SpotTags go on the launch template and on the spot instance request.
	SpotTags map[string]string
	// FleetTags go on the fleet.
	FleetTags map[string]string
	// LaunchTemplateName names the temporary launch template. Empty means
	// "ami-build-fleet-" and a random suffix.
	LaunchTemplateName string
}

// RunSpotOutput is the result of RunSpot.
type RunSpotOutput struct {
	// Instance is the instance as described once it is running.
	Instance types.Instance
	// FleetID is the instant fleet that launched it.
	FleetID string
	// LaunchTemplateID and LaunchTemplateName name the temporary launch
	// template.
	LaunchTemplateID, LaunchTemplateName string
	// ClientToken is the idempotency token of the launch template and the
	// fleet; the instance carries it in the CreateTokenTag tag.
	ClientToken string
}

// FleetLaunchError is the error of a fleet that answered without launching
// an instance, for example because no spot capacity was available for any
// of the instance types at the price. Usable with errors.As.
type FleetLaunchError struct {
	// Region is where the fleet was created.
	Region string
	// FleetID is the fleet, when EC2 reported one.
	FleetID string
	// InstanceTypes are the types the fleet tried.
	InstanceTypes []string
	// Errors are the launch errors EC2 reported.
	Errors []FleetLaunchFailure
}

// FleetLaunchFailure is one launch error of a fleet.
type FleetLaunchFailure struct {
	// InstanceType is the type the error is about, when EC2 said.
	InstanceType string
	// Code and Message are EC2's, such as InsufficientInstanceCapacity.
	Code, Message string
}

// Error names the region, the instance types and the fleet, with EC2's
// reasons.
func (e *FleetLaunchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no spot instance was launched in %s for instance types %s", e.Region, strings.Join(e.InstanceTypes, ", "))
	if e.FleetID != "" {
		fmt.Fprintf(&b, " (fleet %s)", e.FleetID)
	}
	if len(e.Errors) == 0 {
		b.WriteString(": EC2 reported no reason")
		return b.String()
	}
	var reasons []string
	for _, f := range e.Errors {
		r := f.Code
		if f.Message != "" {
			r += ": " + f.Message
		}
		if f.InstanceType != "" {
			r = f.InstanceType + ": " + r
		}
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	b.WriteString(": ")
	b.WriteString(strings.Join(reasons, "; "))
	return b.String()
}

// ProfileNotReady reports whether every error is EC2 refusing the
// instance profile it does not know yet (see the function
// ProfileNotReady): a new instance profile takes a while to reach EC2, and
// launching again a little later may succeed.
func (e *FleetLaunchError) ProfileNotReady() bool {
	if len(e.Errors) == 0 {
		return false
	}
	for _, f := range e.Errors {
		msg := strings.ToLower(f.Message)
		// Fleet errors name the profile in the message; the code is not
		// always InvalidParameterValue.
		if !(strings.Contains(msg, "iaminstanceprofile") || strings.Contains(msg, "iam instance profile")) {
			return false
		}
	}
	return true
}

// Capacity reports whether every error is a lack of spot capacity or a
// price below the spot price: retrying later or with other instance types
// may succeed.
func (e *FleetLaunchError) Capacity() bool {
	if len(e.Errors) == 0 {
		return false
	}
	for _, f := range e.Errors {
		switch f.Code {
		case "InsufficientInstanceCapacity", "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded", "InsufficientCapacity", "UnfulfillableCapacity":
		default:
			return false
		}
	}
	return true
}

// RunSpot launches one spot instance and waits until it is running, as
// HashiCorp's amazon builders do: it creates a launch template for the
// build (spot market options with MaxPrice, or the on-demand price when
// MaxPrice is empty), then an EC2 Fleet of type instant with a target of
// one spot instance, one override per instance type, and the allocation
// strategy. With Options.Ledger set, it records the launch template (undo:
// delete it), the instance (undo: terminate it and wait) and the fleet
// (undo: delete it with its instances; an instant fleet launches nothing
// after it answered, so this only ends it and cancels its spot request),
// each as soon as AWS returns its ID. Undoing in reverse order deletes the
// fleet, terminates the instance, then deletes the template.
//
// When the fleet launches nothing, the error is a *FleetLaunchError naming
// the instance types tried and EC2's reasons; the launch template is then
// deleted again before RunSpot returns.
//
// Both creates carry one client token, which the SDK reuses when it
// retries. The token is also set as the CreateTokenTag tag of the launch
// template and of every instance launched from it. When a create still
// fails (every answer lost, or ctx cancelled while the request was in
// flight), the launch template with the name and the token, and the
// instances with the token, are removed before RunSpot returns (or
// recorded in Options.Ledger when that fails).
func RunSpot(ctx context.Context, api SpotAPI, in *RunSpotInput, optFns ...func(*Options)) (*RunSpotOutput, error) {
	r := &spotRun{api: api, in: in, o: newOptions(optFns), region: awserr.Region(api, "")}
	r.typesTried = in.InstanceTypes
	if len(r.typesTried) == 0 && in.InstanceType != "" {
		r.typesTried = []string{in.InstanceType}
	}
	if in.ImageID == "" || len(r.typesTried) == 0 {
		return nil, fmt.Errorf("run spot instance in %s: image ID and an instance type are required", r.region)
	}
	if s := in.AllocationStrategy; s != "" && !slices.Contains(SpotAllocationStrategies, s) {
		return nil, fmt.Errorf("run spot instance in %s: allocation strategy %q is unknown; valid are %s", r.region, s, strings.Join(SpotAllocationStrategies, ", "))
	}
	r.out.ClientToken = in.ClientToken
	if r.out.ClientToken == "" {
		r.out.ClientToken = randomSuffix(16)
	}
	r.out.LaunchTemplateName = in.LaunchTemplateName
	if r.out.LaunchTemplateName == "" {
		r.out.LaunchTemplateName = "ami-build-fleet-" + randomSuffix(8)
	}
	r.what = fmt.Sprintf("spot instance of type %s from %s in %s", strings.Join(r.typesTried, "|"), in.ImageID, r.region)

	lt, err := createSpotLaunchTemplate(ctx, api, in, r.out.LaunchTemplateName, r.out.ClientToken, r.o)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", r.what, err)
	}
	r.out.LaunchTemplateID = lt
	id, err := r.launch(ctx)
	if err != nil {
		return nil, err
	}
	r.o.logf("waiting for spot instance %s in %s to be running", id, r.region)
	described, err := waitState(ctx, api, []string{id}, types.InstanceStateNameRunning, in.Wait)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", r.what, err)
	}
	r.out.Instance = described[0]
	if err := r.tagSpotRequest(ctx); err != nil {
		return nil, err
	}
	return &r.out, nil
}

// spotRun is one call of RunSpot: its input and settings, and its output
// as far as it is known.
type spotRun struct {
	api    SpotAPI
	in     *RunSpotInput
	o      Options
	region string
	// typesTried are the instance types the fleet may launch.
	typesTried []string
	// what names the instance in messages.
	what string
	out  RunSpotOutput
}

// launch creates the fleet from the launch template and returns the ID of
// the instance it launched, recording the instance and the fleet. When the
// fleet launches nothing, the launch template is deleted again.
func (r *spotRun) launch(ctx context.Context) (string, error) {
	o := r.o
	o.logf("launching a %s through an instant fleet with launch template %s", r.what, r.out.LaunchTemplateID)
	fleet, err := r.api.CreateFleet(ctx, r.fleetRequest())
	if err != nil {
		err = fmt.Errorf("run %s: create fleet: %w", r.what, err)
		if rerr := o.removeLostFleet(ctx, r.api, r.in, r.out.ClientToken); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return "", r.removeTemplate(ctx, err)
	}
	r.out.FleetID = aws.ToString(fleet.FleetId)
	var ids []string
	for _, fi := range fleet.Instances {
		ids = append(ids, fi.InstanceIds...)
	}
	if len(ids) == 0 {
		// The fleet launched nothing, so there is nothing of it to end.
		return "", r.removeTemplate(ctx, fleetLaunchError(r.region, r.out.FleetID, r.typesTried, fleet.Errors))
	}
	for _, e := range fleet.Errors {
		o.logf("the fleet %s reported, besides the instance it launched: %s: %s", r.out.FleetID, aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
	}
	for _, iid := range ids {
		o.recordInstance(r.api, iid, r.region, r.in.Wait)
	}
	if r.out.FleetID != "" {
		fleetID := r.out.FleetID
		o.record(KindFleet, fleetID, r.region, o.undoFleet(r.api, fleetID))
	}
	if lost.Retried(fleet.ResultMetadata) {
		// A service that ignores the token may have launched an instance
		// for an attempt whose answer was lost.
		if rerr := o.terminateLost(ctx, r.api, lostFleetInstances(r.out.ClientToken, ids[0]), r.in.Wait); rerr != nil {
			o.logf("%v", rerr)
		}
	}
	r.terminateExtra(ctx, ids)
	return ids[0], nil
}

// fleetRequest is the CreateFleet request for one spot instance from the
// launch template, with an override per instance type.
func (r *spotRun) fleetRequest() *ec2.CreateFleetInput {
	in := r.in
	req := &ec2.CreateFleetInput{
		Type:        types.FleetTypeInstant,
		ClientToken: aws.String(r.out.ClientToken),
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity:       aws.Int32(1),
			DefaultTargetCapacityType: types.DefaultTargetCapacityTypeSpot,
		},
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{
				LaunchTemplateId: aws.String(r.out.LaunchTemplateID),
				Version:          aws.String("1"),
			},
		}},
		TagSpecifications: ec2tag.Spec(types.ResourceTypeFleet, withToken(in.FleetTags, r.out.ClientToken)),
	}
	for _, it := range in.InstanceTypes {
		req.LaunchTemplateConfigs[0].Overrides = append(req.LaunchTemplateConfigs[0].Overrides,
			types.FleetLaunchTemplateOverridesRequest{InstanceType: types.InstanceType(it)})
	}
	if in.AllocationStrategy != "" {
		req.SpotOptions = &types.SpotOptionsRequest{AllocationStrategy: types.SpotAllocationStrategy(in.AllocationStrategy)}
	}
	return req
}

// fleetLaunchError is the error of a fleet that launched nothing, with
// EC2's reasons.
func fleetLaunchError(region, fleetID string, typesTried []string, errs []types.CreateFleetError) *FleetLaunchError {
	ferr := &FleetLaunchError{Region: region, FleetID: fleetID, InstanceTypes: typesTried}
	for _, e := range errs {
		f := FleetLaunchFailure{Code: aws.ToString(e.ErrorCode), Message: aws.ToString(e.ErrorMessage)}
		if e.LaunchTemplateAndOverrides != nil && e.LaunchTemplateAndOverrides.Overrides != nil {
			f.InstanceType = string(e.LaunchTemplateAndOverrides.Overrides.InstanceType)
		}
		ferr.Errors = append(ferr.Errors, f)
	}
	return ferr
}

// removeTemplate deletes the launch template again when the fleet launched
// nothing, and returns err with any failure to delete it.
func (r *spotRun) removeTemplate(ctx context.Context, err error) error {
	rctx, cancel := lost.Context(ctx)
	defer cancel()
	lt := r.out.LaunchTemplateID
	if derr := deleteLaunchTemplate(rctx, r.api, lt, r.o.undoOptions()); derr != nil {
		return errors.Join(err, derr)
	}
	if r.o.Ledger != nil {
		r.o.Ledger.Forget(KindLaunchTemplate, lt)
	}
	return err
}

// terminateExtra terminates all but the first of ids, the instances the
// fleet launched, when it launched more than the one asked for. A failure
// is only logged: the ledger still holds them.
func (r *spotRun) terminateExtra(ctx context.Context, ids []string) {
	if len(ids) < 2 {
		return
	}
	o := r.o
	o.logf("the fleet %s launched %d instances; terminating all but %s", r.out.FleetID, len(ids), ids[0])
	if terr := terminate(ctx, r.api, ids[1:], o.undoWait(r.in.Wait), o.undoOptions()); terr != nil {
		o.logf("%v", terr)
	} else if o.Ledger != nil {
		for _, extra := range ids[1:] {
			o.Ledger.Forget(ledger.KindInstance, extra)
		}
	}
}

// tagSpotRequest puts SpotTags on the spot request of the running
// instance, which the launch template cannot tag.
func (r *spotRun) tagSpotRequest(ctx context.Context) error {
	sir := aws.ToString(r.out.Instance.SpotInstanceRequestId)
	if sir == "" || len(r.in.SpotTags) == 0 {
		return nil
	}
	r.o.logf("tagging spot request %s", sir)
	if _, err := r.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{sir}, Tags: ec2tag.Tags(r.in.SpotTags)}); err != nil {
		return fmt.Errorf("run %s: tag spot request %s: %w", r.what, sir, err)
	}
	return nil
}

// createSpotLaunchTemplate creates the launch template of a RunSpot and
// records it; it returns the template's ID.
func createSpotLaunchTemplate(ctx context.Context, api SpotAPI, in *RunSpotInput, name, token string, o Options) (string, error) {
	region := awserr.Region(api, "")
	data := launchTemplateData(&in.RunInput)
	if len(in.InstanceTypes) > 0 {
		data.InstanceType = ""
	}
	spot := &types.LaunchTemplateSpotMarketOptionsRequest{}
	if in.MaxPrice != "" {
		spot.MaxPrice = aws.String(in.MaxPrice)
	}
	data.InstanceMarketOptions = &types.LaunchTemplateInstanceMarketOptionsRequest{
		MarketType:  types.MarketTypeSpot,
		SpotOptions: spot,
	}
	instanceTags := withToken(in.Tags, token)
	for _, ts := range []struct {
		rt   types.ResourceType
		tags map[string]string
	}{
		{types.ResourceTypeInstance, instanceTags},
		{types.ResourceTypeVolume, in.VolumeTags},
		{types.ResourceTypeNetworkInterface, in.Tags},
	} {
		for _, s := range ec2tag.Spec(ts.rt, ts.tags) {
			data.TagSpecifications = append(data.TagSpecifications, types.LaunchTemplateTagSpecificationRequest{ResourceType: s.ResourceType, Tags: s.Tags})
		}
	}
	req := &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: data,
		ClientToken:        aws.String(token),
		VersionDescription: aws.String("Launches the spot instance of an image build"),
		TagSpecifications:  ec2tag.Spec(types.ResourceTypeLaunchTemplate, withToken(in.SpotTags, token)),
	}
	o.logf("creating launch template %q in %s", name, region)
	var id string
	out, err := api.CreateLaunchTemplate(ctx, req)
	if err == nil && out.LaunchTemplate != nil {
		id = aws.ToString(out.LaunchTemplate.LaunchTemplateId)
	} else {
		if err == nil {
			err = errors.New("no launch template in the answer")
		}
		err = fmt.Errorf("create launch template %q in %s: %w", name, region, err)
		lostTemplate := lostCreate{
			noun: "launch template", name: name, where: region, region: region, kind: KindLaunchTemplate,
			find: func(ctx context.Context) ([]string, error) {
				return launchTemplatesWithToken(ctx, api, name, token)
			},
			remove: func(ctx context.Context, id string) error { return deleteLaunchTemplate(ctx, api, id, o.undoOptions()) },
			undo:   func(id string) func(context.Context) error { return o.undoLaunchTemplate(api, id) },
		}
		if id, err = o.recoverLost(ctx, lostTemplate, err); err != nil {
			return "", err
		}
	}
	o.record(KindLaunchTemplate, id, region, o.undoLaunchTemplate(api, id))
	return id, nil
}

// undoLaunchTemplate is the ledger undo of the launch template id.
func (o Options) undoLaunchTemplate(api LaunchTemplateAPI, id string) func(context.Context) error {
	return func(ctx context.Context) error { return deleteLaunchTemplate(ctx, api, id, o.undoOptions()) }
}

// launchTemplatesWithToken returns the IDs of the launch templates named
// name that carry token.
func launchTemplatesWithToken(ctx context.Context, api SpotAPI, name, token string) ([]string, error) {
	out, err := api.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	if isLaunchTemplateNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return marked(out.LaunchTemplates, name, token, func(t types.LaunchTemplate) (*string, *string, []types.Tag) {
		return t.LaunchTemplateName, t.LaunchTemplateId, t.Tags
	}), nil
}

// removeLostFleet deletes the fleets tagged with token (CreateTokenTag),
// with their instances, and terminates the instances launched from the
// launch template (tagged with token too): what a CreateFleet whose answer
// was lost made. What cannot be removed is recorded in o.Ledger.
func (o Options) removeLostFleet(ctx context.Context, api SpotAPI, in *RunSpotInput, token string) error {
	region := awserr.Region(api, "")
	callerDone := ctx.Err() != nil
	rctx, cancel := lost.Context(ctx)
	defer cancel()
	fleets, err := lost.Find(rctx, callerDone, func() ([]string, error) { return fleetsWithToken(rctx, api, token) })
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("look for fleets tagged %s=%s in %s, which the failed call may have made; delete them by hand if they exist: %w", CreateTokenTag, token, region, err))
	}
	for _, id := range fleets {
		o.logf("fleet %s in %s was created by a call whose answer was lost; deleting it", id, region)
		if derr := deleteFleet(rctx, api, id, o.undoOptions()); derr != nil {
			o.record(KindFleet, id, region, o.undoFleet(api, id))
			errs = append(errs, fmt.Errorf("fleet %s was created although the call failed, and could not be deleted: %w", id, derr))
		}
	}
	// The instances: those of the fleets deleted above are terminating; a
	// fleet not found yet may have launched one as well.
	if terr := o.terminateLost(ctx, api, lostFleetInstances(token, ""), in.Wait); terr != nil {
		errs = append(errs, terr)
	}
	return errors.Join(errs...)
}

// fleetsWithToken returns the IDs of the instant fleets, not deleted, that
// carry token.
func fleetsWithToken(ctx context.Context, api SpotAPI, token string) ([]string, error) {
	var ids []string
	p := ec2.NewDescribeFleetsPaginator(api, &ec2.DescribeFleetsInput{Filters: []types.Filter{
		{Name: aws.String("type"), Values: []string{string(types.FleetTypeInstant)}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, f := range page.Fleets {
			if hasToken(f.Tags, token) && !strings.HasPrefix(string(f.FleetState), "deleted") {
				ids = append(ids, aws.ToString(f.FleetId))
			}
		}
	}
	return ids, nil
}

// undoFleet is the ledger undo of the fleet id.
func (o Options) undoFleet(api FleetAPI, id string) func(context.Context) error {
	return func(ctx context.Context) error { return deleteFleet(ctx, api, id, o.undoOptions()) }
}

// lostFleetInstances selects the instances launched from a RunSpot's launch
// template (they carry token in CreateTokenTag), except keep: what a
// CreateFleet whose answer was lost made.
func lostFleetInstances(token, keep string) lostLaunch {
	return lostLaunch{
		filters: []types.Filter{{Name: aws.String("tag:" + CreateTokenTag), Values: []string{token}}, liveStates()},
		ours: func(i types.Instance) bool {
			return hasToken(i.Tags, token) && aws.ToString(i.InstanceId) != keep
		},
		what:   fmt.Sprintf("instances tagged %s=%s", CreateTokenTag, token),
		origin: "the failed fleet may have launched",
		by:     "a fleet",
	}
}

// LaunchTemplateAPI is the client behaviour DeleteLaunchTemplate needs.
type LaunchTemplateAPI interface {
	DeleteLaunchTemplate(ctx context.Context, in *ec2.DeleteLaunchTemplateInput, optFns ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateOutput, error)
}

var _ LaunchTemplateAPI = (*ec2.Client)(nil)

// deleteLaunchTemplate deletes a launch template by ID. A template that does
// not exist is not an error.
func deleteLaunchTemplate(ctx context.Context, api LaunchTemplateAPI, id string, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	o.logf("deleting launch template %s in %s", id, region)
	_, err := api.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)})
	if err != nil && !isLaunchTemplateNotFound(err) {
		return fmt.Errorf("delete launch template %s in %s: %w", id, region, err)
	}
	return nil
}

// FleetAPI is the client behaviour DeleteFleet needs.
type FleetAPI interface {
	DeleteFleets(ctx context.Context, in *ec2.DeleteFleetsInput, optFns ...func(*ec2.Options)) (*ec2.DeleteFleetsOutput, error)
}

var _ FleetAPI = (*ec2.Client)(nil)

// deleteFleet deletes an EC2 Fleet and terminates its instances (EC2
// requires that for instant fleets), which also cancels its spot requests.
// A fleet that does not exist, or is already deleted, is not an error.
func deleteFleet(ctx context.Context, api FleetAPI, fleetID string, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	o.logf("deleting fleet %s in %s", fleetID, region)
	out, err := api.DeleteFleets(ctx, &ec2.DeleteFleetsInput{FleetIds: []string{fleetID}, TerminateInstances: aws.Bool(true)})
	if err != nil {
		if awserr.Code(err) == codeFleetNotFound {
			return nil
		}
		return fmt.Errorf("delete fleet %s in %s: %w", fleetID, region, err)
	}
	for _, u := range out.UnsuccessfulFleetDeletions {
		if u.Error == nil {
			continue
		}
		switch u.Error.Code {
		case types.DeleteFleetErrorCodeFleetIdDoesNotExist, types.DeleteFleetErrorCodeFleetNotInDeletableState:
			o.logf("fleet %s in %s is already gone (%s)", fleetID, region, u.Error.Code)
		default:
			return fmt.Errorf("delete fleet %s in %s: %s: %s", fleetID, region, u.Error.Code, aws.ToString(u.Error.Message))
		}
	}
	return nil
}

// launchTemplateData is the launch template form of what Run passes to
// RunInstances. A subnet or a public IP choice needs an explicit network
// interface in a launch template, which then carries the groups.
func launchTemplateData(in *RunInput) *types.RequestLaunchTemplateData {
	d := templateData(launchRequest(in))
	if in.AssociatePublicIP != nil || in.SubnetID != "" {
		ni := types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{
			DeviceIndex:              aws.Int32(0),
			AssociatePublicIpAddress: in.AssociatePublicIP,
			DeleteOnTermination:      aws.Bool(true),
			Groups:                   slices.Clone(in.SecurityGroupIDs),
		}
		if in.SubnetID != "" {
			ni.SubnetId = aws.String(in.SubnetID)
		}
		d.NetworkInterfaces = []types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{ni}
	} else {
		d.SecurityGroupIds = slices.Clone(in.SecurityGroupIDs)
	}
	return d
}

// templateData is the launch template form of the launch settings of req
// (launchRequest): the image, instance type, key, user data, profile,
// placement, metadata options, volumes and LaunchSettings.
func templateData(req *ec2.RunInstancesInput) *types.RequestLaunchTemplateData {
	d := &types.RequestLaunchTemplateData{
		ImageId:                           req.ImageId,
		InstanceType:                      req.InstanceType,
		KeyName:                           req.KeyName,
		UserData:                          req.UserData,
		EbsOptimized:                      req.EbsOptimized,
		CreditSpecification:               req.CreditSpecification,
		InstanceInitiatedShutdownBehavior: req.InstanceInitiatedShutdownBehavior,
	}
	if p := req.IamInstanceProfile; p != nil {
		d.IamInstanceProfile = &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: p.Arn, Name: p.Name}
	}
	if p := req.Placement; p != nil {
		d.Placement = &types.LaunchTemplatePlacementRequest{
			AvailabilityZone:     p.AvailabilityZone,
			Tenancy:              p.Tenancy,
			HostId:               p.HostId,
			HostResourceGroupArn: p.HostResourceGroupArn,
		}
	}
	if m := req.MetadataOptions; m != nil {
		d.MetadataOptions = &types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpEndpoint:            types.LaunchTemplateInstanceMetadataEndpointState(m.HttpEndpoint),
			HttpTokens:              types.LaunchTemplateHttpTokensState(m.HttpTokens),
			HttpPutResponseHopLimit: m.HttpPutResponseHopLimit,
			InstanceMetadataTags:    types.LaunchTemplateInstanceMetadataTagsState(m.InstanceMetadataTags),
		}
	}
	for _, m := range req.BlockDeviceMappings {
		d.BlockDeviceMappings = append(d.BlockDeviceMappings, templateMapping(m))
	}
	if c := req.CapacityReservationSpecification; c != nil {
		d.CapacityReservationSpecification = &types.LaunchTemplateCapacityReservationSpecificationRequest{
			CapacityReservationPreference: c.CapacityReservationPreference,
			CapacityReservationTarget:     c.CapacityReservationTarget,
		}
	}
	if e := req.EnclaveOptions; e != nil {
		d.EnclaveOptions = &types.LaunchTemplateEnclaveOptionsRequest{Enabled: e.Enabled}
	}
	for _, l := range req.LicenseSpecifications {
		d.LicenseSpecifications = append(d.LicenseSpecifications, types.LaunchTemplateLicenseConfigurationRequest{LicenseConfigurationArn: l.LicenseConfigurationArn})
	}
	return d
}

// templateMapping is the launch template form of a block device mapping.
func templateMapping(m types.BlockDeviceMapping) types.LaunchTemplateBlockDeviceMappingRequest {
	r := types.LaunchTemplateBlockDeviceMappingRequest{DeviceName: m.DeviceName, VirtualName: m.VirtualName, NoDevice: m.NoDevice}
	if e := m.Ebs; e != nil {
		r.Ebs = &types.LaunchTemplateEbsBlockDeviceRequest{
			DeleteOnTermination: e.DeleteOnTermination,
			Encrypted:           e.Encrypted,
			Iops:                e.Iops,
			KmsKeyId:            e.KmsKeyId,
			SnapshotId:          e.SnapshotId,
			Throughput:          e.Throughput,
			VolumeSize:          e.VolumeSize,
			VolumeType:          e.VolumeType,
		}
	}
	return r
}

// AWS error codes of launch templates and fleets.
const (
	codeLaunchTemplateIDNotFound   = "InvalidLaunchTemplateId.NotFound"
	codeLaunchTemplateNameNotFound = "InvalidLaunchTemplateName.NotFoundException"
	codeFleetNotFound              = "InvalidFleetId.NotFound"
)

// isLaunchTemplateNotFound reports whether err says a launch template does
// not exist.
func isLaunchTemplateNotFound(err error) bool {
	switch awserr.Code(err) {
	case codeLaunchTemplateIDNotFound, codeLaunchTemplateNameNotFound:
		return true
	}
	return false
}
