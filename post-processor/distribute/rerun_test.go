//go:build unix

package distribute

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestPostProcessRerunAfterFailure runs the post-processor, fails it in one
// region (its copies are removed), and runs it again with the same
// configuration. EC2 answers a CopyImage whose token it has seen with the
// earlier (now deregistered) copy or IdempotentParameterMismatch; moto
// ignores tokens, so the proxy plays that part. The rerun must use new
// tokens and succeed.
func TestPostProcessRerunAfterFailure(t *testing.T) {
	w := newWorld(t)
	name := uniqueName(t, "pp-rerun")
	src, _ := w.registerImage(t, srcRegion, name, nil)
	var mu sync.Mutex
	seen := map[string]string{} // token -> region
	failAP := true
	w.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Action != "CopyImage" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		tok := c.Params.Get("ClientToken")
		if _, ok := seen[tok]; ok {
			return &awstest.Fault{Code: "IdempotentParameterMismatch", Status: http.StatusBadRequest, Message: "token used by an earlier request"}
		}
		seen[tok] = c.Region
		if failAP && c.Region == apRegion {
			return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
		}
		return nil
	})
	raw := map[string]any{
		"regions":          []string{euRegion, apRegion},
		"ami_name":         name + "-copy",
		"copy_concurrency": 1,
	}
	in := &packersdk.MockArtifact{IdValue: srcRegion + ":" + src}
	if _, out, err := w.postProcess(t, context.Background(), raw, in); err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Fatalf("first run: err = %v, want the injected failure\n%s", err, out)
	}
	if imgs := w.imagesNamed(t, euRegion, name+"-copy"); len(imgs) != 0 {
		t.Fatalf("the failed run left %d copies in %s", len(imgs), euRegion)
	}
	mu.Lock()
	failAP = false
	mu.Unlock()
	art, out, err := w.postProcess(t, context.Background(), raw, in)
	if err != nil {
		t.Fatalf("rerun after a failed run: %v\n%s", err, out)
	}
	a := art.(*Artifact)
	for _, region := range []string{euRegion, apRegion} {
		if _, ok := w.image(t, region, a.Copies[region]); !ok {
			t.Errorf("%s: copy %q of the rerun does not exist", region, a.Copies[region])
		}
	}
	if n := len(w.proxy.CallsFor("ec2", "CopyImage")); n != 4 {
		t.Errorf("CopyImage calls = %d, want 4 (two per run)", n)
	}
	if err := art.Destroy(); err != nil {
		t.Errorf("Destroy: %v", err)
	}
}
