// Package amiconfig is the Packer-side configuration layer that the
// builders (ami-ebs, ami-instance) and the ami-distribute post-processor
// share: AWS access and sessions (AccessConfig), polling (PollingConfig),
// the source AMI filter and its lookup, the rules for AMI names, AMI IDs and
// tags, template rendering with the build variables (BuildInfo, Render,
// RenderTags), the artifact ID format, values not known before a build
// runs (Unknown), and the bounded context cleanups work in.
//
// It holds no build steps; those are in builder/amibuild, which the
// builders alone use. Nothing here calls AWS while a configuration is
// prepared: validation reports every bad field by its option name first.
package amiconfig
