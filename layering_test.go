package main

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// packerSide matches what the SDK must never depend on: Packer, HCL, cty and
// the plugin's own Packer side.
var packerSide = regexp.MustCompile(`^(github\.com/hashicorp/(packer-plugin-sdk|hcl)|github\.com/zclconf/go-cty|github\.com/amiforge/packer-plugin-ami/(builder|post-processor|example))(/|$)`)

const amibuild = "github.com/amiforge/packer-plugin-ami/builder/amibuild"

func goListDeps(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// TestLayering: no package under sdk/, tests included, depends on Packer,
// HCL, cty or the Packer side, and the post-processor does not depend on
// the builders' steps (builder/amibuild). The same queries must see those
// dependencies in the ami-ebs builder, so that the test cannot pass blind.
func TestLayering(t *testing.T) {
	ebs := goListDeps(t, "./builder/ebs")
	if !slices.ContainsFunc(ebs, packerSide.MatchString) || !slices.Contains(ebs, amibuild) {
		t.Fatal("the ami-ebs builder shows no Packer or builder/amibuild dependency; the check cannot see one")
	}
	for _, p := range goListDeps(t, "-test", "./sdk/...") {
		if packerSide.MatchString(p) {
			t.Errorf("a package under sdk/ depends on %s", p)
		}
	}
	if slices.Contains(goListDeps(t, "./post-processor/..."), amibuild) {
		t.Errorf("the post-processor depends on %s (the builders' own steps); use builder/amiconfig", amibuild)
	}
}
