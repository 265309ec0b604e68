//go:build unix

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// minInvalid is the least number of invalid templates the corpus must hold.
const minInvalid = 60

// TestInvalidTemplates runs `packer validate` on every template in
// testdata/invalid: each must fail with a message containing every
// "# want: <text>" line of the file (the field, and what is valid), and no
// run may make an AWS call. The templates in testdata/valid, the bases the
// invalid ones were made from, must pass, so that each failure comes from
// the one bad setting. AWS_REGION is unset, so that a missing region is
// an error.
func TestInvalidTemplates(t *testing.T) {
	w := theWorld(t)
	proxy := awstest.NewProxy(t, w.moto.Endpoint, awstest.ProxyOptions{})
	env := append(awstest.Env(proxy.URL, buildRegion), "AWS_REGION=", "AWS_DEFAULT_REGION=")
	dir := t.TempDir()
	p, err := packertest.Setup(context.Background(), dir, packertest.Options{Plugin: w.plugin, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	proxy.Reset()

	validate := func(t *testing.T, file string) (*packertest.Result, string) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Run(context.Background(), packertest.RunOptions{
			Args: []string{"validate"}, Template: string(b), TemplateName: filepath.Base(file),
		})
		if err != nil {
			t.Fatalf("run packer: %v", err)
		}
		return res, string(b)
	}

	valid, _ := filepath.Glob(filepath.Join("testdata", "valid", "*.pkr.hcl"))
	invalid, _ := filepath.Glob(filepath.Join("testdata", "invalid", "*.pkr.hcl"))
	if len(valid) == 0 || len(invalid) < minInvalid {
		t.Fatalf("%d valid and %d invalid templates in testdata, want some and at least %d", len(valid), len(invalid), minInvalid)
	}
	t.Run("group", func(t *testing.T) {
		for _, f := range valid {
			t.Run("valid/"+strings.TrimSuffix(filepath.Base(f), ".pkr.hcl"), func(t *testing.T) {
				t.Parallel()
				if res, _ := validate(t, f); res.ExitCode != 0 {
					t.Errorf("packer validate %s failed (exit %d):\n%s", f, res.ExitCode, res.Output())
				}
			})
		}
		for _, f := range invalid {
			t.Run("invalid/"+strings.TrimSuffix(filepath.Base(f), ".pkr.hcl"), func(t *testing.T) {
				t.Parallel()
				res, src := validate(t, f)
				stats.invalid.Add(1)
				wants := wantLines(src)
				if len(wants) == 0 {
					t.Fatalf("%s has no \"# want:\" line", f)
				}
				if res.ExitCode == 0 {
					t.Fatalf("packer validate accepted %s", f)
				}
				if strings.Contains(res.Output(), "panic") {
					t.Errorf("packer validate panicked:\n%s", res.Output())
				}
				for _, want := range wants {
					if !strings.Contains(res.Output(), want) {
						t.Errorf("the message does not mention %q:\n%s", want, res.Output())
					}
				}
			})
		}
	})
	if calls := proxy.Calls(); len(calls) != 0 {
		t.Errorf("packer validate made %d AWS calls, want none: %v", len(calls), proxy.Actions())
	}
}

// wantLines returns the texts of the "# want: " lines of a template.
func wantLines(src string) []string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		if w, ok := strings.CutPrefix(strings.TrimSpace(l), "# want: "); ok {
			out = append(out, w)
		}
	}
	return out
}
