// Package amibuild holds what the two AMI builders of this plugin (ami-ebs,
// ami-instance) share and the post-processor does not: the configuration
// of the build instance and its AMI (RunConfig, AMIConfig, BlockDevice and
// the blocks they hold) with their validation, the build steps that launch,
// provision and stop a build instance and tag its AMI, the typed state keys
// the steps exchange, and the Artifact. The configuration the
// post-processor shares with the builders (access, polling, tags,
// templates, artifact IDs) is in builder/amiconfig.
//
// Steps are thin: they read configuration and state, call the sdk packages
// (sdk/image, sdk/instance), and write state and UI messages. Each step's
// Cleanup removes only what that step created: temporary resources (key
// pair, security group, instance) always, build results only when the run
// was cancelled or halted.
//
// A builder assembles the steps like this (see builder/ebs):
//
//	StepCheckRegion → StepCheckAMIName → StepFindSourceAMI →
//	StepCreateKeyPair → StepCreateSecurityGroup → StepRunInstance →
//	communicator.StepConnect → commonsteps.StepProvision →
//	commonsteps.StepCleanupTempKeys → StepStopInstance →
//	StepModifyInstance → StepDeregisterExisting → (create the image) →
//	StepTagImage
package amibuild
