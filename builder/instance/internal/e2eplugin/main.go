// Command e2eplugin is a plugin binary with the ami-instance builder, for
// the builder's end-to-end tests while the plugin's main package does not
// register it yet. It registers the component under the same name as the
// real plugin, so templates are the same.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
	"github.com/hashicorp/packer-plugin-sdk/version"

	"github.com/amiforge/packer-plugin-ami/builder/instance"
)

func main() {
	pps := plugin.NewSet()
	pps.RegisterBuilder("instance", new(instance.Builder))
	pps.SetVersion(version.NewPluginVersion("0.1.0", "dev", ""))
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
