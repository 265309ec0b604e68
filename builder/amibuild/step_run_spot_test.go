//go:build unix

package amibuild

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestStepRunInstanceSpot launches the build instance through an instant
// fleet on moto and checks the requests (moto drops the launch template's
// security groups, block devices and maximum price, so they are checked at
// the proxy), the instance, and that Cleanup removes the fleet, the instance
// and the launch template.
func TestStepRunInstanceSpot(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	src := sourceImage(t, e.ec2)
	StateSourceImage.Put(e.state, src)
	StateKeyPairName.Put(e.state, "build-key")
	StateSecurityGroupIDs.Put(e.state, []string{"sg-0123456789abcdef0"})
	run := &RunConfig{
		RunTags:         map[string]string{"Name": "packer from {{ .SourceAMIName }}"},
		MetadataOptions: MetadataOptions{HTTPTokens: "required"},
		LaunchMappings:  BlockDevices{{DeviceName: "/dev/xvdf", VolumeSize: 100, VolumeType: "gp3", DeleteOnTermination: config.TriTrue}},
		SpotConfig: SpotConfig{
			SpotPrice:              "0.05",
			SpotInstanceTypes:      []string{"c6i.xlarge", "c5.xlarge"},
			SpotAllocationStrategy: "capacity-optimized",
			SpotTags:               map[string]string{"Spot": "{{ .BuildRegion }}"},
			FleetTags:              map[string]string{"Fleet": "{{ .SourceAMI }}"},
		},
	}
	step := &StepRunInstance{Region: testRegion, Config: run, Ctx: interpolate.Context{Funcs: amiconfig.TemplateFuncs}}
	e.run(t, step)

	id, _ := StateInstanceID.Get(e.state)
	inst, _ := StateInstance.Get(e.state)
	if id == "" || aws.ToString(inst.InstanceId) != id || inst.InstanceLifecycle != types.InstanceLifecycleTypeSpot {
		t.Fatalf("instance %q (%q), lifecycle %q", id, aws.ToString(inst.InstanceId), inst.InstanceLifecycle)
	}
	if name := tagMap(inst.Tags)["Name"]; name != "packer from "+aws.ToString(src.Name) {
		t.Errorf("instance Name tag %q; want the rendered run tag", name)
	}
	if got := e.actions(); !slices.Equal(got, []string{"CreateLaunchTemplate", "CreateFleet", "DescribeInstances"}) {
		t.Errorf("calls = %v", got)
	}
	lt := e.proxy.CallsFor("ec2", "CreateLaunchTemplate")[0].Params
	want := map[string]string{
		"LaunchTemplateData.ImageId":                                      aws.ToString(src.ImageId),
		"LaunchTemplateData.KeyName":                                      "build-key",
		"LaunchTemplateData.SecurityGroupId.1":                            "sg-0123456789abcdef0",
		"LaunchTemplateData.InstanceMarketOptions.MarketType":             "spot",
		"LaunchTemplateData.InstanceMarketOptions.SpotOptions.MaxPrice":   "0.05",
		"LaunchTemplateData.MetadataOptions.HttpTokens":                   "required",
		"LaunchTemplateData.BlockDeviceMapping.1.DeviceName":              "/dev/xvdf",
		"LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeSize":          "100",
		"LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeType":          "gp3",
		"LaunchTemplateData.BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true",
		"TagSpecification.1.ResourceType":                                 "launch-template",
	}
	for k, v := range want {
		if got := lt.Get(k); got != v {
			t.Errorf("CreateLaunchTemplate %s = %q, want %q", k, got, v)
		}
	}
	if lt.Get("LaunchTemplateData.InstanceType") != "" {
		t.Errorf("the launch template names instance type %q; the fleet's overrides choose it", lt.Get("LaunchTemplateData.InstanceType"))
	}
	ltTags := paramTags(lt, "TagSpecification.1.Tag")
	if ltTags["Spot"] != testRegion {
		t.Errorf("launch template tags %v, want the rendered spot tag", ltTags)
	}
	fl := e.proxy.CallsFor("ec2", "CreateFleet")[0].Params
	want = map[string]string{
		"Type": "instant",
		"TargetCapacitySpecification.TotalTargetCapacity":       "1",
		"TargetCapacitySpecification.DefaultTargetCapacityType": "spot",
		"LaunchTemplateConfigs.1.Overrides.1.InstanceType":      "c6i.xlarge",
		"LaunchTemplateConfigs.1.Overrides.2.InstanceType":      "c5.xlarge",
		"SpotOptions.AllocationStrategy":                        "capacity-optimized",
		"TagSpecification.1.ResourceType":                       "fleet",
		"ClientToken":                                           lt.Get("ClientToken"),
	}
	for k, v := range want {
		if got := fl.Get(k); got != v {
			t.Errorf("CreateFleet %s = %q, want %q", k, got, v)
		}
	}
	if fl.Get("ClientToken") == "" {
		t.Error("CreateFleet has no ClientToken")
	}
	if tags := paramTags(fl, "TagSpecification.1.Tag"); tags["Fleet"] != aws.ToString(src.ImageId) {
		t.Errorf("fleet tags %v, want the rendered fleet tag", tags)
	}
	fleets, err := e.ec2.DescribeFleets(ctx, &ec2.DescribeFleetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var fleetID string
	for _, f := range fleets.Fleets {
		if f.FleetState == types.FleetStateCodeActive && tagMap(f.Tags)["Fleet"] == aws.ToString(src.ImageId) {
			fleetID = aws.ToString(f.FleetId)
		}
	}
	if fleetID == "" {
		t.Fatalf("no active fleet tagged Fleet=%s", aws.ToString(src.ImageId))
	}

	e.proxy.Reset()
	step.Cleanup(e.state)
	if e.ui.ErrorCalled {
		t.Errorf("cleanup reported an error: %s", e.ui.ErrorMessage)
	}
	if got := e.actions(); !slices.Equal(got[:2], []string{"DeleteFleets", "TerminateInstances"}) || got[len(got)-1] != "DeleteLaunchTemplate" {
		t.Errorf("cleanup calls = %v", got)
	}
	d, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if st := d.Reservations[0].Instances[0].State.Name; st != types.InstanceStateNameTerminated {
		t.Errorf("instance is %s after cleanup", st)
	}
	for _, tpl := range launchTemplates(t, e.ec2) {
		if strings.HasPrefix(aws.ToString(tpl.LaunchTemplateName), "ami-build-fleet-") {
			t.Errorf("launch template %s is left", aws.ToString(tpl.LaunchTemplateName))
		}
	}
	fleets, err = e.ec2.DescribeFleets(ctx, &ec2.DescribeFleetsInput{FleetIds: []string{fleetID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fleets.Fleets {
		if !strings.HasPrefix(string(f.FleetState), "deleted") {
			t.Errorf("fleet %s is %s after cleanup", fleetID, f.FleetState)
		}
	}

	// A second Cleanup has nothing left to do.
	e.proxy.Reset()
	step.Cleanup(e.state)
	if a := e.actions(); len(a) != 0 {
		t.Errorf("second cleanup made calls: %v", a)
	}
}

// TestStepRunInstanceSpotNoCapacity makes the fleet launch nothing: the step
// halts with an error naming the instance types, and nothing is left.
func TestStepRunInstanceSpotNoCapacity(t *testing.T) {
	e := newTestEnv(t)
	src := sourceImage(t, e.ec2)
	StateSourceImage.Put(e.state, src)
	e.proxy.SetFault(noCapacity)
	step := &StepRunInstance{Region: testRegion, Config: &RunConfig{SpotConfig: SpotConfig{SpotPrice: "auto", SpotInstanceTypes: []string{"c6i.xlarge", "c5.xlarge"}}},
		Ctx: interpolate.Context{Funcs: amiconfig.TemplateFuncs}}
	err := e.runHalt(t, step)
	for _, w := range []string{"launch spot build instance in us-east-1", "no spot instance was launched", "c6i.xlarge, c5.xlarge"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if got := e.actions(); !slices.Equal(got, []string{"CreateLaunchTemplate", "CreateFleet", "DeleteLaunchTemplate"}) {
		t.Errorf("calls = %v", got)
	}
	name := e.proxy.CallsFor("ec2", "CreateLaunchTemplate")[0].Params.Get("LaunchTemplateName")
	for _, tpl := range launchTemplates(t, e.ec2) {
		if aws.ToString(tpl.LaunchTemplateName) == name {
			t.Errorf("launch template %s is left", name)
		}
	}
	e.proxy.Reset()
	step.Cleanup(e.state)
	if a := e.actions(); len(a) != 0 {
		t.Errorf("cleanup after the failed launch made calls: %v", a)
	}
}

// paramTags reads the tags under prefix ("TagSpecification.1.Tag") of EC2
// query parameters.
func paramTags(p url.Values, prefix string) map[string]string {
	m := map[string]string{}
	for i := 1; p.Has(prefix + "." + strconv.Itoa(i) + ".Key"); i++ {
		n := prefix + "." + strconv.Itoa(i)
		m[p.Get(n+".Key")] = p.Get(n + ".Value")
	}
	return m
}

// noCapacity answers CreateFleet with HTTP 200 and no instance, as EC2
// answers an instant fleet that found no spot capacity.
func noCapacity(_ *http.Request, c awstest.Call) *awstest.Fault {
	if awstest.Matches(c, "ec2", "CreateFleet") {
		return &awstest.Fault{Name: "fleet without instances", Status: http.StatusOK}
	}
	return nil
}

// launchTemplates lists the launch templates in moto.
func launchTemplates(t *testing.T, api *ec2.Client) []types.LaunchTemplate {
	t.Helper()
	out, err := api.DescribeLaunchTemplates(context.Background(), &ec2.DescribeLaunchTemplatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.LaunchTemplates
}
