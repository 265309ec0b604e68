//go:build unix

package distribute

import (
	"strings"
	"testing"
)

func TestClientToken(t *testing.T) {
	base := ClientToken("run-1", srcRegion, srcID, "eu-west-1", "app-1")
	if len(base) > 64 || !strings.HasPrefix(base, "amiforge-") {
		t.Fatalf("token %q: want at most 64 characters", base)
	}
	for _, tc := range []struct{ name, run, sr, src, r, n string }{
		{"other run", "run-2", srcRegion, srcID, "eu-west-1", "app-1"},
		{"other source region", "run-1", "us-east-2", srcID, "eu-west-1", "app-1"},
		{"other source", "run-1", srcRegion, "ami-other", "eu-west-1", "app-1"},
		{"other region", "run-1", srcRegion, srcID, "eu-west-2", "app-1"},
		{"other name", "run-1", srcRegion, srcID, "eu-west-1", "app-2"},
		{"no ambiguity from joining", "run-1", srcRegion, srcID, "eu-west-1app-1", ""},
	} {
		if ClientToken(tc.run, tc.sr, tc.src, tc.r, tc.n) == base {
			t.Errorf("%s: same token", tc.name)
		}
	}
}
