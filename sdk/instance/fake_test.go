//go:build unix

package instance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// fakeEC2 implements this package's interfaces with function fields and
// logs every call as "Operation arg,arg" so tests can assert sequences.
// A nil function field answers with an empty success.
type fakeEC2 struct {
	createKeyPair      func(*ec2.CreateKeyPairInput) (*ec2.CreateKeyPairOutput, error)
	deleteKeyPair      func(*ec2.DeleteKeyPairInput) (*ec2.DeleteKeyPairOutput, error)
	describeKeyPairs   func(*ec2.DescribeKeyPairsInput) (*ec2.DescribeKeyPairsOutput, error)
	describeSGs        func(*ec2.DescribeSecurityGroupsInput) (*ec2.DescribeSecurityGroupsOutput, error)
	createSG           func(*ec2.CreateSecurityGroupInput) (*ec2.CreateSecurityGroupOutput, error)
	authorize          func(*ec2.AuthorizeSecurityGroupIngressInput) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	deleteSG           func(*ec2.DeleteSecurityGroupInput) (*ec2.DeleteSecurityGroupOutput, error)
	runInstances       func(*ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error)
	describeInstances  func(*ec2.DescribeInstancesInput) (*ec2.DescribeInstancesOutput, error)
	stopInstances      func(*ec2.StopInstancesInput) (*ec2.StopInstancesOutput, error)
	terminateInstances func(*ec2.TerminateInstancesInput) (*ec2.TerminateInstancesOutput, error)
	describeSubnets    func(*ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error)
	describeVpcs       func(*ec2.DescribeVpcsInput) (*ec2.DescribeVpcsOutput, error)
	describeOfferings  func(*ec2.DescribeInstanceTypeOfferingsInput) (*ec2.DescribeInstanceTypeOfferingsOutput, error)
	modifyInstanceAttr func(*ec2.ModifyInstanceAttributeInput) (*ec2.ModifyInstanceAttributeOutput, error)
	getPasswordData    func(*ec2.GetPasswordDataInput) (*ec2.GetPasswordDataOutput, error)
	createLT           func(*ec2.CreateLaunchTemplateInput) (*ec2.CreateLaunchTemplateOutput, error)
	deleteLT           func(*ec2.DeleteLaunchTemplateInput) (*ec2.DeleteLaunchTemplateOutput, error)
	describeLTs        func(*ec2.DescribeLaunchTemplatesInput) (*ec2.DescribeLaunchTemplatesOutput, error)
	createFleet        func(*ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error)
	deleteFleets       func(*ec2.DeleteFleetsInput) (*ec2.DeleteFleetsOutput, error)
	describeFleets     func(*ec2.DescribeFleetsInput) (*ec2.DescribeFleetsOutput, error)
	createTags         func(*ec2.CreateTagsInput) (*ec2.CreateTagsOutput, error)

	mu    sync.Mutex
	calls []string
}

var _ interface {
	KeyPairAPI
	SecurityGroupAPI
	RunAPI
	StopAPI
	TerminateAPI
	DescribeSubnetsAPI
	ModifyAttributeAPI
	NetworkAPI
	DescribeSecurityGroupsAPI
	PasswordDataAPI
	SpotAPI
	LaunchTemplateAPI
	FleetAPI
	DescribeInstancesAPI
} = (*fakeEC2)(nil)

func (f *fakeEC2) log(op string, args ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	args = slices.DeleteFunc(args, func(s string) bool { return s == "" })
	f.calls = append(f.calls, strings.TrimSpace(op+" "+strings.Join(args, ",")))
}

func (f *fakeEC2) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func call[I, O any](fn func(*I) (*O, error), in *I) (*O, error) {
	if fn == nil {
		return new(O), nil
	}
	return fn(in)
}

func (f *fakeEC2) CreateKeyPair(_ context.Context, in *ec2.CreateKeyPairInput, _ ...func(*ec2.Options)) (*ec2.CreateKeyPairOutput, error) {
	f.log("CreateKeyPair", aws.ToString(in.KeyName), string(in.KeyType))
	return call(f.createKeyPair, in)
}

func (f *fakeEC2) DeleteKeyPair(_ context.Context, in *ec2.DeleteKeyPairInput, _ ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error) {
	f.log("DeleteKeyPair", aws.ToString(in.KeyName))
	return call(f.deleteKeyPair, in)
}

func (f *fakeEC2) DescribeKeyPairs(_ context.Context, in *ec2.DescribeKeyPairsInput, _ ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	f.log("DescribeKeyPairs", in.KeyNames...)
	return call(f.describeKeyPairs, in)
}

func (f *fakeEC2) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	f.log("DescribeSecurityGroups", filterArgs(in.Filters)...)
	return call(f.describeSGs, in)
}

func (f *fakeEC2) CreateSecurityGroup(_ context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	f.log("CreateSecurityGroup", aws.ToString(in.GroupName), aws.ToString(in.VpcId))
	return call(f.createSG, in)
}

func (f *fakeEC2) AuthorizeSecurityGroupIngress(_ context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	args := []string{aws.ToString(in.GroupId)}
	for _, p := range in.IpPermissions {
		args = append(args, fmt.Sprintf("%s/%d-%d", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)))
		for _, r := range p.IpRanges {
			args = append(args, aws.ToString(r.CidrIp))
		}
		for _, r := range p.Ipv6Ranges {
			args = append(args, aws.ToString(r.CidrIpv6))
		}
	}
	f.log("AuthorizeSecurityGroupIngress", args...)
	return call(f.authorize, in)
}

func (f *fakeEC2) DeleteSecurityGroup(_ context.Context, in *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	f.log("DeleteSecurityGroup", aws.ToString(in.GroupId))
	return call(f.deleteSG, in)
}

func (f *fakeEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.log("RunInstances", aws.ToString(in.ImageId), string(in.InstanceType))
	return call(f.runInstances, in)
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.log("DescribeInstances", in.InstanceIds...)
	return call(f.describeInstances, in)
}

func (f *fakeEC2) StopInstances(_ context.Context, in *ec2.StopInstancesInput, _ ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	f.log("StopInstances", in.InstanceIds...)
	return call(f.stopInstances, in)
}

func (f *fakeEC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	f.log("TerminateInstances", in.InstanceIds...)
	return call(f.terminateInstances, in)
}

func (f *fakeEC2) DescribeSubnets(_ context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	f.log("DescribeSubnets", append(slices.Clone(in.SubnetIds), filterArgs(in.Filters)...)...)
	return call(f.describeSubnets, in)
}

func (f *fakeEC2) DescribeVpcs(_ context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	f.log("DescribeVpcs", append(slices.Clone(in.VpcIds), filterArgs(in.Filters)...)...)
	return call(f.describeVpcs, in)
}

func (f *fakeEC2) DescribeInstanceTypeOfferings(_ context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	f.log("DescribeInstanceTypeOfferings", append([]string{string(in.LocationType)}, filterArgs(in.Filters)...)...)
	return call(f.describeOfferings, in)
}

// filterArgs renders filters as "name=value|value" for the call log.
func filterArgs(filters []types.Filter) []string {
	var args []string
	for _, fl := range filters {
		args = append(args, aws.ToString(fl.Name)+"="+strings.Join(fl.Values, "|"))
	}
	return args
}

func (f *fakeEC2) ModifyInstanceAttribute(_ context.Context, in *ec2.ModifyInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error) {
	var ena string
	if in.EnaSupport != nil {
		ena = fmt.Sprintf("EnaSupport=%t", aws.ToBool(in.EnaSupport.Value))
	}
	f.log("ModifyInstanceAttribute", aws.ToString(in.InstanceId), ena)
	return call(f.modifyInstanceAttr, in)
}

func (f *fakeEC2) GetPasswordData(_ context.Context, in *ec2.GetPasswordDataInput, _ ...func(*ec2.Options)) (*ec2.GetPasswordDataOutput, error) {
	f.log("GetPasswordData", aws.ToString(in.InstanceId))
	return call(f.getPasswordData, in)
}

func (f *fakeEC2) CreateLaunchTemplate(_ context.Context, in *ec2.CreateLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error) {
	f.log("CreateLaunchTemplate", aws.ToString(in.LaunchTemplateName))
	return call(f.createLT, in)
}

func (f *fakeEC2) DeleteLaunchTemplate(_ context.Context, in *ec2.DeleteLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateOutput, error) {
	f.log("DeleteLaunchTemplate", aws.ToString(in.LaunchTemplateId))
	return call(f.deleteLT, in)
}

func (f *fakeEC2) DescribeLaunchTemplates(_ context.Context, in *ec2.DescribeLaunchTemplatesInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error) {
	f.log("DescribeLaunchTemplates", in.LaunchTemplateNames...)
	return call(f.describeLTs, in)
}

func (f *fakeEC2) CreateFleet(_ context.Context, in *ec2.CreateFleetInput, _ ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error) {
	f.log("CreateFleet", string(in.Type))
	return call(f.createFleet, in)
}

func (f *fakeEC2) DescribeFleets(_ context.Context, in *ec2.DescribeFleetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeFleetsOutput, error) {
	f.log("DescribeFleets", in.FleetIds...)
	return call(f.describeFleets, in)
}

func (f *fakeEC2) DeleteFleets(_ context.Context, in *ec2.DeleteFleetsInput, _ ...func(*ec2.Options)) (*ec2.DeleteFleetsOutput, error) {
	f.log("DeleteFleets", in.FleetIds...)
	return call(f.deleteFleets, in)
}

func (f *fakeEC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	f.log("CreateTags", in.Resources...)
	return call(f.createTags, in)
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " (fake)", Fault: smithy.FaultClient}
}

// inst builds an instance in a state; reason goes to StateReason.Message.
func inst(id string, state types.InstanceStateName, reason string) types.Instance {
	i := types.Instance{InstanceId: aws.String(id), State: &types.InstanceState{Name: state}}
	if reason != "" {
		i.StateReason = &types.StateReason{Message: aws.String(reason)}
	}
	return i
}

type describeResult func() (*ec2.DescribeInstancesOutput, error)

func states(is ...types.Instance) describeResult {
	return func() (*ec2.DescribeInstancesOutput, error) {
		return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: is}}}, nil
	}
}

func fails(err error) describeResult {
	return func() (*ec2.DescribeInstancesOutput, error) { return nil, err }
}

// sequence answers from a list of results, repeating the last one.
func sequence(results ...describeResult) func(*ec2.DescribeInstancesInput) (*ec2.DescribeInstancesOutput, error) {
	var mu sync.Mutex
	i := 0
	return func(*ec2.DescribeInstancesInput) (*ec2.DescribeInstancesOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		r := results[min(i, len(results)-1)]
		i++
		return r()
	}
}

// errorsInOrder returns successive errors, then nil.
func errorsInOrder[I, O any](errs ...error) func(*I) (*O, error) {
	var mu sync.Mutex
	return func(*I) (*O, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) == 0 {
			return new(O), nil
		}
		err := errs[0]
		errs = errs[1:]
		return new(O), err
	}
}

func fast(o *Options) {
	o.RetryDelay = time.Millisecond
	o.RetryMaxDelay = 2 * time.Millisecond
	o.UndoWait = time.Second
}

var quickWait = WaitOptions{MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxWait: 300 * time.Millisecond}
