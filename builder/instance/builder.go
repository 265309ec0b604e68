// Package instance is the ami-instance builder: it launches an instance from
// a source AMI, provisions it over SSH, takes an image of its root file
// system (or of a given device or image file) with a small POSIX sh script,
// streams it to the machine running Packer, bundles it there in the AMI
// bundle format while uploading the parts to S3, and registers an
// instance-store AMI from the bundle's manifest.
//
// Credentials and X.509 keys never reach the build instance: it only runs
// the bundle script, which holds nothing secret. A build that fails or is
// cancelled after the upload deletes the uploaded objects and deregisters
// the AMI it registered.
package instance

import (
	"context"
	"errors"
	"slices"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// BuilderId is the ID of artifacts made by this builder.
const BuilderId = "amiforge.ami-instance" // Packer's name

// Builder is the ami-instance builder.
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
		BuilderID: BuilderId, AppID: amiconfig.AppIDInstance, Access: &c.AccessConfig,
		UI: ui, Hook: hook, Comm: &c.Comm, Packer: c.PackerConfig,
	}
	state, base, err := build.Run(ctx, func(gd *packerbuilderdata.GeneratedData) []multistep.Step { return b.steps(region, gd) })
	if err != nil || base == nil {
		return nil, err
	}
	bun, ok := stateBundle.Get(state)
	if !ok || bun == nil {
		return nil, errors.New("internal error: AMI registered without a bundle in the build state")
	}
	sess, err := amibuild.Session(state)
	if err != nil {
		return nil, err
	}
	loc, _ := stateImageLocation.Get(state)
	base.StateData["image_location"] = loc
	base.StateData["s3_bucket"] = bun.Location.Bucket
	base.StateData["s3_prefix"] = bun.Location.Prefix
	base.StateData["manifest_key"] = bun.Location.ManifestKey()
	return &Artifact{
		Artifact:    base,
		BuildRegion: region,
		Bundle:      bun.Location,
		EC2:         func(r string) bundlestore.DeregisterAPI { return sess.EC2(r) },
		S3:          func(r string) bundlestore.DeleteAPI { return sess.S3(r) },
	}, nil
}

// steps returns the build's steps in order. Everything that can be checked
// without an instance (credentials, region, bucket, AMI name, bundle
// location, source AMI, certificates) is checked before the instance is
// launched.
func (b *Builder) steps(region string, generatedData *packerbuilderdata.GeneratedData) []multistep.Step {
	c := &b.config
	return slices.Concat(
		b.preflightSteps(region, generatedData),
		c.LaunchSteps(amibuild.LaunchInput{
			Region:       region,
			Debug:        c.PackerDebug,
			DebugKeyPath: amibuild.DebugKeyPath(c.PackerBuildName),
			Wait:         c.Polling.InstanceWait(),
			Ctx:          c.ctx,
		}),
		b.bundleSteps(region),
		b.registerSteps(region),
	)
}

// preflightSteps returns the steps that check the credentials, region,
// bucket, AMI name and bundle location, find the source AMI and prepare
// the certificates, so that a build bound to fail does so before it
// launches an instance.
func (b *Builder) preflightSteps(region string, generatedData *packerbuilderdata.GeneratedData) []multistep.Step {
	c := &b.config
	return []multistep.Step{
		&amibuild.StepCheckRegion{
			Region:                   region,
			SkipCredentialValidation: c.SkipCredentialValidation,
			CopyRegions:              c.AMIRegions,
			SkipRegionValidation:     c.AMISkipRegionValidation,
		},
		&stepCheckBucket{
			Region: region,
			Bucket: c.S3Bucket,
		},
		&amibuild.StepCheckAMIName{
			Region:          region,
			AMIName:         c.AMIName,
			ForceDeregister: c.AMIForceDeregister,
			CopyRegions:     c.AMIRegions,
		},
		&stepCheckBundleLocation{
			Region:  region,
			Bucket:  c.S3Bucket,
			Prefix:  c.S3Prefix,
			Name:    c.BundleName,
			AMIName: c.AMIName,
			Force:   c.AMIForceDeregister,
		},
		&amibuild.StepFindSourceAMI{
			Region:        region,
			SourceAMI:     c.SourceAMI,
			Filter:        c.SourceAMIFilter,
			GeneratedData: generatedData,
		},
		&stepCheckSourceImage{LocalEmulator: c.LocalEmulator},
		&stepPrepareCerts{
			UserCertPEM:   c.userCertPEM,
			UserKey:       c.userKey,
			GeneratedDir:  c.X509GeneratedDir,
			EC2CertPath:   c.EC2CertPath,
			LocalEmulator: c.LocalEmulator,
		},
	}
}

// bundleSteps returns the steps that run on the provisioned instance:
// fetching Amazon's EC2 certificate when needed, bundling the image into
// S3, and releasing the instance, which the bundle no longer needs.
func (b *Builder) bundleSteps(region string) []multistep.Step {
	c := &b.config
	return []multistep.Step{
		&stepFetchEC2Cert{Region: region},
		&stepBundleVolume{
			Region:    region,
			Bucket:    c.S3Bucket,
			Prefix:    c.S3Prefix,
			Name:      c.BundleName,
			AccountID: c.AccountID,
			Script: scriptOptions{
				Source:     c.BundleSource,
				ScratchDir: c.BundleScratchDir,
				SizeMB:     c.BundleSizeMB,
				Exclude:    c.BundleExclude,
				Keep:       c.BundleKeep,
			},
			Comm:                &c.Comm,
			CommandPrefix:       c.BundleCommandPrefix,
			Architecture:        c.Architecture,
			KernelID:            c.KernelID,
			RamdiskID:           c.RamdiskID,
			ProductCodes:        c.ProductCodes,
			BlockDeviceMappings: manifestMappings(c.RootDeviceName, b.manifestVirtuals()),
			Concurrency:         c.S3UploadConcurrency,
		},
		// The bundle is in S3: the instance is no longer needed.
		&stepReleaseInstance{},
	}
}

// registerSteps returns the steps that make the AMI of the uploaded
// bundle: force_deregister, registration, and the copies and sharing of
// the AMI configuration.
func (b *Builder) registerSteps(region string) []multistep.Step {
	c := &b.config
	return []multistep.Step{
		// force_deregister: in the build region an old AMI goes with its
		// bundle.
		&amibuild.StepDeregisterExisting{
			Region:              region,
			AMIName:             c.AMIName,
			Force:               c.AMIForceDeregister,
			CopyRegions:         c.AMIRegions,
			RemoveInBuildRegion: (&oldBundles{Region: region, Bucket: c.S3Bucket}).remove,
		},
		&stepRegisterImage{
			Region:              region,
			Name:                c.AMIName,
			Description:         c.AMIDescription,
			Tags:                c.AMITags,
			Ctx:                 c.ctx,
			Wait:                c.Polling.ImageWait(),
			VirtualizationType:  c.VirtualizationType,
			RootDeviceName:      c.RootDeviceName,
			BlockDeviceMappings: c.AMIMappings.Mappings(),
			ENASupport:          c.AMIENASupport.ToBoolPointer(),
			SriovNetSupport:     c.SriovNetSupport,
			BootMode:            c.BootMode,
			TPMSupport:          c.TPMSupport,
			IMDSSupport:         c.AMIIMDSSupport,
		},
		&amibuild.StepDistribute{
			Region:      region,
			Config:      &c.AMIConfig,
			Description: c.AMIDescription,
			Wait:        c.Polling.ImageWait(),
			Ctx:         c.ctx,
		},
	}
}

// manifestVirtuals returns the instance-store volumes of
// ami_block_device_mappings, which the bundle manifest lists.
func (b *Builder) manifestVirtuals() []bundleVirtual {
	var virtuals []bundleVirtual
	for _, m := range b.config.AMIMappings {
		if m.VirtualName != "" {
			virtuals = append(virtuals, bundleVirtual{Virtual: m.VirtualName, Device: m.DeviceName})
		}
	}
	return virtuals
}
