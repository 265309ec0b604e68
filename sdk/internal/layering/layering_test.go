package layering

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/amiforge/packer-plugin-ami"

// forbidden are the import path prefixes no SDK package may depend on,
// directly or through another package.
var forbidden = []string{
	"github.com/hashicorp/packer-plugin-sdk",
	"github.com/hashicorp/hcl",
	"github.com/zclconf/go-cty",
	module + "/builder",
	module + "/post-processor",
	module + "/example",
}

// violations lists, for every package matched by pattern whose path
// starts with under, the forbidden packages among its dependencies (tests
// included), as "pkg -> dep".
func violations(t *testing.T, pattern, under string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", `{{.ImportPath}} {{join .Deps " "}} {{join .Imports " "}}`, pattern).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		t.Fatalf("go list %s: %s", pattern, msg)
	}
	var bad []string
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], under) {
			continue
		}
		for _, dep := range fields[1:] {
			for _, f := range forbidden {
				if (dep == f || strings.HasPrefix(dep, f+"/")) && !seen[fields[0]+dep] {
					seen[fields[0]+dep] = true
					bad = append(bad, fields[0]+" -> "+dep)
				}
			}
		}
	}
	return bad
}

func TestSDKImportsNoPackerSide(t *testing.T) {
	if bad := violations(t, module+"/sdk/...", module+"/sdk/"); len(bad) > 0 {
		t.Errorf("packages under sdk/ depend on Packer, HCL, cty or the plugin's Packer side:\n%s", strings.Join(bad, "\n"))
	}
}

// TestViolationsAreFound runs the same check on the ami-ebs builder, which
// imports Packer, so that a check that silently finds nothing fails here.
func TestViolationsAreFound(t *testing.T) {
	bad := violations(t, module+"/builder/ebs", module+"/builder/ebs")
	if !slices.ContainsFunc(bad, func(v string) bool { return strings.Contains(v, "-> github.com/hashicorp/packer-plugin-sdk/") }) {
		t.Fatalf("no Packer dependency found for the ami-ebs builder: %q", bad)
	}
}
