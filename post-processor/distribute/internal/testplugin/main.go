// Command testplugin is the plugin the post-processor's end-to-end tests
// install when the project's main package does not register ami-distribute
// yet: the ami-ebs builder and the ami-distribute post-processor, under the
// same names as the real plugin.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
	"github.com/hashicorp/packer-plugin-sdk/version"

	"github.com/amiforge/packer-plugin-ami/builder/ebs"
	"github.com/amiforge/packer-plugin-ami/post-processor/distribute"
)

func main() {
	pps := plugin.NewSet()
	pps.RegisterBuilder("ebs", new(ebs.Builder))
	pps.RegisterPostProcessor("distribute", new(distribute.PostProcessor))
	pps.SetVersion(version.NewPluginVersion("0.1.0", "dev", ""))
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
