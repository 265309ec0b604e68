package amibuild

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// StepRunInstance launches the build instance from the source AMI and waits
// until it is running. The instance is temporary: Cleanup always terminates
// it and waits for the termination, so that the temporary security group can
// be deleted after it.
//
// With spot_price set, the instance is a spot instance launched through a
// launch template and an instant EC2 Fleet (instance.RunSpot); Cleanup then
// deletes the fleet, terminates the instance and deletes the template.
//
// State used: StateSession, StateUI, StateSourceImage, StateBuildInfo,
// StateKeyPairName (optional), StateSecurityGroupIDs (optional),
// StateNetwork (optional; without it the configured subnet and zone),
// StateIAMInstanceProfile (optional).
// State produced: StateInstance, StateInstanceID ("instance_id"),
// StateReleaseInstance (on-demand instances).
type StepRunInstance struct {
	// Region is the build region.
	Region string
	// Config is the run configuration.
	Config *RunConfig
	// Wait bounds the waits for running and terminated.
	Wait instance.WaitOptions
	// Ctx renders run_tags and run_volume_tags with the build data.
	Ctx interpolate.Context
	// Encrypt, when set, launches the instance with every EBS volume
	// encrypted (encrypt_boot).
	Encrypt *LaunchEncryption
	// NoEphemeral leaves out the instance store volumes EC2 attaches by
	// default (no_ephemeral).
	NoEphemeral bool

	instanceID string
	created    ledger.Ledger
	// released is closed when a termination started through
	// StateReleaseInstance has ended, with releaseErr set.
	released   chan struct{}
	releaseErr error
}

// Run implements multistep.Step.
func (s *StepRunInstance) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	api, err := EC2Client(state, s.Region)
	if err != nil {
		return Halt(state, u, err)
	}
	src, ok := StateSourceImage.Get(state)
	if !ok {
		return Halt(state, u, fmt.Errorf("internal error: no source AMI in the build state"))
	}
	info, _ := StateBuildInfo.Get(state)
	if info == nil {
		info = amiconfig.NewBuildInfo(s.Region, src)
	}
	in, err := s.runInput(state, src, info)
	if err != nil {
		return Halt(state, u, err)
	}
	inst, err := s.launch(ctx, api, state, in, info)
	if err != nil {
		return Halt(state, u, err)
	}
	s.instanceID = aws.ToString(inst.InstanceId)
	StateInstance.Put(state, inst)
	StateInstanceID.Put(state, s.instanceID)
	if !s.Config.IsSpotInstance() {
		StateReleaseInstance.Put(state, s.releaseFunc(api, u))
	}

	addr := aws.ToString(inst.PublicIpAddress)
	if addr == "" {
		addr = aws.ToString(inst.PrivateIpAddress)
	}
	u.Sayf("Instance %s is running (address %s)", s.instanceID, addr)
	return multistep.ActionContinue
}

// runInput returns the launch request of the build instance: the run
// configuration with its tags rendered for the source AMI src, and what
// the earlier steps chose (key pair, security groups, network, instance
// profile).
func (s *StepRunInstance) runInput(state multistep.StateBag, src types.Image, info *amiconfig.BuildInfo) (*instance.RunInput, error) {
	cfg := s.Config
	runTags, err := amiconfig.RenderTags(s.Ctx, "run_tags", cfg.RunTags, info)
	if err != nil {
		return nil, err
	}
	volumeTags, err := amiconfig.RenderTags(s.Ctx, "run_volume_tags", cfg.RunVolumeTags, info)
	if err != nil {
		return nil, err
	}
	userData, err := cfg.ReadUserData()
	if err != nil {
		return nil, err
	}
	keyName, _ := StateKeyPairName.Get(state)
	groups, _ := StateSecurityGroupIDs.Get(state)
	subnet, zone := cfg.SubnetID, cfg.AvailabilityZone
	if network, ok := StateNetwork.Get(state); ok {
		subnet, zone = network.SubnetID, network.AvailabilityZone
	}
	profile, profileWait := cfg.IamInstanceProfile, time.Duration(0)
	if p, ok := StateIAMInstanceProfile.Get(state); ok && p != nil {
		profile, profileWait = p.Name, p.Wait
	}
	return &instance.RunInput{
		ImageID:             aws.ToString(src.ImageId),
		InstanceType:        cfg.InstanceType,
		SubnetID:            subnet,
		AvailabilityZone:    zone,
		KeyName:             keyName,
		IAMInstanceProfile:  profile,
		IAMProfileWait:      profileWait,
		UserData:            userData,
		SecurityGroupIDs:    groups,
		AssociatePublicIP:   cfg.AssociatePublicIPAddress.ToBoolPointer(),
		BlockDeviceMappings: LaunchMappings(src, cfg.LaunchMappings, s.Encrypt),
		MetadataOptions:     cfg.MetadataOptions.Request(),
		EBSOptimized:        cfg.EbsOptimized,
		Settings:            s.settings(),
		Tags:                runTags,
		VolumeTags:          volumeTags,
		Wait:                s.Wait,
	}, nil
}

// launch starts the build instance and waits until it is running: a spot
// instance through an EC2 Fleet with spot_price, else an on-demand one.
// What it creates is recorded in s.created, for Cleanup.
func (s *StepRunInstance) launch(ctx context.Context, api *ec2.Client, state multistep.StateBag, in *instance.RunInput, info *amiconfig.BuildInfo) (types.Instance, error) {
	if s.Config.IsSpotInstance() {
		inst, err := s.runSpot(ctx, api, state, in, info)
		if err != nil {
			return types.Instance{}, fmt.Errorf("launch spot build instance in %s: %w", s.Region, err)
		}
		return inst, nil
	}
	UI(state).Sayf("Launching a %s build instance from %s...", s.Config.InstanceType, in.ImageID)
	out, err := instance.Run(ctx, api, in, func(o *instance.Options) { o.Ledger = &s.created })
	if err != nil {
		return types.Instance{}, fmt.Errorf("launch build instance in %s: %w", s.Region, err)
	}
	return out.Instance, nil
}

// runSpot launches the build instance as a spot instance through an
// instant EC2 Fleet (spot_price), recording the launch template, the fleet
// and the instance in s.created.
func (s *StepRunInstance) runSpot(ctx context.Context, api *ec2.Client, state multistep.StateBag, in *instance.RunInput, info *amiconfig.BuildInfo) (types.Instance, error) {
	u := UI(state)
	cfg := s.Config
	spotTags, err := amiconfig.RenderTags(s.Ctx, "spot_tags", cfg.SpotTags, info)
	if err != nil {
		return types.Instance{}, err
	}
	fleetTags, err := amiconfig.RenderTags(s.Ctx, "fleet_tags", cfg.FleetTags, info)
	if err != nil {
		return types.Instance{}, err
	}
	spotIn := &instance.RunSpotInput{
		RunInput:           *in,
		InstanceTypes:      cfg.SpotInstanceTypes,
		MaxPrice:           cfg.SpotMaxPrice(),
		AllocationStrategy: cfg.SpotAllocationStrategy,
		SpotTags:           spotTags,
		FleetTags:          fleetTags,
	}
	if len(cfg.SpotInstanceTypes) > 0 {
		spotIn.InstanceType = ""
	}
	typeList := cfg.InstanceType
	if len(cfg.SpotInstanceTypes) > 0 {
		typeList = strings.Join(cfg.SpotInstanceTypes, ", ")
	}
	price := "at most the on-demand price"
	if p := cfg.SpotMaxPrice(); p != "" {
		price = "at most $" + p + " an hour"
	}
	u.Sayf("Launching a spot build instance (%s; %s) from %s through an EC2 Fleet...", typeList, price, in.ImageID)
	out, err := launchWhileProfileNotReady(ctx, u, in.IAMProfileWait, time.Second, func() (*instance.RunSpotOutput, error) {
		// Each attempt makes its own launch template and fleet, and
		// removes them again when nothing was launched.
		return instance.RunSpot(ctx, api, spotIn, func(o *instance.Options) { o.Ledger = &s.created })
	})
	if err != nil {
		return types.Instance{}, err
	}
	u.Sayf("Fleet %s launched spot instance %s (%s) from launch template %s", out.FleetID, aws.ToString(out.Instance.InstanceId), out.Instance.InstanceType, out.LaunchTemplateName)
	return out.Instance, nil
}

// Cleanup terminates the build instance, whatever the outcome of the run.
// A spot instance is removed with its fleet and launch template.
func (s *StepRunInstance) Cleanup(state multistep.StateBag) {
	if s.instanceID == "" && len(s.created.Resources()) == 0 {
		return
	}
	u := UI(state)
	api, err := EC2Client(state, s.Region)
	if err != nil {
		u.Error(fmt.Sprintf("Cannot terminate the build instance %s: %v", s.instanceID, err))
		return
	}
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	if s.Config.IsSpotInstance() {
		if s.instanceID != "" {
			u.Sayf("Terminating the spot build instance %s and removing its fleet and launch template...", s.instanceID)
		}
		if err := s.created.Undo(ctx); err != nil {
			u.Error(fmt.Sprintf("Error removing the spot build instance %s, its fleet or its launch template in %s; remove them by hand: %v", s.instanceID, s.Region, err))
			return
		}
		s.instanceID = ""
		return
	}
	if s.released != nil && s.instanceID != "" {
		<-s.released
		if s.releaseErr == nil {
			s.created.Forget(ledger.KindInstance, s.instanceID)
			s.instanceID = ""
		} else {
			u.Error(fmt.Sprintf("Terminating the build instance %s early failed; trying again: %v", s.instanceID, s.releaseErr))
		}
	}
	if s.instanceID != "" {
		u.Sayf("Terminating the build instance %s...", s.instanceID)
		if _, err := instance.Terminate(ctx, api, &instance.TerminateInput{InstanceIDs: []string{s.instanceID}, Wait: s.Wait}); err != nil {
			u.Error(fmt.Sprintf("Error terminating instance %s in %s; terminate it by hand: %v", s.instanceID, s.Region, err))
			return
		}
		s.created.Forget(ledger.KindInstance, s.instanceID)
		s.instanceID = ""
	}
	// Whatever the launch created before it failed.
	if err := s.created.Undo(ctx); err != nil {
		u.Error(fmt.Sprintf("Error removing what the failed launch created in %s: %v", s.Region, err))
	}
}

// releaseFunc returns the function put in StateReleaseInstance: its first
// call asks EC2 to terminate the instance and then waits for the
// termination in the background, with a context of its own (an interrupt
// does not stop it); Cleanup waits for that instead of terminating the
// instance itself, and tries again if it failed. Later calls do nothing.
// Steps run one after the other, so released is set before Cleanup reads
// it.
func (s *StepRunInstance) releaseFunc(api *ec2.Client, u packersdk.Ui) func() {
	return func() {
		if s.released != nil || s.instanceID == "" {
			return
		}
		id := s.instanceID
		s.released = make(chan struct{})
		u.Sayf("Terminating the build instance %s, which the build no longer needs...", id)
		ctx, cancel := amiconfig.CleanupContext()
		started, err := instance.Terminate(ctx, api, &instance.TerminateInput{InstanceIDs: []string{id}, NoWait: true})
		if err != nil {
			cancel()
			s.releaseErr = err
			close(s.released)
			return
		}
		go func() {
			defer close(s.released)
			defer cancel()
			_, s.releaseErr = instance.Wait(ctx, api, &instance.WaitInput{InstanceIDs: started.Terminating, State: types.InstanceStateNameTerminated, Wait: s.Wait})
		}()
	}
}

// settings returns the launch settings of the configuration.
func (s *StepRunInstance) settings() *instance.LaunchSettings {
	ls := s.Config.InstanceSettings.Launch()
	if s.NoEphemeral {
		if ls == nil {
			ls = &instance.LaunchSettings{}
		}
		ls.NoEphemeral = true
	}
	return ls
}

// launchWhileProfileNotReady runs launch again while the fleet refuses an
// instance profile EC2 does not know yet (a temporary profile just made),
// with doubling delays from delay, for up to wait; wait 0 tries once.
func launchWhileProfileNotReady(ctx context.Context, u packersdk.Ui, wait, delay time.Duration, launch func() (*instance.RunSpotOutput, error)) (*instance.RunSpotOutput, error) {
	deadline := time.Now().Add(wait)
	for {
		out, err := launch()
		var fe *instance.FleetLaunchError
		notReady := instance.ProfileNotReady(err) || (errors.As(err, &fe) && fe.ProfileNotReady())
		if err == nil || !notReady || time.Now().Add(delay).After(deadline) {
			return out, err
		}
		u.Sayf("EC2 does not know the instance profile yet; launching again in %s...", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 15*time.Second)
	}
}
