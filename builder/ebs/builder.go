// Package ebs is the ami-ebs builder: it launches an instance from a source
// AMI, provisions it over SSH or WinRM, stops it and creates an EBS-backed
// AMI from it.
package ebs

import (
	"context"
	"slices"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
)

// BuilderId is the ID of artifacts made by this builder.
const BuilderId = "amiforge.ami-ebs" // Packer's name

// Builder is the ami-ebs builder.
type Builder struct {
	config Config
}

var _ packersdk.Builder = (*Builder)(nil)

// ConfigSpec returns the HCL2 specification of the configuration.
func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

// Prepare validates the configuration and returns the names of the
// generated data the build exposes to provisioners and post-processors.
func (b *Builder) Prepare(raws ...any) ([]string, []string, error) {
	return amibuild.Prepared(b.config.Prepare(raws...))
}

// Run builds the AMI.
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	c := &b.config
	region := c.Region()
	build := amibuild.Build{
		BuilderID: BuilderId, AppID: amiconfig.AppIDEBS, Access: &c.AccessConfig,
		UI: ui, Hook: hook, Comm: &c.Comm, Packer: c.PackerConfig,
	}
	_, art, err := build.Run(ctx, func(gd *packerbuilderdata.GeneratedData) []multistep.Step { return b.steps(region, gd) })
	if err != nil || art == nil {
		return nil, err
	}
	art.KeepSnapshotIDs = b.givenSnapshotIDs()
	return art, nil
}

// givenSnapshotIDs returns the snapshots the launch and AMI block device
// mappings are given: the user's, so no rollback, force_delete_snapshot or
// Destroy deletes them.
func (b *Builder) givenSnapshotIDs() []string {
	ids := b.config.LaunchMappings.SnapshotIDs()
	for _, id := range b.config.AMIMappings.SnapshotIDs() {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// steps returns the build's steps in order: the checks, the launch and
// provisioning of the instance, then, unless skip_create_ami, the steps
// that make the AMI.
func (b *Builder) steps(region string, generatedData *packerbuilderdata.GeneratedData) []multistep.Step {
	steps := slices.Concat(b.preflightSteps(region, generatedData), b.instanceSteps(region))
	if b.config.SkipCreateAMI {
		return steps
	}
	return append(steps, b.imageSteps(region)...)
}

// preflightSteps returns the steps that check the credentials, region and
// AMI name (when an AMI is to be made) and find the source AMI, before any
// instance is launched.
func (b *Builder) preflightSteps(region string, generatedData *packerbuilderdata.GeneratedData) []multistep.Step {
	c := &b.config
	steps := []multistep.Step{
		&amibuild.StepCheckRegion{
			Region:                   region,
			SkipCredentialValidation: c.SkipCredentialValidation,
			CopyRegions:              c.AMIRegions,
			SkipRegionValidation:     c.AMISkipRegionValidation,
		},
	}
	if !c.SkipCreateAMI {
		steps = append(steps, &amibuild.StepCheckAMIName{
			Region:          region,
			AMIName:         c.AMIName,
			ForceDeregister: c.AMIForceDeregister,
			CopyRegions:     c.AMIRegions,
			SkipBuildRegion: c.AMISkipBuildRegion,
		})
	}
	return append(steps, &amibuild.StepFindSourceAMI{
		Region:         region,
		SourceAMI:      c.SourceAMI,
		Filter:         c.SourceAMIFilter,
		RootDeviceType: "ebs",
		GeneratedData:  generatedData,
	})
}

// instanceSteps returns the steps that launch and provision the build
// instance, its volumes encrypted when encrypt_boot is set, and then stop
// it, unless it is a spot instance, which EC2 cannot stop.
func (b *Builder) instanceSteps(region string) []multistep.Step {
	c := &b.config
	wait := c.Polling.InstanceWait()
	var encrypt *amibuild.LaunchEncryption
	if c.AMIEncryptBootVolume.True() {
		encrypt = &amibuild.LaunchEncryption{KMSKeyID: c.BuildKMSKeyID(region)}
	}
	steps := c.LaunchSteps(amibuild.LaunchInput{
		Region:       region,
		Debug:        c.PackerDebug,
		DebugKeyPath: amibuild.DebugKeyPath(c.PackerBuildName),
		Wait:         wait,
		Ctx:          c.ctx,
		Encrypt:      encrypt,
		NoEphemeral:  c.NoEphemeral,
	})
	if c.IsSpotInstance() {
		// EC2 cannot stop the one-time spot instance of an instant fleet;
		// CreateImage reboots it instead.
		return steps
	}
	return append(steps, &amibuild.StepStopInstance{
		Region:      region,
		Wait:        wait,
		DisableStop: c.DisableStopInstance,
	})
}

// imageSteps returns the steps that make the AMI of the build instance:
// its network settings, force_deregister, CreateImage, the image's
// attributes and tags, and the copies and sharing of the AMI
// configuration.
func (b *Builder) imageSteps(region string) []multistep.Step {
	c := &b.config
	amiConfig := c.AMIConfig
	if c.AMISkipBuildRegion {
		// The AMI in the build region is temporary; only its copies get
		// ami_name.
		amiConfig.AMIName = amibuild.TemporaryAMIName(c.AMIName)
	}
	return []multistep.Step{
		&amibuild.StepModifyInstance{
			Region:          region,
			ENASupport:      c.AMIENASupport,
			SriovNetSupport: c.AMISriovNetSupport,
		},
		&amibuild.StepDeregisterExisting{
			Region:          region,
			AMIName:         c.AMIName,
			Force:           c.AMIForceDeregister,
			DeleteSnapshots: c.AMIForceDeleteSnapshot,
			KeepSnapshotIDs: b.givenSnapshotIDs(),
			CopyRegions:     c.AMIRegions,
			SkipBuildRegion: c.AMISkipBuildRegion,
		},
		&stepCreateImage{
			Region:          region,
			Config:          &amiConfig,
			Wait:            c.Polling.ImageWait(),
			Ctx:             c.ctx,
			KeepSnapshotIDs: b.givenSnapshotIDs(),
		},
		&stepModifyImage{
			Region:       region,
			IMDSSupport:  c.AMIIMDSSupport,
			ProductCodes: c.AMIProductCodes,
		},
		&amibuild.StepTagImage{
			Tags:         c.AMITags,
			SnapshotTags: c.SnapshotTags,
			Ctx:          c.ctx,
		},
		&amibuild.StepDistribute{
			Region:          region,
			Config:          &c.AMIConfig,
			Description:     c.AMIDescription,
			Wait:            c.Polling.ImageWait(),
			Ctx:             c.ctx,
			KeepSnapshotIDs: b.givenSnapshotIDs(),
		},
	}
}
