//go:build unix

package distribute

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestPostProcessRetentionIsLast checks that retention runs after every
// other change and after the manifest is written, that a failure before it
// removes the copies and runs no retention, and that once retention has
// started the copies are kept whatever happens.
func TestPostProcessRetentionIsLast(t *testing.T) {
	ok200 := &awstest.Fault{Name: "success stand-in", Status: http.StatusOK}
	cases := []struct {
		name string
		// fault fails one call; oldID is the old release in us-east-1.
		fault func(oldID string) awstest.FaultFunc
		// badManifest makes manifest_output unwritable.
		badManifest bool
		protect     bool
		wantErr     []string
		// wantCopies: the copies survive; wantOld: the old release survives.
		wantCopies, wantOld bool
		// wantRetention: retention removed or tried to remove the old release.
		wantRetention bool
	}{
		{
			name: "retention fails: copies kept",
			fault: func(oldID string) awstest.FaultFunc {
				return func(_ *http.Request, c awstest.Call) *awstest.Fault {
					if c.Action == "DeregisterImage" && c.Params.Get("ImageId") == oldID {
						return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
					}
					return nil
				}
			},
			wantErr:    []string{"DeregisterImage", srcRegion, "UnauthorizedOperation", "kept"},
			wantCopies: true, wantOld: true, wantRetention: true,
		},
		{
			name:    "protection fails: copies removed, no retention",
			protect: true,
			fault: func(string) awstest.FaultFunc {
				return func(_ *http.Request, c awstest.Call) *awstest.Fault {
					switch {
					case c.Action == "EnableImageDeregistrationProtection" && c.Region == apRegion:
						return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
					case c.Action == "EnableImageDeregistrationProtection" || c.Action == "DisableImageDeregistrationProtection":
						return ok200
					}
					return nil
				}
			},
			wantErr: []string{"EnableImageDeregistrationProtection", apRegion, "UnauthorizedOperation"},
			wantOld: true,
		},
		{
			name:        "manifest fails: copies removed, no retention",
			badManifest: true,
			wantErr:     []string{"manifest_output"},
			wantOld:     true,
		},
		{
			name:       "success",
			wantCopies: true, wantRetention: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			family := uniqueName(t, "pp-order")
			sel := map[string]string{"Family": family}
			old, _ := w.registerImage(t, srcRegion, family+"-old", sel)
			awstest.NextSecond(t) // moto's creation dates have whole seconds
			src, _ := w.registerImage(t, srcRegion, family+"-new", sel)
			if tc.fault != nil {
				w.proxy.SetFault(tc.fault(old))
			}
			manifest := filepath.Join(t.TempDir(), "manifest.json")
			if tc.badManifest {
				// A directory where the file should be: writing fails.
				if err := os.MkdirAll(manifest, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			raw := map[string]any{
				"regions":         []string{euRegion, apRegion},
				"ami_name":        family + "-copy",
				"tags":            sel,
				"keep_releases":   1,
				"retention":       map[string]any{"tags": sel},
				"manifest_output": manifest,
			}
			if tc.protect {
				raw["deregistration_protection"] = map[string]any{"enabled": true}
			}
			_, out, err := w.postProcess(t, context.Background(), raw, &packersdk.MockArtifact{IdValue: srcRegion + ":" + src})
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("PostProcess: %v\n%s", err, out)
			}
			if len(tc.wantErr) > 0 && err == nil {
				t.Fatalf("PostProcess succeeded, want an error\n%s", out)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not mention %q: %v", want, err)
				}
			}
			for _, region := range []string{euRegion, apRegion} {
				n := len(w.imagesNamed(t, region, family+"-copy"))
				if tc.wantCopies && n != 1 || !tc.wantCopies && n != 0 {
					t.Errorf("%s: %d copies left, want copies kept = %v\n%s", region, n, tc.wantCopies, out)
				}
			}
			if _, ok := w.image(t, srcRegion, old); ok != tc.wantOld {
				t.Errorf("old release %s exists = %v, want %v", old, ok, tc.wantOld)
			}
			tried := len(w.proxy.CallsFor("ec2", "DeregisterImage")) > 0 &&
				slices.ContainsFunc(w.proxy.CallsFor("ec2", "DeregisterImage"), func(c awstest.Call) bool { return c.Params.Get("ImageId") == old })
			if tried != tc.wantRetention {
				t.Errorf("retention called DeregisterImage on %s = %v, want %v", old, tried, tc.wantRetention)
			}
			if tc.badManifest {
				return
			}
			m := readManifest(t, manifest)
			if tc.wantCopies && m.ArtifactID == "" {
				t.Errorf("manifest has no artifact ID although the copies are kept: %+v", m)
			}
			if tc.wantRetention && len(m.Retention) == 0 {
				t.Error("manifest lacks the retention decisions")
			}
			if tc.wantCopies {
				// Clean up the copies this test keeps.
				for _, r := range m.Regions {
					if !r.Source && r.ImageID != "" {
						if _, err := w.clients[r.Region].DeregisterImage(context.Background(), deregisterInput(r.ImageID)); err != nil {
							t.Errorf("remove %s: %v", r.ImageID, err)
						}
					}
				}
			}
		})
	}
}
