//go:build unix

package distribute

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// e2eWorld is a world with packer set up against its proxy.
type e2eWorld struct {
	*world
	packer *packertest.Packer
	dir    string // for manifests
}

func newE2EWorld(t *testing.T) *e2eWorld {
	t.Helper()
	w := newWorld(t)
	p := packertest.New(t, packertest.Options{Env: awstest.Env(w.proxy.URL, srcRegion)})
	return &e2eWorld{world: w, packer: p, dir: t.TempDir()}
}

// build runs `packer build -machine-readable` on the template.
func (e *e2eWorld) build(t *testing.T, tpl string) *packertest.Result {
	t.Helper()
	return e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
}

// distributedAMIs returns the region→AMI map of the post-processor's
// artifact of build: the artifact id with the most regions.
func distributedAMIs(t *testing.T, res *packertest.Result, build string) map[string]string {
	t.Helper()
	ids := packertest.ArtifactIDs(res.Stdout)[build]
	best := ""
	for _, id := range ids {
		if strings.Count(id, ",") >= strings.Count(best, ",") {
			best = id
		}
	}
	amis, err := amiconfig.ParseArtifactID(best)
	if err != nil {
		t.Fatalf("artifact ids of %s = %q: %v", build, ids, err)
	}
	return amis
}

// hcl renders a Go value as an HCL expression (strings, lists of
// strings, maps of strings).
func hcl(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	s := string(b)
	if m, ok := v.(map[string]string); ok {
		var parts []string
		for _, k := range sortedKeys(m) {
			kb, _ := json.Marshal(k)
			vb, _ := json.Marshal(m[k])
			parts = append(parts, string(kb)+" = "+string(vb))
		}
		return "{\n" + strings.Join(parts, "\n") + "\n}"
	}
	return s
}

// nullTemplate is a build with a null source and the post-processor body.
func nullTemplate(ppBody string) string {
	return `source "null" "existing" {
  communicator = "none"
}

build {
  sources = ["source.null.existing"]

  post-processor "ami-distribute" {
` + ppBody + `
  }
}
`
}
