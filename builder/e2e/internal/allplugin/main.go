// Command allplugin is a plugin binary with every component of the project
// (ami-ebs, ami-instance, ami-distribute), for the cross-component
// end-to-end tests of package builder/e2e while the plugin's main package
// does not register all of them yet. It registers them under the same
// names as the real plugin, so templates are the same.
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

func main() {
	pps := plugin.NewSet()
	pps.RegisterBuilder("ebs", new(ebs.Builder))
	pps.RegisterBuilder("instance", new(instance.Builder))
	pps.RegisterPostProcessor("distribute", new(distribute.PostProcessor))
	pps.SetVersion(version.NewPluginVersion("0.1.0", "dev", ""))
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
