//go:build unix

package distribute

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// call is one entry of the fake's call log.
type call struct {
	Region string
	Op     string
	ID     string // main resource of the call
	In     any
}

func (c call) String() string { return c.Region + " " + c.Op + " " + c.ID }

// callLog is a fake's log of calls, with the mutex that guards it and the
// rest of the fake's state.
type callLog struct {
	mu    sync.Mutex
	calls []call
}

// Calls returns the call log, optionally only the given operations.
func (l *callLog) Calls(ops ...string) []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []call
	for _, k := range l.calls {
		if len(ops) == 0 || slices.Contains(ops, k.Op) {
			out = append(out, k)
		}
	}
	return out
}

// fakeImage is the fake's state of one AMI.
type fakeImage struct {
	img         types.Image
	launchPerms []types.LaunchPermission
	deprecateAt time.Time
	protected   bool
}

// fakeCloud is an in-memory, multi-region EC2 for tests. Every method
// records a call, then runs its function field when set (which may call the
// default behaviour, def*), else the default behaviour.
type fakeCloud struct {
	callLog
	regions    []string
	images     map[string]map[string]*fakeImage         // region → id
	snapPerms  map[string]map[string][]string           // snapshot → "users"/"groups"
	snapDelete map[string]bool                          // deleted snapshots
	tags       map[string]map[string]string             // resource → tags
	instances  map[string][]types.Instance              // region
	templates  map[string][]types.LaunchTemplateVersion // region
	tokens     map[string]string                        // region + CopyImage ClientToken → image
	keys       map[string]string                        // KMS key ID, ARN or alias → "AWS" or "CUSTOMER"
	seq        int
	copied     chan struct{} // closed (and dropped) when seq grows; see copiesMade

	CopyImageFn            func(ctx context.Context, region string, in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error)
	DescribeImagesFn       func(ctx context.Context, region string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error)
	ModifyImageAttributeFn func(ctx context.Context, region string, in *ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error)
	CreateTagsFn           func(ctx context.Context, region string, in *ec2.CreateTagsInput) (*ec2.CreateTagsOutput, error)
	DeprecateFn            func(ctx context.Context, region string, in *ec2.EnableImageDeprecationInput) (*ec2.EnableImageDeprecationOutput, error)
	ProtectFn              func(ctx context.Context, region string, in *ec2.EnableImageDeregistrationProtectionInput) (*ec2.EnableImageDeregistrationProtectionOutput, error)
	DeregisterImageFn      func(ctx context.Context, region string, in *ec2.DeregisterImageInput) (*ec2.DeregisterImageOutput, error)
	LaunchTemplatesFn      func(ctx context.Context, region string, in *ec2.DescribeLaunchTemplateVersionsInput) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
}

func newFakeCloud(regions ...string) *fakeCloud {
	return &fakeCloud{
		regions:    regions,
		images:     map[string]map[string]*fakeImage{},
		snapPerms:  map[string]map[string][]string{},
		snapDelete: map[string]bool{},
		tags:       map[string]map[string]string{},
		instances:  map[string][]types.Instance{},
		templates:  map[string][]types.LaunchTemplateVersion{},
		tokens:     map[string]string{},
		keys:       map[string]string{},
	}
}

func (c *fakeCloud) clients() ClientFunc {
	return func(region string) API { return &fakeEC2{c: c, region: region} }
}

// addImage puts an available AMI owned by the caller with one snapshot.
func (c *fakeCloud) addImage(region, id, name string, created time.Time, mod ...func(*types.Image)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := types.Image{
		ImageId: aws.String(id), Name: aws.String(name), State: types.ImageStateAvailable,
		OwnerId: aws.String("111111111111"), CreationDate: aws.String(created.UTC().Format("2006-01-02T15:04:05.000Z")),
		RootDeviceType: types.DeviceTypeEbs,
		BlockDeviceMappings: []types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/xvda"),
			Ebs:        &types.EbsBlockDevice{SnapshotId: aws.String("snap-" + strings.TrimPrefix(id, "ami-")), Encrypted: aws.Bool(false)},
		}},
	}
	for _, m := range mod {
		m(&img)
	}
	if c.images[region] == nil {
		c.images[region] = map[string]*fakeImage{}
	}
	c.images[region][id] = &fakeImage{img: img}
}

func (c *fakeCloud) log(region, op, id string, in any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call{Region: region, Op: op, ID: id, In: in})
}

// index returns the position of the first call matching region and op
// (and id when not empty) in the log, or -1.
func (c *fakeCloud) index(region, op, id string) int {
	for i, k := range c.Calls() {
		if k.Region == region && k.Op == op && (id == "" || k.ID == id) {
			return i
		}
	}
	return -1
}

// copiesMade returns the number of copies made so far and a channel that
// is closed when the next one is made.
func (c *fakeCloud) copiesMade() (int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.copied == nil {
		c.copied = make(chan struct{})
	}
	return c.seq, c.copied
}

func (c *fakeCloud) image(region, id string) *fakeImage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.images[region][id]
}

// apiErr is an EC2 refusal as the SDK returns it: an API error inside an
// HTTP 400 response error inside an operation error.
func apiErr(code string) error { return httpErr(http.StatusBadRequest, code) }

// serverErr is an EC2 server error (HTTP 500), after which the request
// may or may not have taken effect.
func serverErr(code string) error { return httpErr(http.StatusInternalServerError, code) }

func httpErr(status int, code string) error {
	return &smithy.OperationError{ServiceID: "EC2", OperationName: "Fake", Err: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: code},
	}}
}

var mutatingOps = []string{"CopyImage", "ModifyImageAttribute", "ModifySnapshotAttribute", "CreateTags",
	"EnableImageDeprecation", "EnableImageDeregistrationProtection", "DisableImageDeregistrationProtection",
	"DeregisterImage", "DeleteSnapshot"}

// Default behaviours.

// defCopyImage copies as EC2 does: a repeated ClientToken is answered with
// the image the first call made, and TagSpecifications are applied to the
// new AMI (type image) and its snapshot (type snapshot).
func (c *fakeCloud) defCopyImage(region string, in *ec2.CopyImageInput) (*ec2.CopyImageOutput, error) {
	c.mu.Lock()
	tokenKey := region + "\x00" + aws.ToString(in.ClientToken)
	if id, ok := c.tokens[tokenKey]; ok && in.ClientToken != nil {
		c.mu.Unlock()
		return &ec2.CopyImageOutput{ImageId: aws.String(id)}, nil
	}
	for _, fi := range c.images[region] {
		if aws.ToString(fi.img.Name) == aws.ToString(in.Name) {
			c.mu.Unlock()
			return nil, apiErr("InvalidAMIName.Duplicate")
		}
	}
	c.seq++
	if c.copied != nil {
		close(c.copied)
		c.copied = nil
	}
	id := fmt.Sprintf("ami-%s%04d", strings.ReplaceAll(region, "-", ""), c.seq)
	if in.ClientToken != nil {
		c.tokens[tokenKey] = id
	}
	for _, ts := range in.TagSpecifications {
		var res string
		switch ts.ResourceType {
		case types.ResourceTypeImage:
			res = id
		case types.ResourceTypeSnapshot:
			res = "snap-" + strings.TrimPrefix(id, "ami-") // addImage's one snapshot
		default:
			c.mu.Unlock()
			return nil, apiErr("InvalidParameterValue")
		}
		if c.tags[res] == nil {
			c.tags[res] = map[string]string{}
		}
		for _, tg := range ts.Tags {
			c.tags[res][aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
	}
	c.mu.Unlock()
	c.addImage(region, id, aws.ToString(in.Name), time.Now(), func(img *types.Image) {
		img.Description = in.Description
		if aws.ToBool(in.Encrypted) {
			img.BlockDeviceMappings[0].Ebs.Encrypted = aws.Bool(true)
			img.BlockDeviceMappings[0].Ebs.KmsKeyId = in.KmsKeyId
		}
	})
	return &ec2.CopyImageOutput{ImageId: aws.String(id)}, nil
}

func (c *fakeCloud) defDescribeImages(region string, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &ec2.DescribeImagesOutput{}
	var name string
	for _, f := range in.Filters {
		if aws.ToString(f.Name) == "name" {
			name = f.Values[0]
		}
	}
	ids := make([]string, 0, len(c.images[region]))
	for id := range c.images[region] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fi := c.images[region][id]
		if len(in.ImageIds) > 0 && !slices.Contains(in.ImageIds, id) {
			continue
		}
		// Exact name filters are honoured; patterns and tag filters are
		// deliberately ignored so that callers must check the answer.
		if name != "" && !strings.ContainsAny(name, "*?") && aws.ToString(fi.img.Name) != name {
			continue
		}
		img := fi.img
		// EC2 fills Ebs.KmsKeyId only in RunInstances requests, never in
		// DescribeImages answers: the key is known from the snapshots.
		img.BlockDeviceMappings = slices.Clone(img.BlockDeviceMappings)
		for i, m := range img.BlockDeviceMappings {
			if m.Ebs != nil {
				ebs := *m.Ebs
				ebs.KmsKeyId = nil
				img.BlockDeviceMappings[i].Ebs = &ebs
			}
		}
		img.Tags = nil
		for k, v := range c.tags[id] {
			img.Tags = append(img.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out.Images = append(out.Images, img)
	}
	if len(in.ImageIds) > 0 && len(out.Images) == 0 {
		return nil, apiErr("InvalidAMIID.NotFound")
	}
	return out, nil
}

func (c *fakeCloud) defModifyImageAttribute(region string, in *ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fi := c.images[region][aws.ToString(in.ImageId)]
	if fi == nil {
		return nil, apiErr("InvalidAMIID.NotFound")
	}
	if in.LaunchPermission != nil {
		fi.launchPerms = append(fi.launchPerms, in.LaunchPermission.Add...)
		for _, rm := range in.LaunchPermission.Remove {
			fi.launchPerms = slices.DeleteFunc(fi.launchPerms, func(p types.LaunchPermission) bool {
				return aws.ToString(p.UserId) == aws.ToString(rm.UserId) && p.Group == rm.Group &&
					aws.ToString(p.OrganizationArn) == aws.ToString(rm.OrganizationArn) && aws.ToString(p.OrganizationalUnitArn) == aws.ToString(rm.OrganizationalUnitArn)
			})
		}
	}
	return &ec2.ModifyImageAttributeOutput{}, nil
}

func (f *fakeEC2) DescribeImageAttribute(ctx context.Context, in *ec2.DescribeImageAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeImageAttributeOutput, error) {
	f.c.log(f.region, "DescribeImageAttribute", aws.ToString(in.ImageId), in)
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	fi := f.c.images[f.region][aws.ToString(in.ImageId)]
	if fi == nil {
		return nil, apiErr("InvalidAMIID.NotFound")
	}
	return &ec2.DescribeImageAttributeOutput{ImageId: in.ImageId, LaunchPermissions: slices.Clone(fi.launchPerms)}, nil
}

func (f *fakeEC2) DescribeSnapshotAttribute(ctx context.Context, in *ec2.DescribeSnapshotAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotAttributeOutput, error) {
	f.c.log(f.region, "DescribeSnapshotAttribute", aws.ToString(in.SnapshotId), in)
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	out := &ec2.DescribeSnapshotAttributeOutput{SnapshotId: in.SnapshotId}
	m := f.c.snapPerms[aws.ToString(in.SnapshotId)]
	for _, u := range m["users"] {
		out.CreateVolumePermissions = append(out.CreateVolumePermissions, types.CreateVolumePermission{UserId: aws.String(u)})
	}
	for _, g := range m["groups"] {
		out.CreateVolumePermissions = append(out.CreateVolumePermissions, types.CreateVolumePermission{Group: types.PermissionGroup(g)})
	}
	return out, nil
}

func (c *fakeCloud) defDeregisterImage(region string, in *ec2.DeregisterImageInput) (*ec2.DeregisterImageOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := aws.ToString(in.ImageId)
	fi := c.images[region][id]
	if fi == nil {
		return nil, apiErr("InvalidAMIID.NotFound")
	}
	if fi.protected {
		return nil, apiErr("InvalidParameterValue")
	}
	delete(c.images[region], id)
	return &ec2.DeregisterImageOutput{}, nil
}

// fakeEC2 is one region's client of a fakeCloud.
type fakeEC2 struct {
	c      *fakeCloud
	region string
}

func (f *fakeEC2) CopyImage(ctx context.Context, in *ec2.CopyImageInput, _ ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	f.c.log(f.region, "CopyImage", aws.ToString(in.Name), in)
	if f.c.CopyImageFn != nil {
		return f.c.CopyImageFn(ctx, f.region, in)
	}
	return f.c.defCopyImage(f.region, in)
}

func (f *fakeEC2) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.c.log(f.region, "DescribeImages", strings.Join(in.ImageIds, ","), in)
	if f.c.DescribeImagesFn != nil {
		return f.c.DescribeImagesFn(ctx, f.region, in)
	}
	return f.c.defDescribeImages(f.region, in)
}

func (f *fakeEC2) DescribeRegions(ctx context.Context, in *ec2.DescribeRegionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	f.c.log(f.region, "DescribeRegions", "", in)
	out := &ec2.DescribeRegionsOutput{}
	for _, r := range f.c.regions {
		out.Regions = append(out.Regions, types.Region{RegionName: aws.String(r)})
	}
	return out, nil
}

func (f *fakeEC2) ModifyImageAttribute(ctx context.Context, in *ec2.ModifyImageAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error) {
	f.c.log(f.region, "ModifyImageAttribute", aws.ToString(in.ImageId), in)
	if f.c.ModifyImageAttributeFn != nil {
		return f.c.ModifyImageAttributeFn(ctx, f.region, in)
	}
	return f.c.defModifyImageAttribute(f.region, in)
}

func (f *fakeEC2) ModifySnapshotAttribute(ctx context.Context, in *ec2.ModifySnapshotAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error) {
	f.c.log(f.region, "ModifySnapshotAttribute", aws.ToString(in.SnapshotId), in)
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	m := f.c.snapPerms[aws.ToString(in.SnapshotId)]
	if m == nil {
		m = map[string][]string{}
		f.c.snapPerms[aws.ToString(in.SnapshotId)] = m
	}
	if in.OperationType == types.OperationTypeRemove {
		m["users"] = slices.DeleteFunc(m["users"], func(u string) bool { return slices.Contains(in.UserIds, u) })
		m["groups"] = slices.DeleteFunc(m["groups"], func(g string) bool { return slices.Contains(in.GroupNames, g) })
		return &ec2.ModifySnapshotAttributeOutput{}, nil
	}
	m["users"] = append(m["users"], in.UserIds...)
	m["groups"] = append(m["groups"], in.GroupNames...)
	return &ec2.ModifySnapshotAttributeOutput{}, nil
}

func (f *fakeEC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	f.c.log(f.region, "CreateTags", strings.Join(in.Resources, ","), in)
	if f.c.CreateTagsFn != nil {
		return f.c.CreateTagsFn(ctx, f.region, in)
	}
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	for _, r := range in.Resources {
		if f.c.tags[r] == nil {
			f.c.tags[r] = map[string]string{}
		}
		for _, t := range in.Tags {
			f.c.tags[r][aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}

func (f *fakeEC2) EnableImageDeprecation(ctx context.Context, in *ec2.EnableImageDeprecationInput, _ ...func(*ec2.Options)) (*ec2.EnableImageDeprecationOutput, error) {
	f.c.log(f.region, "EnableImageDeprecation", aws.ToString(in.ImageId), in)
	if f.c.DeprecateFn != nil {
		return f.c.DeprecateFn(ctx, f.region, in)
	}
	if fi := f.c.image(f.region, aws.ToString(in.ImageId)); fi != nil {
		f.c.mu.Lock()
		fi.deprecateAt = aws.ToTime(in.DeprecateAt)
		f.c.mu.Unlock()
	}
	return &ec2.EnableImageDeprecationOutput{}, nil
}

func (f *fakeEC2) EnableImageDeregistrationProtection(ctx context.Context, in *ec2.EnableImageDeregistrationProtectionInput, _ ...func(*ec2.Options)) (*ec2.EnableImageDeregistrationProtectionOutput, error) {
	f.c.log(f.region, "EnableImageDeregistrationProtection", aws.ToString(in.ImageId), in)
	if f.c.ProtectFn != nil {
		return f.c.ProtectFn(ctx, f.region, in)
	}
	if fi := f.c.image(f.region, aws.ToString(in.ImageId)); fi != nil {
		f.c.mu.Lock()
		fi.protected = true
		f.c.mu.Unlock()
	}
	return &ec2.EnableImageDeregistrationProtectionOutput{}, nil
}

func (f *fakeEC2) DisableImageDeregistrationProtection(ctx context.Context, in *ec2.DisableImageDeregistrationProtectionInput, _ ...func(*ec2.Options)) (*ec2.DisableImageDeregistrationProtectionOutput, error) {
	f.c.log(f.region, "DisableImageDeregistrationProtection", aws.ToString(in.ImageId), in)
	if fi := f.c.image(f.region, aws.ToString(in.ImageId)); fi != nil {
		f.c.mu.Lock()
		fi.protected = false
		f.c.mu.Unlock()
	}
	return &ec2.DisableImageDeregistrationProtectionOutput{}, nil
}

func (f *fakeEC2) DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	f.c.log(f.region, "DeregisterImage", aws.ToString(in.ImageId), in)
	if f.c.DeregisterImageFn != nil {
		return f.c.DeregisterImageFn(ctx, f.region, in)
	}
	return f.c.defDeregisterImage(f.region, in)
}

// DescribeSnapshots answers from the snapshots of the fake's images, with
// their encryption and KMS key as EC2 reports them.
func (f *fakeEC2) DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	f.c.log(f.region, "DescribeSnapshots", strings.Join(in.SnapshotIds, ","), in)
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	out := &ec2.DescribeSnapshotsOutput{}
	for _, fi := range f.c.images[f.region] {
		for _, m := range fi.img.BlockDeviceMappings {
			if m.Ebs == nil || !slices.Contains(in.SnapshotIds, aws.ToString(m.Ebs.SnapshotId)) {
				continue
			}
			out.Snapshots = append(out.Snapshots, types.Snapshot{
				SnapshotId: m.Ebs.SnapshotId, Encrypted: m.Ebs.Encrypted, KmsKeyId: m.Ebs.KmsKeyId,
				State: types.SnapshotStateCompleted,
			})
		}
	}
	if len(out.Snapshots) < len(in.SnapshotIds) {
		return nil, apiErr("InvalidSnapshot.NotFound")
	}
	return out, nil
}

// fakeKMS answers DescribeKey from the cloud's keys (key ID, key ARN or
// alias → manager "AWS" or "CUSTOMER").
type fakeKMS struct {
	c      *fakeCloud
	region string
}

func (k *fakeKMS) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	k.c.log(k.region, "DescribeKey", aws.ToString(in.KeyId), in)
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	m, ok := k.c.keys[aws.ToString(in.KeyId)]
	if !ok {
		return nil, apiErr("NotFoundException")
	}
	return &kms.DescribeKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{KeyId: in.KeyId, KeyManager: kmstypes.KeyManagerType(m)}}, nil
}

// kms returns Options.KMS for the fake.
func (c *fakeCloud) kms() func(region string) DescribeKeyAPI {
	return func(region string) DescribeKeyAPI { return &fakeKMS{c: c, region: region} }
}

func (f *fakeEC2) DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	f.c.log(f.region, "DeleteSnapshot", aws.ToString(in.SnapshotId), in)
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	f.c.snapDelete[aws.ToString(in.SnapshotId)] = true
	return &ec2.DeleteSnapshotOutput{}, nil
}

func (f *fakeEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.c.log(f.region, "DescribeInstances", "", in)
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	var ids []string
	for _, flt := range in.Filters {
		if aws.ToString(flt.Name) == "image-id" {
			ids = flt.Values
		}
	}
	res := types.Reservation{}
	for _, inst := range f.c.instances[f.region] {
		// State filters are ignored on purpose: the caller must check.
		if slices.Contains(ids, aws.ToString(inst.ImageId)) {
			res.Instances = append(res.Instances, inst)
		}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{res}}, nil
}

func (f *fakeEC2) DescribeLaunchTemplateVersions(ctx context.Context, in *ec2.DescribeLaunchTemplateVersionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	f.c.log(f.region, "DescribeLaunchTemplateVersions", "", in)
	if f.c.LaunchTemplatesFn != nil {
		return f.c.LaunchTemplatesFn(ctx, f.region, in)
	}
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	// Filters ignored on purpose, as moto does.
	return &ec2.DescribeLaunchTemplateVersionsOutput{LaunchTemplateVersions: slices.Clone(f.c.templates[f.region])}, nil
}

var _ API = (*fakeEC2)(nil)

// fastOptions makes waits and retries quick.
func fastOptions(o *Options) {
	o.Wait = WaitOptions{MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxWait: 5 * time.Second}
	o.RetryDelay = time.Millisecond
	o.ConsistencyTimeout = time.Second
}

func opsOf(calls []call) []string {
	out := make([]string, len(calls))
	for i, k := range calls {
		out[i] = k.String()
	}
	return out
}

func mustNoCalls(t *testing.T, c *fakeCloud, ops ...string) {
	t.Helper()
	if got := c.Calls(ops...); len(got) > 0 {
		t.Fatalf("unexpected calls: %v", opsOf(got))
	}
}
