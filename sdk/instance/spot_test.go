//go:build unix

package instance

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// spotFake answers a RunSpot: the launch template lt-1, a fleet fleet-1
// that launches i-1 (or what fleet answers), i-1 running.
func spotFake(fleet func(*ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error)) *fakeEC2 {
	if fleet == nil {
		fleet = func(*ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error) {
			return &ec2.CreateFleetOutput{FleetId: aws.String("fleet-1"), Instances: []types.CreateFleetInstance{{InstanceIds: []string{"i-1"}, Lifecycle: types.InstanceLifecycleSpot}}}, nil
		}
	}
	return &fakeEC2{
		createLT: func(in *ec2.CreateLaunchTemplateInput) (*ec2.CreateLaunchTemplateOutput, error) {
			return &ec2.CreateLaunchTemplateOutput{LaunchTemplate: &types.LaunchTemplate{LaunchTemplateId: aws.String("lt-1"), LaunchTemplateName: in.LaunchTemplateName}}, nil
		},
		createFleet:       fleet,
		describeInstances: sequence(states(inst("i-1", "running", ""))),
	}
}

func tagsOf(specs []types.LaunchTemplateTagSpecificationRequest, rt types.ResourceType) map[string]string {
	for _, s := range specs {
		if s.ResourceType == rt {
			return tagMap(s.Tags)
		}
	}
	return nil
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// spotCalls returns the fake's calls with the random suffix of a default
// launch template name as "*".
func spotCalls(f *fakeEC2) []string {
	calls := f.Calls()
	for i, c := range calls {
		if strings.HasPrefix(c, "CreateLaunchTemplate ami-build-fleet-") {
			calls[i] = "CreateLaunchTemplate ami-build-fleet-*"
		}
	}
	return calls
}

func TestRunSpot(t *testing.T) {
	tr := true
	tests := []struct {
		name  string
		in    RunSpotInput
		sir   string // the instance's spot request
		calls []string
		check func(t *testing.T, lt *ec2.CreateLaunchTemplateInput, fl *ec2.CreateFleetInput, tags *ec2.CreateTagsInput)
	}{
		{
			name: "instance types, auto price, tags",
			in: RunSpotInput{
				RunInput: RunInput{
					ImageID: "ami-1", KeyName: "k", UserData: "#!/bin/sh\n", SecurityGroupIDs: []string{"sg-1"},
					MetadataOptions:     &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)},
					BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(40), VolumeType: types.VolumeTypeGp3, Encrypted: aws.Bool(true)}}},
					Tags:                map[string]string{"Team": "data"}, VolumeTags: map[string]string{"Vol": "1"},
					ClientToken: "tok", Wait: quickWait,
				},
				InstanceTypes:      []string{"c6i.xlarge", "c5.xlarge"},
				AllocationStrategy: "price-capacity-optimized",
				SpotTags:           map[string]string{"Name": "spot"},
				FleetTags:          map[string]string{"Fleet": "yes"},
				LaunchTemplateName: "lt-name",
			},
			sir: "sir-1",
			calls: []string{"CreateLaunchTemplate lt-name", "CreateFleet instant", "DescribeInstances i-1", "CreateTags sir-1",
				"DeleteFleets fleet-1", "TerminateInstances i-1", "DescribeInstances i-1", "DeleteLaunchTemplate lt-1"},
			check: func(t *testing.T, lt *ec2.CreateLaunchTemplateInput, fl *ec2.CreateFleetInput, tags *ec2.CreateTagsInput) {
				d := lt.LaunchTemplateData
				if d.InstanceType != "" || aws.ToString(d.ImageId) != "ami-1" || aws.ToString(d.KeyName) != "k" {
					t.Errorf("template data: type %q image %v key %v", d.InstanceType, d.ImageId, d.KeyName)
				}
				if ud, _ := base64.StdEncoding.DecodeString(aws.ToString(d.UserData)); string(ud) != "#!/bin/sh\n" {
					t.Errorf("user data %q", aws.ToString(d.UserData))
				}
				if m := d.InstanceMarketOptions; m == nil || m.MarketType != types.MarketTypeSpot || m.SpotOptions == nil || m.SpotOptions.MaxPrice != nil {
					t.Errorf("market options = %+v, want spot without a max price", m)
				}
				if !slices.Equal(d.SecurityGroupIds, []string{"sg-1"}) || d.NetworkInterfaces != nil {
					t.Errorf("groups %v interfaces %v", d.SecurityGroupIds, d.NetworkInterfaces)
				}
				if d.MetadataOptions == nil || d.MetadataOptions.HttpTokens != types.LaunchTemplateHttpTokensStateRequired || aws.ToInt32(d.MetadataOptions.HttpPutResponseHopLimit) != 2 {
					t.Errorf("metadata options %+v", d.MetadataOptions)
				}
				if len(d.BlockDeviceMappings) != 1 || aws.ToInt32(d.BlockDeviceMappings[0].Ebs.VolumeSize) != 40 || !aws.ToBool(d.BlockDeviceMappings[0].Ebs.Encrypted) {
					t.Errorf("block devices %+v", d.BlockDeviceMappings)
				}
				if got := tagsOf(d.TagSpecifications, types.ResourceTypeInstance); got["Team"] != "data" || got[CreateTokenTag] != "tok" {
					t.Errorf("instance tags %v", got)
				}
				if got := tagsOf(d.TagSpecifications, types.ResourceTypeVolume); got["Vol"] != "1" || len(got) != 1 {
					t.Errorf("volume tags %v", got)
				}
				if got := tagMap(lt.TagSpecifications[0].Tags); lt.TagSpecifications[0].ResourceType != types.ResourceTypeLaunchTemplate || got["Name"] != "spot" || got[CreateTokenTag] != "tok" {
					t.Errorf("launch template tags %+v", lt.TagSpecifications)
				}
				if aws.ToString(lt.ClientToken) != "tok" || aws.ToString(fl.ClientToken) != "tok" {
					t.Errorf("client tokens %v %v", lt.ClientToken, fl.ClientToken)
				}
				if fl.Type != types.FleetTypeInstant || aws.ToInt32(fl.TargetCapacitySpecification.TotalTargetCapacity) != 1 || fl.TargetCapacitySpecification.DefaultTargetCapacityType != types.DefaultTargetCapacityTypeSpot {
					t.Errorf("fleet %+v %+v", fl.Type, fl.TargetCapacitySpecification)
				}
				c := fl.LaunchTemplateConfigs[0]
				if aws.ToString(c.LaunchTemplateSpecification.LaunchTemplateId) != "lt-1" || aws.ToString(c.LaunchTemplateSpecification.Version) != "1" {
					t.Errorf("fleet template %+v", c.LaunchTemplateSpecification)
				}
				var ovr []string
				for _, o := range c.Overrides {
					ovr = append(ovr, string(o.InstanceType))
				}
				if !slices.Equal(ovr, []string{"c6i.xlarge", "c5.xlarge"}) {
					t.Errorf("overrides %v", ovr)
				}
				if fl.SpotOptions == nil || fl.SpotOptions.AllocationStrategy != types.SpotAllocationStrategyPriceCapacityOptimized {
					t.Errorf("spot options %+v", fl.SpotOptions)
				}
				if len(fl.TagSpecifications) != 1 || fl.TagSpecifications[0].ResourceType != types.ResourceTypeFleet ||
					tagMap(fl.TagSpecifications[0].Tags)["Fleet"] != "yes" || tagMap(fl.TagSpecifications[0].Tags)[CreateTokenTag] != "tok" {
					t.Errorf("fleet tags %+v", fl.TagSpecifications)
				}
				if tags == nil || tagMap(tags.Tags)["Name"] != "spot" || len(tags.Tags) != 1 {
					t.Errorf("spot request tags %+v", tags)
				}
			},
		},
		{
			name: "one type, max price, subnet with public IP, no spot request reported",
			in: RunSpotInput{
				RunInput: RunInput{ImageID: "ami-1", InstanceType: "t3.micro", SubnetID: "subnet-1", SecurityGroupIDs: []string{"sg-1"}, AssociatePublicIP: &tr, IAMInstanceProfile: "prof", Wait: quickWait},
				MaxPrice: "0.05",
				SpotTags: map[string]string{"Name": "spot"},
			},
			calls: []string{"CreateLaunchTemplate ami-build-fleet-*", "CreateFleet instant", "DescribeInstances i-1",
				"DeleteFleets fleet-1", "TerminateInstances i-1", "DescribeInstances i-1", "DeleteLaunchTemplate lt-1"},
			check: func(t *testing.T, lt *ec2.CreateLaunchTemplateInput, fl *ec2.CreateFleetInput, _ *ec2.CreateTagsInput) {
				d := lt.LaunchTemplateData
				if d.InstanceType != "t3.micro" || aws.ToString(d.InstanceMarketOptions.SpotOptions.MaxPrice) != "0.05" {
					t.Errorf("type %q max price %v", d.InstanceType, d.InstanceMarketOptions.SpotOptions.MaxPrice)
				}
				if !strings.HasPrefix(aws.ToString(lt.LaunchTemplateName), "ami-build-fleet-") {
					t.Errorf("template name %q", aws.ToString(lt.LaunchTemplateName))
				}
				if len(d.NetworkInterfaces) != 1 || d.SecurityGroupIds != nil {
					t.Fatalf("want one network interface, got %+v / %v", d.NetworkInterfaces, d.SecurityGroupIds)
				}
				ni := d.NetworkInterfaces[0]
				if aws.ToString(ni.SubnetId) != "subnet-1" || !aws.ToBool(ni.AssociatePublicIpAddress) || !slices.Equal(ni.Groups, []string{"sg-1"}) {
					t.Errorf("network interface %+v", ni)
				}
				if aws.ToString(d.IamInstanceProfile.Name) != "prof" {
					t.Errorf("profile %+v", d.IamInstanceProfile)
				}
				if len(fl.LaunchTemplateConfigs[0].Overrides) != 0 || fl.SpotOptions != nil || len(fl.TagSpecifications[0].Tags) != 1 {
					t.Errorf("fleet: overrides %v spot options %v tags %v", fl.LaunchTemplateConfigs[0].Overrides, fl.SpotOptions, fl.TagSpecifications)
				}
				if len(aws.ToString(fl.ClientToken)) != 32 || aws.ToString(fl.ClientToken) != aws.ToString(lt.ClientToken) {
					t.Errorf("tokens %v %v", fl.ClientToken, lt.ClientToken)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				lt   *ec2.CreateLaunchTemplateInput
				fl   *ec2.CreateFleetInput
				tags *ec2.CreateTagsInput
			)
			f := spotFake(nil)
			createLT, createFleet := f.createLT, f.createFleet
			f.createLT = func(in *ec2.CreateLaunchTemplateInput) (*ec2.CreateLaunchTemplateOutput, error) {
				lt = in
				return createLT(in)
			}
			f.createFleet = func(in *ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error) {
				fl = in
				return createFleet(in)
			}
			f.createTags = func(in *ec2.CreateTagsInput) (*ec2.CreateTagsOutput, error) {
				tags = in
				return &ec2.CreateTagsOutput{}, nil
			}
			running := inst("i-1", "running", "")
			if tc.sir != "" {
				running.SpotInstanceRequestId = aws.String(tc.sir)
			}
			f.describeInstances = sequence(states(running), states(inst("i-1", "terminated", "")))
			var l ledger.Ledger
			out, err := RunSpot(context.Background(), f, &tc.in, fast, func(o *Options) { o.Ledger = &l })
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.Instance.InstanceId) != "i-1" || out.FleetID != "fleet-1" || out.LaunchTemplateID != "lt-1" || out.ClientToken != aws.ToString(fl.ClientToken) {
				t.Errorf("output %+v", out)
			}
			var kinds []string
			for _, r := range l.Resources() {
				kinds = append(kinds, string(r.Kind)+" "+r.ID)
			}
			if want := []string{"launch-template lt-1", "instance i-1", "fleet fleet-1"}; !slices.Equal(kinds, want) {
				t.Errorf("ledger %q, want %q", kinds, want)
			}
			if err := l.Undo(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := spotCalls(f); !slices.Equal(got, tc.calls) {
				t.Errorf("calls = %q, want %q", got, tc.calls)
			}
			tc.check(t, lt, fl, tags)
		})
	}
}

func TestRunSpotLaunchesNothing(t *testing.T) {
	f := spotFake(func(*ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error) {
		return &ec2.CreateFleetOutput{FleetId: aws.String("fleet-1"), Errors: []types.CreateFleetError{
			{ErrorCode: aws.String("InsufficientInstanceCapacity"), ErrorMessage: aws.String("no capacity in us-east-1a"),
				LaunchTemplateAndOverrides: &types.LaunchTemplateAndOverridesResponse{Overrides: &types.FleetLaunchTemplateOverrides{InstanceType: "c5.xlarge"}}},
			{ErrorCode: aws.String("InsufficientInstanceCapacity"), ErrorMessage: aws.String("no capacity in us-east-1b"),
				LaunchTemplateAndOverrides: &types.LaunchTemplateAndOverridesResponse{Overrides: &types.FleetLaunchTemplateOverrides{InstanceType: "c6i.xlarge"}}},
		}}, nil
	})
	var l ledger.Ledger
	_, err := RunSpot(context.Background(), f, &RunSpotInput{RunInput: RunInput{ImageID: "ami-1", Wait: quickWait}, InstanceTypes: []string{"c5.xlarge", "c6i.xlarge"}}, fast, func(o *Options) { o.Ledger = &l })
	var fe *FleetLaunchError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FleetLaunchError", err)
	}
	if !fe.Capacity() || fe.FleetID != "fleet-1" || !slices.Equal(fe.InstanceTypes, []string{"c5.xlarge", "c6i.xlarge"}) {
		t.Errorf("fleet error %+v", fe)
	}
	for _, want := range []string{"c5.xlarge, c6i.xlarge", "c5.xlarge: InsufficientInstanceCapacity: no capacity in us-east-1a", "c6i.xlarge: InsufficientInstanceCapacity", "the default region"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if want := []string{"CreateLaunchTemplate ami-build-fleet-*", "CreateFleet instant", "DeleteLaunchTemplate lt-1"}; !slices.Equal(spotCalls(f), want) {
		t.Errorf("calls = %q, want %q", spotCalls(f), want)
	}
	if l.Len() != 0 {
		t.Errorf("ledger keeps %v", l.Resources())
	}
}

func TestRunSpotLostAnswers(t *testing.T) {
	lost := &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}
	withTok := func(i types.Instance, tok string) types.Instance {
		i.Tags = []types.Tag{{Key: aws.String(CreateTokenTag), Value: aws.String(tok)}}
		return i
	}
	tests := []struct {
		name    string
		setup   func(f *fakeEC2)
		calls   []string
		ledger  []string
		wantErr string
	}{
		{
			name: "fleet answer lost: the instance with the token is terminated, the template deleted",
			setup: func(f *fakeEC2) {
				f.createFleet = func(*ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error) { return nil, lost }
				f.describeInstances = sequence(states(withTok(inst("i-lost", "running", ""), "tok"), withTok(inst("i-other", "running", ""), "other")),
					states(inst("i-lost", "terminated", "")))
			},
			calls:   []string{"CreateLaunchTemplate lt", "CreateFleet instant", "DescribeFleets", "DescribeInstances", "TerminateInstances i-lost", "DescribeInstances i-lost", "DeleteLaunchTemplate lt-1"},
			wantErr: "create fleet: api error InternalError",
		},
		{
			name: "fleet answer lost: the fleet with the token is deleted with its instance",
			setup: func(f *fakeEC2) {
				f.createFleet = func(*ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error) { return nil, lost }
				tagged := []types.Tag{{Key: aws.String(CreateTokenTag), Value: aws.String("tok")}}
				f.describeFleets = func(*ec2.DescribeFleetsInput) (*ec2.DescribeFleetsOutput, error) {
					return &ec2.DescribeFleetsOutput{Fleets: []types.FleetData{
						{FleetId: aws.String("fleet-lost"), FleetState: types.FleetStateCodeActive, Tags: tagged},
						{FleetId: aws.String("fleet-done"), FleetState: types.FleetStateCodeDeleted, Tags: tagged},
						{FleetId: aws.String("fleet-other"), FleetState: types.FleetStateCodeActive},
					}}, nil
				}
				f.describeInstances = sequence(states())
			},
			calls:   []string{"CreateLaunchTemplate lt", "CreateFleet instant", "DescribeFleets", "DeleteFleets fleet-lost", "DescribeInstances", "DeleteLaunchTemplate lt-1"},
			wantErr: "create fleet: api error InternalError",
		},
		{
			name: "fleet answer lost, the lost fleet cannot be deleted: it stays in the ledger",
			setup: func(f *fakeEC2) {
				f.createFleet = func(*ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error) { return nil, lost }
				f.describeFleets = func(*ec2.DescribeFleetsInput) (*ec2.DescribeFleetsOutput, error) {
					return &ec2.DescribeFleetsOutput{Fleets: []types.FleetData{{FleetId: aws.String("fleet-lost"), FleetState: types.FleetStateCodeActive,
						Tags: []types.Tag{{Key: aws.String(CreateTokenTag), Value: aws.String("tok")}}}}}, nil
				}
				f.deleteFleets = func(*ec2.DeleteFleetsInput) (*ec2.DeleteFleetsOutput, error) {
					return nil, apiErr("UnauthorizedOperation")
				}
				f.describeInstances = sequence(states())
			},
			calls:   []string{"CreateLaunchTemplate lt", "CreateFleet instant", "DescribeFleets", "DeleteFleets fleet-lost", "DescribeInstances", "DeleteLaunchTemplate lt-1"},
			ledger:  []string{"fleet-lost"},
			wantErr: "fleet fleet-lost was created although the call failed, and could not be deleted",
		},
		{
			name: "template answer lost, the template found by its token is used",
			setup: func(f *fakeEC2) {
				f.createLT = func(*ec2.CreateLaunchTemplateInput) (*ec2.CreateLaunchTemplateOutput, error) { return nil, lost }
				f.describeLTs = func(*ec2.DescribeLaunchTemplatesInput) (*ec2.DescribeLaunchTemplatesOutput, error) {
					return &ec2.DescribeLaunchTemplatesOutput{LaunchTemplates: []types.LaunchTemplate{{LaunchTemplateId: aws.String("lt-9"), LaunchTemplateName: aws.String("lt"),
						Tags: []types.Tag{{Key: aws.String(CreateTokenTag), Value: aws.String("tok")}}}}}, nil
				}
			},
			calls:  []string{"CreateLaunchTemplate lt", "DescribeLaunchTemplates lt", "CreateFleet instant", "DescribeInstances i-1"},
			ledger: []string{"lt-9", "i-1", "fleet-1"},
		},
		{
			name: "template answer lost, a template of that name without the token is not ours",
			setup: func(f *fakeEC2) {
				f.createLT = func(*ec2.CreateLaunchTemplateInput) (*ec2.CreateLaunchTemplateOutput, error) {
					return nil, apiErr("InvalidLaunchTemplateName.AlreadyExistsException")
				}
				f.describeLTs = func(*ec2.DescribeLaunchTemplatesInput) (*ec2.DescribeLaunchTemplatesOutput, error) {
					return &ec2.DescribeLaunchTemplatesOutput{LaunchTemplates: []types.LaunchTemplate{{LaunchTemplateId: aws.String("lt-theirs"), LaunchTemplateName: aws.String("lt")}}}, nil
				}
			},
			calls:   []string{"CreateLaunchTemplate lt", "DescribeLaunchTemplates lt"},
			wantErr: "AlreadyExistsException",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := spotFake(nil)
			tc.setup(f)
			var l ledger.Ledger
			_, err := RunSpot(context.Background(), f, &RunSpotInput{RunInput: RunInput{ImageID: "ami-1", InstanceType: "t3.micro", ClientToken: "tok", Wait: quickWait}, LaunchTemplateName: "lt"},
				fast, func(o *Options) { o.Ledger = &l })
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if got := f.Calls(); !slices.Equal(got, tc.calls) {
				t.Errorf("calls = %q, want %q", got, tc.calls)
			}
			var ids []string
			for _, r := range l.Resources() {
				ids = append(ids, r.ID)
			}
			if !slices.Equal(ids, tc.ledger) {
				t.Errorf("ledger %q, want %q", ids, tc.ledger)
			}
		})
	}
}

func TestDeleteFleet(t *testing.T) {
	tests := []struct {
		name    string
		out     *ec2.DeleteFleetsOutput
		err     error
		wantErr string
	}{
		{name: "deleted", out: &ec2.DeleteFleetsOutput{SuccessfulFleetDeletions: []types.DeleteFleetSuccessItem{{FleetId: aws.String("fleet-1")}}}},
		{name: "not found", err: apiErr("InvalidFleetId.NotFound")},
		{name: "already gone", out: &ec2.DeleteFleetsOutput{UnsuccessfulFleetDeletions: []types.DeleteFleetErrorItem{{FleetId: aws.String("fleet-1"),
			Error: &types.DeleteFleetError{Code: types.DeleteFleetErrorCodeFleetIdDoesNotExist}}}}},
		{name: "refused", out: &ec2.DeleteFleetsOutput{UnsuccessfulFleetDeletions: []types.DeleteFleetErrorItem{{FleetId: aws.String("fleet-1"),
			Error: &types.DeleteFleetError{Code: types.DeleteFleetErrorCodeUnexpectedError, Message: aws.String("boom")}}}}, wantErr: "delete fleet fleet-1 in the default region: unexpectedError: boom"},
		{name: "denied", err: apiErr("UnauthorizedOperation"), wantErr: "delete fleet fleet-1 in the default region: api error UnauthorizedOperation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req *ec2.DeleteFleetsInput
			f := &fakeEC2{deleteFleets: func(in *ec2.DeleteFleetsInput) (*ec2.DeleteFleetsOutput, error) {
				req = in
				if tc.err != nil {
					return nil, tc.err
				}
				return tc.out, nil
			}}
			err := deleteFleet(context.Background(), f, "fleet-1")
			if !aws.ToBool(req.TerminateInstances) {
				t.Error("TerminateInstances is not set; EC2 requires it for instant fleets")
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
