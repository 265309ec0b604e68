// Command packer-plugin-ami is the Packer plugin for Amazon Machine Images.
//
// It only registers the plugin's components; all behaviour lives in the
// builder, post-processor and sdk packages.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
	"github.com/hashicorp/packer-plugin-sdk/version"

	"github.com/amiforge/packer-plugin-ami/builder/ebs"
	"github.com/amiforge/packer-plugin-ami/builder/instance"
	"github.com/amiforge/packer-plugin-ami/post-processor/distribute"
)

// Version is the plugin's version. Release builds set it with
// -ldflags "-X main.Version=1.2.3".
var Version = "0.1.0"

// VersionPrerelease marks a pre-release such as "dev" or "rc1"; it is empty
// for a final release. Release builds set it with
// -ldflags "-X main.VersionPrerelease=".
var VersionPrerelease = "dev"

// VersionMetadata is optional build metadata appended to the version.
var VersionMetadata = ""

// PluginVersion is the version the plugin reports to Packer.
var PluginVersion = version.NewPluginVersion(Version, VersionPrerelease, VersionMetadata)

func main() {
	pps := plugin.NewSet()
	// Templates name components "ami-<name>": source "ami-ebs" "x" { ... }.
	pps.RegisterBuilder("ebs", new(ebs.Builder))
	pps.RegisterBuilder("instance", new(instance.Builder))
	pps.RegisterPostProcessor("distribute", new(distribute.PostProcessor))
	pps.SetVersion(PluginVersion)
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
