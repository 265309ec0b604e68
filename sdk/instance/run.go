package instance

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/ec2tag"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/lost"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"
)

// RunAPI is the client behaviour Run needs (TerminateInstances for the
// undo recorded in Options.Ledger).
type RunAPI interface {
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

// StopAPI is the client behaviour Stop needs.
type StopAPI interface {
	StopInstances(ctx context.Context, in *ec2.StopInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// TerminateAPI is the client behaviour Terminate needs.
type TerminateAPI interface {
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// DescribeInstancesAPI is the client behaviour Wait needs.
type DescribeInstancesAPI interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var (
	_ RunAPI               = (*ec2.Client)(nil)
	_ StopAPI              = (*ec2.Client)(nil)
	_ TerminateAPI         = (*ec2.Client)(nil)
	_ DescribeInstancesAPI = (*ec2.Client)(nil)

	_ ec2.DescribeInstancesAPIClient = DescribeInstancesAPI(nil)
)

// RunInput describes the instance to launch.
type RunInput struct {
	// ImageID is the source AMI. Required.
	ImageID string
	// InstanceType such as "t3.micro". Required.
	InstanceType string
	// SubnetID places the instance in a subnet (and so a VPC). Empty means
	// the default subnet of the default VPC.
	SubnetID string
	// KeyName is the key pair to install. Empty means none.
	KeyName string
	// IAMInstanceProfile is an instance profile name or ARN.
	IAMInstanceProfile string
	// IAMProfileWait, when positive, retries the launch for up to this long
	// while EC2 refuses IAMInstanceProfile as unknown (InvalidParameterValue
	// naming the instance profile), as it does for some seconds after the
	// profile was created: IAM is eventually consistent. The delays between
	// attempts follow Options.RetryDelay and RetryMaxDelay. Zero means no
	// retry.
	IAMProfileWait time.Duration
	// UserData is the raw user data; Run encodes it. It is never logged.
	UserData string
	// AvailabilityZone pins the instance to a zone.
	AvailabilityZone string
	// SecurityGroupIDs are the groups of the instance. Empty means the
	// VPC's default group.
	SecurityGroupIDs []string
	// AssociatePublicIP, when set, asks for (or refuses) a public IPv4
	// address; nil means the subnet's default.
	AssociatePublicIP *bool
	// BlockDeviceMappings override the AMI's volumes.
	BlockDeviceMappings []types.BlockDeviceMapping
	// MetadataOptions set IMDS options such as HttpTokens "required".
	MetadataOptions *types.InstanceMetadataOptionsRequest
	// EBSOptimized launches the instance EBS-optimized (dedicated
	// bandwidth to its volumes; the default on current instance types).
	EBSOptimized bool
	// Settings are the less common launch settings; nil is none.
	Settings *LaunchSettings
	// Tags go on the instance, VolumeTags on its volumes.
	Tags, VolumeTags map[string]string
	// ClientToken makes the launch idempotent. Empty means a random token,
	// which the SDK reuses when it retries the call. Reuse the returned
	// token to retry Run itself.
	ClientToken string
	// Wait bounds the wait until the instance is running.
	Wait WaitOptions
}

// RunOutput is the result of Run.
type RunOutput struct {
	// Instance is the instance as described once it is running.
	Instance types.Instance
	// ClientToken is the idempotency token used.
	ClientToken string
}

// Run launches one instance and waits until it is running. With
// Options.Ledger set, the instance is recorded as soon as AWS returns its
// ID, with an undo that terminates it and waits until it is terminated. If
// the instance does not reach running, the error is a *StateError naming it.
//
// The launch carries a client token, which the SDK reuses when it retries,
// so a retry after a lost answer returns the first launch's instance. When
// the call still fails (every answer lost, or ctx cancelled while the
// request was in flight), the launch may have taken effect: instances from
// ImageID with the token are then terminated before Run returns (recorded
// in Options.Ledger if that fails). Services that ignore client tokens
// launch one instance per attempt; after a call that succeeded on a retry,
// the other instances with the token are terminated too.
func Run(ctx context.Context, api RunAPI, in *RunInput, optFns ...func(*Options)) (*RunOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	if in.ImageID == "" || in.InstanceType == "" {
		return nil, fmt.Errorf("run instance in %s: image ID and instance type are required", region)
	}
	token := in.ClientToken
	if token == "" {
		token = randomSuffix(16)
	}
	what := fmt.Sprintf("%s instance from %s in %s", in.InstanceType, in.ImageID, region)
	o.logf("launching a %s", what)
	id, err := o.launch(ctx, api, in, runRequest(in, token), what)
	if err != nil {
		return nil, err
	}
	o.recordInstance(api, id, region, in.Wait)
	o.logf("waiting for instance %s in %s to be running", id, region)
	described, err := waitState(ctx, api, []string{id}, types.InstanceStateNameRunning, in.Wait)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", what, err)
	}
	return &RunOutput{Instance: described[0], ClientToken: token}, nil
}

// launch sends req, retrying while EC2 does not know the instance profile
// yet (in.IAMProfileWait), and returns the ID of the instance it launched.
// When the call fails, the instances it may have launched anyway are
// terminated; when it succeeded after retries, so are the others launched
// with its token. Errors name what, the instance being launched.
func (o Options) launch(ctx context.Context, api RunAPI, in *RunInput, req *ec2.RunInstancesInput, what string) (string, error) {
	out, err := api.RunInstances(ctx, req)
	if err != nil && in.IAMProfileWait > 0 && ProfileNotReady(err) {
		out, err = o.retryProfileNotReady(ctx, api, req, in.IAMProfileWait, err)
	}
	token := aws.ToString(req.ClientToken)
	if err != nil {
		err = fmt.Errorf("run %s: %w", what, err)
		if rerr := o.terminateLost(ctx, api, lostRunInstances(in.ImageID, token, ""), in.Wait); rerr != nil {
			return "", errors.Join(err, rerr)
		}
		return "", err
	}
	if len(out.Instances) == 0 {
		return "", fmt.Errorf("run %s: no instance in the answer", what)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	if lost.Retried(out.ResultMetadata) {
		if rerr := o.terminateLost(ctx, api, lostRunInstances(in.ImageID, token, id), in.Wait); rerr != nil {
			o.logf("%v", rerr)
		}
	}
	return id, nil
}

// runRequest is the RunInstances request that launches one instance as in
// says, with the client token.
func runRequest(in *RunInput, token string) *ec2.RunInstancesInput {
	req := launchRequest(in)
	req.MinCount, req.MaxCount = aws.Int32(1), aws.Int32(1)
	req.ClientToken = aws.String(token)
	req.TagSpecifications = append(ec2tag.Spec(types.ResourceTypeInstance, in.Tags),
		ec2tag.Spec(types.ResourceTypeVolume, in.VolumeTags)...)
	if in.AssociatePublicIP != nil {
		// A public IP choice needs an explicit network interface, which then
		// carries the subnet and the groups.
		ni := types.InstanceNetworkInterfaceSpecification{
			DeviceIndex:              aws.Int32(0),
			AssociatePublicIpAddress: in.AssociatePublicIP,
			DeleteOnTermination:      aws.Bool(true),
			Groups:                   in.SecurityGroupIDs,
		}
		if in.SubnetID != "" {
			ni.SubnetId = aws.String(in.SubnetID)
		}
		req.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{ni}
	} else {
		req.SecurityGroupIds = in.SecurityGroupIDs
		if in.SubnetID != "" {
			req.SubnetId = aws.String(in.SubnetID)
		}
	}
	return req
}

// launchRequest is the part of the RunInstances request for in that a
// launch template holds alike (see templateData): the image, the instance
// type and settings, without the count, token, tags and network, which Run
// and RunSpot each set their own way.
func launchRequest(in *RunInput) *ec2.RunInstancesInput {
	req := &ec2.RunInstancesInput{
		ImageId:      aws.String(in.ImageID),
		InstanceType: types.InstanceType(in.InstanceType),
		// Clipped, so that the settings' mappings are appended to a copy.
		BlockDeviceMappings: slices.Clip(in.BlockDeviceMappings),
		MetadataOptions:     in.MetadataOptions,
	}
	if in.KeyName != "" {
		req.KeyName = aws.String(in.KeyName)
	}
	if in.UserData != "" {
		req.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(in.UserData)))
	}
	if p := in.IAMInstanceProfile; p != "" {
		if strings.HasPrefix(p, "arn:") {
			req.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String(p)}
		} else {
			req.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(p)}
		}
	}
	if in.AvailabilityZone != "" {
		req.Placement = &types.Placement{AvailabilityZone: aws.String(in.AvailabilityZone)}
	}
	if in.EBSOptimized {
		req.EbsOptimized = aws.Bool(true)
	}
	in.Settings.apply(req)
	return req
}

// stop stops an instance and waits until it is stopped. On failure or
// timeout the error is a *StateError.
func stop(ctx context.Context, api StopAPI, instanceID string, w WaitOptions, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	o.logf("stopping instance %s in %s", instanceID, region)
	if _, err := api.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{instanceID}}); err != nil {
		return fmt.Errorf("stop instance %s in %s: %w", instanceID, region, err)
	}
	if _, err := waitState(ctx, api, []string{instanceID}, types.InstanceStateNameStopped, w); err != nil {
		return fmt.Errorf("stop instance %s in %s: %w", instanceID, region, err)
	}
	return nil
}

// terminate terminates instances and waits until they are terminated.
// Instances that do not exist (any more) count as terminated. On timeout
// the error is a *StateError.
func terminate(ctx context.Context, api TerminateAPI, instanceIDs []string, w WaitOptions, optFns ...func(*Options)) error {
	remaining, err := startTerminate(ctx, api, instanceIDs, optFns...)
	if err != nil {
		return err
	}
	return waitTerminated(ctx, api, remaining, w)
}

// startTerminate asks EC2 to terminate instances without waiting for them,
// and returns those still to wait for with WaitTerminated: the instances
// that exist.
func startTerminate(ctx context.Context, api TerminateAPI, instanceIDs []string, optFns ...func(*Options)) ([]string, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	if len(instanceIDs) == 0 {
		return nil, nil
	}
	ids := strings.Join(instanceIDs, ",")
	o.logf("terminating instance %s in %s", ids, region)
	_, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: instanceIDs})
	if err == nil {
		return instanceIDs, nil
	}
	if awserr.Code(err) != codeInstanceNotFound {
		return nil, fmt.Errorf("terminate instance %s in %s: %w", ids, region, err)
	}
	// One unknown ID fails the whole call: go one by one.
	var remaining []string
	for _, id := range instanceIDs {
		_, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		switch {
		case awserr.Code(err) == codeInstanceNotFound:
			o.logf("instance %s in %s is already gone", id, region)
		case err != nil:
			return nil, fmt.Errorf("terminate instance %s in %s: %w", id, region, err)
		default:
			remaining = append(remaining, id)
		}
	}
	return remaining, nil
}

// waitTerminated waits until instances are terminated; instances that do
// not exist count as terminated. On failure or timeout the error is a
// *StateError.
func waitTerminated(ctx context.Context, api DescribeInstancesAPI, instanceIDs []string, w WaitOptions) error {
	if len(instanceIDs) == 0 {
		return nil
	}
	if _, err := waitState(ctx, api, instanceIDs, types.InstanceStateNameTerminated, w); err != nil {
		return fmt.Errorf("terminate instance %s in %s: %w", strings.Join(instanceIDs, ","), awserr.Region(api, ""), err)
	}
	return nil
}

// lostRunInstances selects the instances from imageID launched with the
// client token, except keep: what a RunInstances call whose answer was lost
// made.
func lostRunInstances(imageID, token, keep string) lostLaunch {
	return lostLaunch{
		filters: []types.Filter{{Name: aws.String("image-id"), Values: []string{imageID}}, liveStates()},
		ours: func(i types.Instance) bool {
			return aws.ToString(i.ClientToken) == token && aws.ToString(i.InstanceId) != keep
		},
		what:   "instances launched with client token " + token,
		origin: "the failed call may have made",
		by:     "a call",
	}
}

// ProfileNotReady reports whether err is EC2 refusing an instance profile
// it does not know (yet): InvalidParameterValue with a message naming the
// IAM instance profile, such as "Value (packer-…) for parameter
// iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name".
func ProfileNotReady(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != codeInvalidParameterValue {
		return false
	}
	msg := strings.ToLower(ae.ErrorMessage())
	return strings.Contains(msg, "iaminstanceprofile") || strings.Contains(msg, "iam instance profile")
}

// retryProfileNotReady repeats the launch request (same client token) while
// EC2 answers ProfileNotReady, with growing delays, for up to maxWait. It
// returns the last answer; err is the first refusal.
func (o Options) retryProfileNotReady(ctx context.Context, api RunAPI, req *ec2.RunInstancesInput, maxWait time.Duration, err error) (*ec2.RunInstancesOutput, error) {
	deadline := time.Now().Add(maxWait)
	delay := o.RetryDelay
	for attempt := 2; ; attempt++ {
		if time.Now().Add(delay).After(deadline) {
			return nil, fmt.Errorf("EC2 still refused the instance profile after %s: %w", maxWait, err)
		}
		o.logf("EC2 does not know the instance profile yet; launching again in %s", delay)
		if serr := poll.Sleep(ctx, delay); serr != nil {
			return nil, errors.Join(err, serr)
		}
		delay = min(2*delay, o.RetryMaxDelay)
		out, rerr := api.RunInstances(ctx, req)
		if rerr == nil || !ProfileNotReady(rerr) {
			if rerr == nil {
				o.logf("launch attempt %d was accepted", attempt)
			}
			return out, rerr
		}
		err = rerr
	}
}
