//go:build unix

package distribute_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// ssmClients returns SSM clients that talk through the proxy.
func (e *motoEnv) ssmClients() distribute.SSMClientFunc {
	return func(region string) distribute.SSMAPI {
		return ssm.NewFromConfig(awstest.Config(e.proxy.URL, region))
	}
}

// directSSM returns an SSM client that bypasses the proxy, for setup and
// assertions.
func (e *motoEnv) directSSM(region string) *ssm.Client {
	return ssm.NewFromConfig(awstest.Config(e.moto.Endpoint, region))
}

// publishFixture is a launch template named name in every region (version
// 1 t3.micro, the default, and version 2 t3.small) and the parameter param
// holding ami-0000000000000000f in the first region only.
type publishFixture struct {
	name, param string
	regions     []string
	templates   map[string]string // region → ID
	images      map[string]string // region → AMI to publish
}

func newPublishFixture(t *testing.T, e *motoEnv, name string, regions ...string) *publishFixture {
	t.Helper()
	ctx := context.Background()
	f := &publishFixture{name: name, param: "/" + name + "/latest", regions: regions, templates: map[string]string{}, images: map[string]string{}}
	for i, r := range regions {
		c := e.direct(r)
		out, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
			LaunchTemplateName: aws.String(name),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0000000000000000f"), InstanceType: types.InstanceTypeT3Micro},
		})
		if err != nil {
			t.Fatalf("create launch template in %s: %v", r, err)
		}
		id := aws.ToString(out.LaunchTemplate.LaunchTemplateId)
		if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
			LaunchTemplateId:   aws.String(id),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0000000000000000f"), InstanceType: types.InstanceTypeT3Small},
		}); err != nil {
			t.Fatalf("create launch template version in %s: %v", r, err)
		}
		f.templates[r] = id
		f.images[r] = fmt.Sprintf("ami-%017x", 0xa0+i)
	}
	if _, err := e.directSSM(regions[0]).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(f.param), Value: aws.String("ami-0000000000000000f"), Type: ssmtypes.ParameterTypeString,
	}); err != nil {
		t.Fatalf("put parameter: %v", err)
	}
	return f
}

func (f *publishFixture) input() *distribute.PublishInput {
	return &distribute.PublishInput{
		Images: f.images,
		Parameters: []distribute.Parameter{{
			Name: f.param, Tags: map[string]string{"team": "web"}, Description: "the web AMI",
		}},
		LaunchTemplates: []distribute.LaunchTemplate{{Name: f.name, SourceVersion: "$Latest", SetDefault: true}},
	}
}

// parameter returns the parameter in region, or nil.
func (f *publishFixture) parameter(t *testing.T, e *motoEnv, region string) *ssmtypes.Parameter {
	t.Helper()
	out, err := e.directSSM(region).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(f.param)})
	var nf *ssmtypes.ParameterNotFound
	switch {
	case errors.As(err, &nf):
		return nil
	case err != nil:
		t.Fatalf("get parameter in %s: %v", region, err)
	}
	return out.Parameter
}

// template returns the template's default version and its versions.
func (f *publishFixture) template(t *testing.T, e *motoEnv, region string) (int64, []types.LaunchTemplateVersion) {
	t.Helper()
	ctx := context.Background()
	// Through the proxy, which emulates DeleteLaunchTemplateVersions.
	c := e.clients()(region)
	lt, err := c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{f.templates[region]}})
	if err != nil || len(lt.LaunchTemplates) != 1 {
		t.Fatalf("describe launch template in %s: %v", region, err)
	}
	vs, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(f.templates[region])})
	if err != nil {
		t.Fatalf("describe launch template versions in %s: %v", region, err)
	}
	return aws.ToInt64(lt.LaunchTemplates[0].DefaultVersionNumber), vs.LaunchTemplateVersions
}

func TestMotoPublishParametersAndLaunchTemplates(t *testing.T) {
	e := newMotoEnv(t)
	ctx := context.Background()
	f := newPublishFixture(t, e, "pub-web-1", "us-east-1", "eu-west-1")
	out, err := distribute.Publish(ctx, e.clients(), f.input(), fastWait, func(o *distribute.Options) { o.SSM = e.ssmClients() })
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}

	for _, r := range out.Parameters {
		p := f.parameter(t, e, r.Region)
		if p == nil || aws.ToString(p.Value) != f.images[r.Region] || aws.ToString(p.DataType) != "aws:ec2:image" || p.Version != r.Version || r.Status != distribute.PublishWritten {
			t.Errorf("%s: result %+v, parameter %+v", r.Region, r, p)
		}
		created := r.Region != "us-east-1"
		if r.Created != created {
			t.Errorf("%s: created %v, want %v", r.Region, r.Created, created)
		}
		tags, err := e.directSSM(r.Region).ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{
			ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(f.param),
		})
		if err != nil {
			t.Fatalf("list tags in %s: %v", r.Region, err)
		}
		if hasTeam := len(tags.TagList) == 1 && aws.ToString(tags.TagList[0].Value) == "web"; hasTeam != created {
			t.Errorf("%s: tags %v; tags are set only on a parameter the run creates", r.Region, tags.TagList)
		}
	}
	if r := out.Parameters[1]; r.Region != "us-east-1" || r.Previous != "ami-0000000000000000f" || r.Version != 2 {
		t.Errorf("overwritten parameter: %+v", r)
	}

	for _, r := range out.LaunchTemplates {
		def, versions := f.template(t, e, r.Region)
		if r.Status != distribute.PublishWritten || r.Version != 3 || r.SourceVersion != 2 || r.PreviousDefault != 1 || !r.Default || def != 3 || len(versions) != 3 {
			t.Errorf("%s: result %+v, default %d, %d versions", r.Region, r, def, len(versions))
		}
		for _, v := range versions {
			if aws.ToInt64(v.VersionNumber) == 3 && aws.ToString(v.LaunchTemplateData.ImageId) != f.images[r.Region] {
				t.Errorf("%s: version 3 has %s", r.Region, aws.ToString(v.LaunchTemplateData.ImageId))
			}
		}
	}
	// moto ignores SourceVersion and ClientToken: the request is the proof.
	for _, c := range e.proxy.CallsFor("ec2", "CreateLaunchTemplateVersion") {
		if c.Params.Get("SourceVersion") != "2" || c.Params.Get("ClientToken") == "" || c.Params.Get("VersionDescription") == "" {
			t.Errorf("%s: SourceVersion %q, ClientToken %q, VersionDescription %q", c, c.Params.Get("SourceVersion"),
				c.Params.Get("ClientToken"), c.Params.Get("VersionDescription"))
		}
	}
}

func TestMotoPublishFailureInLastRegionLeavesEverythingAsBefore(t *testing.T) {
	e := newMotoEnv(t)
	ctx := context.Background()
	f := newPublishFixture(t, e, "pub-web-2", "eu-west-1", "us-east-1", "us-west-2")
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Region == "us-west-2" && awstest.Matches(c, "ec2", "CreateLaunchTemplateVersion") {
			return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
		}
		return nil
	})
	out, err := distribute.Publish(ctx, e.clients(), f.input(), fastWait, func(o *distribute.Options) { o.SSM = e.ssmClients() })
	if err == nil {
		t.Fatalf("Publish succeeded: %+v", out)
	}
	t.Logf("Publish: %v", err)

	// Parameters: the one that existed holds its value and data type
	// again; the ones the run created are gone.
	for i, r := range f.regions {
		p := f.parameter(t, e, r)
		switch {
		case i == 0 && (p == nil || aws.ToString(p.Value) != "ami-0000000000000000f" || aws.ToString(p.DataType) != "text"):
			t.Errorf("%s: parameter %+v, want the value from before", r, p)
		case i > 0 && p != nil:
			t.Errorf("%s: parameter %+v, want none", r, p)
		}
	}
	// Launch templates: the default is version 1 again everywhere.
	for _, r := range f.regions {
		if def, _ := f.template(t, e, r); def != 1 {
			t.Errorf("%s: default version %d, want 1", r, def)
		}
	}
	// Versions: the request names this run's version, and the version is
	// gone (the proxy emulates DeleteLaunchTemplateVersions, which moto
	// 5.2.1 lacks).
	deleted := map[string]bool{}
	for _, c := range e.proxy.CallsFor("ec2", "DeleteLaunchTemplateVersions") {
		if c.Params.Get("LaunchTemplateId") != f.templates[c.Region] || c.Params.Get("LaunchTemplateVersion.1") != "3" || c.Status != http.StatusOK {
			t.Errorf("%s: %v answered %d", c, c.Params, c.Status)
		}
		deleted[c.Region] = true
		if _, versions := f.template(t, e, c.Region); len(versions) != 2 {
			t.Errorf("%s: %d versions after the rollback, want 2", c.Region, len(versions))
		}
	}
	if !deleted["eu-west-1"] || !deleted["us-east-1"] || deleted["us-west-2"] {
		t.Errorf("DeleteLaunchTemplateVersions sent in %v, want eu-west-1 and us-east-1", deleted)
	}
	for _, r := range out.LaunchTemplates {
		if r.Default {
			t.Errorf("%s: result says default: %+v", r.Region, r)
		}
	}
	if n := strconv.Itoa(len(out.Parameters)); n != "3" {
		t.Errorf("%s parameter results", n)
	}
}
