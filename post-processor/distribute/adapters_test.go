//go:build unix

package distribute

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// TestBundleDeleterRegionAndAccessDenied checks that retention's bundle
// deleter talks to S3 in the AMI's region, not the session's, and that
// AccessDenied leaves the bundle as a reported skip rather than a failure.
func TestBundleDeleterRegionAndAccessDenied(t *testing.T) {
	tests := []struct {
		name     string
		fault    *awstest.Fault
		wantSkip bool
	}{
		{name: "missing bucket: a failure, asked in the AMI's region"},
		{name: "access denied", fault: awstest.ErrorFault("AccessDenied", http.StatusForbidden), wantSkip: true},
		{name: "other failure", fault: awstest.ErrorFault("InternalError", http.StatusInternalServerError)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			p := &PostProcessor{}
			raw := w.accessRaw() // session region us-east-1
			raw["regions"] = []string{euRegion}
			if err := p.Configure(raw); err != nil {
				t.Fatal(err)
			}
			sess, err := p.config.AccessConfig.Session(context.Background(), amiconfig.AppIDDistribute)
			if err != nil {
				t.Fatal(err)
			}
			if tc.fault != nil {
				w.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
					if c.Service == "s3" {
						return tc.fault
					}
					return nil
				})
			}
			err = (&bundleDeleter{sess: sess}).DeleteBundle(context.Background(), euRegion, "no-such-bucket-e2e/rel/image.manifest.xml")
			calls := 0
			for _, c := range w.proxy.Calls() {
				if c.Service != "s3" {
					continue
				}
				calls++
				if c.Region != euRegion {
					t.Errorf("S3 %s %s signed for %s, want the AMI's region %s", c.Method, c.Key, c.Region, euRegion)
				}
			}
			if calls == 0 {
				t.Fatal("no S3 call")
			}
			if got := errors.Is(err, distribute.ErrBundleSkipped); got != tc.wantSkip {
				t.Errorf("err = %v; skipped = %v, want %v", err, got, tc.wantSkip)
			}
			if tc.fault != nil && err == nil {
				t.Error("a failing S3 call returned no error")
			}
		})
	}
}
