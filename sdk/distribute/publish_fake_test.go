//go:build unix

package distribute

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fakeEC2 keeps no launch templates of its own; these methods make it an
// API for the tests of Copy and Retain. Publish is tested with pubCloud.

func (f *fakeEC2) DescribeLaunchTemplates(context.Context, *ec2.DescribeLaunchTemplatesInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error) {
	return nil, apiErr("UnsupportedOperation")
}

func (f *fakeEC2) CreateLaunchTemplateVersion(context.Context, *ec2.CreateLaunchTemplateVersionInput, ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateVersionOutput, error) {
	return nil, apiErr("UnsupportedOperation")
}

func (f *fakeEC2) ModifyLaunchTemplate(context.Context, *ec2.ModifyLaunchTemplateInput, ...func(*ec2.Options)) (*ec2.ModifyLaunchTemplateOutput, error) {
	return nil, apiErr("UnsupportedOperation")
}

func (f *fakeEC2) DeleteLaunchTemplateVersions(context.Context, *ec2.DeleteLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateVersionsOutput, error) {
	return nil, apiErr("UnsupportedOperation")
}

// fakeParam is the fake's state of one SSM parameter.
type fakeParam struct {
	value, dataType, description string
	typ                          ssmtypes.ParameterType
	version                      int64
	tags                         map[string]string
}

// fakeLT is the fake's state of one launch template.
type fakeLT struct {
	id, name         string
	def, latest      int64
	versions         []types.LaunchTemplateVersion // in version order
	tokens           map[string]int64              // ClientToken → version
	tokenParams      map[string]string             // ClientToken → the parameters sent with it
	sourceOf         map[int64]int64               // version → the version it was based on
	deletedByRequest []int64
}

// pubCloud is an in-memory SSM Parameter Store and EC2 launch template
// service in several regions, for the tests of Publish. Every call is
// logged; Before runs before a call (an error is returned instead and
// nothing happens), After after it (an error replaces the answer of a call
// that took effect: a lost answer).
type pubCloud struct {
	callLog
	params map[string]map[string]*fakeParam // region → name
	lts    map[string]map[string]*fakeLT    // region → id
	seq    int

	Before func(ctx context.Context, k call) error
	After  func(ctx context.Context, k call) error
}

func newPubCloud() *pubCloud {
	return &pubCloud{params: map[string]map[string]*fakeParam{}, lts: map[string]map[string]*fakeLT{}}
}

func (c *pubCloud) ssmClients() SSMClientFunc {
	return func(region string) SSMAPI { return &pubSSM{c: c, region: region} }
}

func (c *pubCloud) clients() ClientFunc {
	return func(region string) API { return &pubEC2{c: c, region: region} }
}

// putParam sets a parameter as someone else would.
func (c *pubCloud) putParam(region, name, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.params[region] == nil {
		c.params[region] = map[string]*fakeParam{}
	}
	p := c.params[region][name]
	if p == nil {
		p = &fakeParam{typ: ssmtypes.ParameterTypeString, dataType: "text"}
		c.params[region][name] = p
	}
	p.value = value
	p.version++
}

func (c *pubCloud) param(region, name string) *fakeParam {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.params[region][name]; p != nil {
		cp := *p
		return &cp
	}
	return nil
}

// addLT makes a launch template with one version per instance type, the
// first the default.
func (c *pubCloud) addLT(region, name string, instanceTypes ...string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	id := fmt.Sprintf("lt-%017x", c.seq)
	t := &fakeLT{id: id, name: name, def: 1, tokens: map[string]int64{}, tokenParams: map[string]string{}, sourceOf: map[int64]int64{}}
	for _, it := range instanceTypes {
		t.latest++
		t.versions = append(t.versions, types.LaunchTemplateVersion{
			LaunchTemplateId: aws.String(id), LaunchTemplateName: aws.String(name), VersionNumber: aws.Int64(t.latest),
			LaunchTemplateData: &types.ResponseLaunchTemplateData{ImageId: aws.String("ami-old"), InstanceType: types.InstanceType(it)},
		})
	}
	if c.lts[region] == nil {
		c.lts[region] = map[string]*fakeLT{}
	}
	c.lts[region][id] = t
	return id
}

// lt returns a copy of a template's state.
func (c *pubCloud) lt(region, id string) fakeLT {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := *c.lts[region][id]
	t.versions = slices.Clone(t.versions)
	return t
}

// setDefault changes a template's default as someone else would.
func (c *pubCloud) setDefault(region, id string, v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lts[region][id].def = v
}

func (t *fakeLT) version(n int64) *types.LaunchTemplateVersion {
	for i := range t.versions {
		if aws.ToInt64(t.versions[i].VersionNumber) == n {
			return &t.versions[i]
		}
	}
	return nil
}

// pubDo logs a call and runs it between the Before and After hooks.
func pubDo[T any](ctx context.Context, c *pubCloud, region, op, id string, in any, fn func() (*T, error)) (*T, error) {
	k := call{Region: region, Op: op, ID: id, In: in}
	c.mu.Lock()
	c.calls = append(c.calls, k)
	before, after := c.Before, c.After
	c.mu.Unlock()
	if before != nil {
		if err := before(ctx, k); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	out, err := fn()
	c.mu.Unlock()
	if err == nil && after != nil {
		if aerr := after(ctx, k); aerr != nil {
			return nil, aerr
		}
	}
	return out, err
}

// ssmErr is an SSM refusal as the SDK returns it.
func ssmErr(err smithy.APIError) error {
	return &smithy.OperationError{ServiceID: "SSM", OperationName: "Fake", Err: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusBadRequest}},
		Err:      err,
	}}
}

type pubSSM struct {
	c      *pubCloud
	region string
}

func (f *pubSSM) GetParameter(ctx context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	name := aws.ToString(in.Name)
	return pubDo(ctx, f.c, f.region, "GetParameter", name, in, func() (*ssm.GetParameterOutput, error) {
		p := f.c.params[f.region][name]
		if p == nil {
			return nil, ssmErr(&ssmtypes.ParameterNotFound{})
		}
		return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{
			Name: aws.String(name), Value: aws.String(p.value), Type: p.typ, DataType: aws.String(p.dataType), Version: p.version,
		}}, nil
	})
}

func (f *pubSSM) PutParameter(ctx context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	name := aws.ToString(in.Name)
	return pubDo(ctx, f.c, f.region, "PutParameter", name, in, func() (*ssm.PutParameterOutput, error) {
		overwrite := aws.ToBool(in.Overwrite)
		if overwrite && len(in.Tags) > 0 {
			return nil, ssmErr(&smithy.GenericAPIError{Code: "ValidationException", Message: "tags and overwrite can't be used together"})
		}
		if f.c.params[f.region] == nil {
			f.c.params[f.region] = map[string]*fakeParam{}
		}
		p := f.c.params[f.region][name]
		switch {
		case p != nil && !overwrite:
			return nil, ssmErr(&ssmtypes.ParameterAlreadyExists{})
		case p == nil:
			p = &fakeParam{dataType: "text", tags: map[string]string{}}
			for _, tg := range in.Tags {
				p.tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			f.c.params[f.region][name] = p
		}
		p.value, p.typ = aws.ToString(in.Value), in.Type
		if in.DataType != nil {
			p.dataType = *in.DataType
		}
		if in.Description != nil {
			p.description = *in.Description
		}
		p.version++
		return &ssm.PutParameterOutput{Version: p.version}, nil
	})
}

func (f *pubSSM) DeleteParameter(ctx context.Context, in *ssm.DeleteParameterInput, _ ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error) {
	name := aws.ToString(in.Name)
	return pubDo(ctx, f.c, f.region, "DeleteParameter", name, in, func() (*ssm.DeleteParameterOutput, error) {
		if f.c.params[f.region][name] == nil {
			return nil, ssmErr(&ssmtypes.ParameterNotFound{})
		}
		delete(f.c.params[f.region], name)
		return &ssm.DeleteParameterOutput{}, nil
	})
}

// pubEC2 serves the launch template calls; other calls of API panic.
type pubEC2 struct {
	API
	c      *pubCloud
	region string
}

func (f *pubEC2) template(id, name string) (*fakeLT, error) {
	for _, t := range f.c.lts[f.region] {
		if id != "" && t.id == id || id == "" && t.name == name {
			return t, nil
		}
	}
	if id != "" {
		return nil, apiErr("InvalidLaunchTemplateId.NotFound")
	}
	return nil, apiErr("InvalidLaunchTemplateName.NotFoundException")
}

func (f *pubEC2) DescribeLaunchTemplates(ctx context.Context, in *ec2.DescribeLaunchTemplatesInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error) {
	ref := slices.Concat(in.LaunchTemplateIds, in.LaunchTemplateNames)
	return pubDo(ctx, f.c, f.region, "DescribeLaunchTemplates", fmt.Sprint(ref), in, func() (*ec2.DescribeLaunchTemplatesOutput, error) {
		out := &ec2.DescribeLaunchTemplatesOutput{}
		for _, id := range in.LaunchTemplateIds {
			t, err := f.template(id, "")
			if err != nil {
				return nil, err
			}
			out.LaunchTemplates = append(out.LaunchTemplates, t.describe())
		}
		for _, name := range in.LaunchTemplateNames {
			t, err := f.template("", name)
			if err != nil {
				return nil, err
			}
			out.LaunchTemplates = append(out.LaunchTemplates, t.describe())
		}
		return out, nil
	})
}

func (t *fakeLT) describe() types.LaunchTemplate {
	return types.LaunchTemplate{
		LaunchTemplateId: aws.String(t.id), LaunchTemplateName: aws.String(t.name),
		DefaultVersionNumber: aws.Int64(t.def), LatestVersionNumber: aws.Int64(t.latest),
	}
}

func (f *pubEC2) CreateLaunchTemplateVersion(ctx context.Context, in *ec2.CreateLaunchTemplateVersionInput, _ ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateVersionOutput, error) {
	return pubDo(ctx, f.c, f.region, "CreateLaunchTemplateVersion", aws.ToString(in.LaunchTemplateId), in, func() (*ec2.CreateLaunchTemplateVersionOutput, error) {
		t, err := f.template(aws.ToString(in.LaunchTemplateId), aws.ToString(in.LaunchTemplateName))
		if err != nil {
			return nil, err
		}
		token := aws.ToString(in.ClientToken)
		sent := fmt.Sprint(aws.ToString(in.SourceVersion), aws.ToString(in.VersionDescription), aws.ToString(in.LaunchTemplateData.ImageId))
		if v, ok := t.tokens[token]; ok && token != "" {
			if t.tokenParams[token] != sent {
				return nil, apiErr("IdempotentParameterMismatch")
			}
			return &ec2.CreateLaunchTemplateVersionOutput{LaunchTemplateVersion: t.version(v)}, nil
		}
		src, err := strconv.ParseInt(aws.ToString(in.SourceVersion), 10, 64)
		if err != nil || t.version(src) == nil {
			return nil, apiErr("InvalidLaunchTemplateId.VersionNotFound")
		}
		data := *t.version(src).LaunchTemplateData
		data.ImageId = in.LaunchTemplateData.ImageId
		t.latest++
		t.versions = append(t.versions, types.LaunchTemplateVersion{
			LaunchTemplateId: aws.String(t.id), LaunchTemplateName: aws.String(t.name), VersionNumber: aws.Int64(t.latest),
			VersionDescription: in.VersionDescription, LaunchTemplateData: &data,
		})
		t.sourceOf[t.latest] = src
		if token != "" {
			t.tokens[token], t.tokenParams[token] = t.latest, sent
		}
		return &ec2.CreateLaunchTemplateVersionOutput{LaunchTemplateVersion: t.version(t.latest)}, nil
	})
}

func (f *pubEC2) ModifyLaunchTemplate(ctx context.Context, in *ec2.ModifyLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.ModifyLaunchTemplateOutput, error) {
	return pubDo(ctx, f.c, f.region, "ModifyLaunchTemplate", aws.ToString(in.LaunchTemplateId)+":"+aws.ToString(in.DefaultVersion), in, func() (*ec2.ModifyLaunchTemplateOutput, error) {
		t, err := f.template(aws.ToString(in.LaunchTemplateId), aws.ToString(in.LaunchTemplateName))
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseInt(aws.ToString(in.DefaultVersion), 10, 64)
		if err != nil || t.version(v) == nil {
			return nil, apiErr("InvalidLaunchTemplateId.VersionNotFound")
		}
		t.def = v
		d := t.describe()
		return &ec2.ModifyLaunchTemplateOutput{LaunchTemplate: &d}, nil
	})
}

func (f *pubEC2) DeleteLaunchTemplateVersions(ctx context.Context, in *ec2.DeleteLaunchTemplateVersionsInput, _ ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateVersionsOutput, error) {
	return pubDo(ctx, f.c, f.region, "DeleteLaunchTemplateVersions", aws.ToString(in.LaunchTemplateId)+":"+fmt.Sprint(in.Versions), in, func() (*ec2.DeleteLaunchTemplateVersionsOutput, error) {
		t, err := f.template(aws.ToString(in.LaunchTemplateId), aws.ToString(in.LaunchTemplateName))
		if err != nil {
			return nil, err
		}
		out := &ec2.DeleteLaunchTemplateVersionsOutput{}
		for _, s := range in.Versions {
			v, _ := strconv.ParseInt(s, 10, 64)
			fail := func(code types.LaunchTemplateErrorCode) {
				out.UnsuccessfullyDeletedLaunchTemplateVersions = append(out.UnsuccessfullyDeletedLaunchTemplateVersions, types.DeleteLaunchTemplateVersionsResponseErrorItem{
					LaunchTemplateId: aws.String(t.id), VersionNumber: aws.Int64(v),
					ResponseError: &types.ResponseError{Code: code, Message: aws.String(string(code))},
				})
			}
			switch {
			case t.version(v) == nil:
				fail(types.LaunchTemplateErrorCodeLaunchTemplateVersionDoesNotExist)
			case v == t.def:
				fail(types.LaunchTemplateErrorCodeUnexpectedError)
			default:
				t.versions = slices.DeleteFunc(t.versions, func(x types.LaunchTemplateVersion) bool { return aws.ToInt64(x.VersionNumber) == v })
				t.deletedByRequest = append(t.deletedByRequest, v)
				out.SuccessfullyDeletedLaunchTemplateVersions = append(out.SuccessfullyDeletedLaunchTemplateVersions, types.DeleteLaunchTemplateVersionsResponseSuccessItem{
					LaunchTemplateId: aws.String(t.id), VersionNumber: aws.Int64(v),
				})
			}
		}
		return out, nil
	})
}

func (f *pubEC2) DescribeLaunchTemplateVersions(ctx context.Context, in *ec2.DescribeLaunchTemplateVersionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	return pubDo(ctx, f.c, f.region, "DescribeLaunchTemplateVersions", aws.ToString(in.LaunchTemplateId), in, func() (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
		t, err := f.template(aws.ToString(in.LaunchTemplateId), aws.ToString(in.LaunchTemplateName))
		if err != nil {
			return nil, err
		}
		var min int64
		if in.MinVersion != nil {
			min, _ = strconv.ParseInt(*in.MinVersion, 10, 64)
		}
		out := &ec2.DescribeLaunchTemplateVersionsOutput{}
		for _, v := range t.versions {
			if aws.ToInt64(v.VersionNumber) >= min {
				out.LaunchTemplateVersions = append(out.LaunchTemplateVersions, v)
			}
		}
		return out, nil
	})
}

var (
	_ SSMAPI = (*pubSSM)(nil)
	_ API    = (*pubEC2)(nil)
)

// sortedRegions returns the regions of a map in order.
func sortedRegions[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
