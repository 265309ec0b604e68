//go:build unix

package distribute

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// TestFailTellsWhatIsLeft checks what a failed run tells the user about
// its copies: a region whose CopyImage outcome is unknown is named with the
// AMI name and the tag to look for, a copy that could not be removed is
// named, and "every copy was removed" is said only when it is true.
func TestFailTellsWhatIsLeft(t *testing.T) {
	const (
		name  = "app-2024"
		token = "tok-ap-1"
	)
	source := distribute.Result{Region: "us-east-1", ImageID: "ami-src", Name: name, Source: true, Status: distribute.StatusAvailable}
	removed := distribute.Result{Region: "eu-west-1", ImageID: "ami-eu", Name: name, Status: distribute.StatusRemoved}
	unknown := distribute.Result{Region: "ap-southeast-2", Name: name, Status: distribute.StatusUnknown, ClientToken: token,
		Err: &distribute.UnknownCopyError{Region: "ap-southeast-2", Name: name, ClientToken: token, Err: errors.New("no answer")}}
	kept := distribute.Result{Region: "sa-east-1", ImageID: "ami-sa", Name: name, Status: distribute.StatusAvailable,
		Err: errors.New("cleanup in sa-east-1: deregister ami-sa: RequestLimitExceeded")}
	handedOver := distribute.Result{Region: "ca-central-1", ImageID: "ami-ca", Name: name, Status: distribute.StatusAvailable}

	wantUnknown := []string{"ap-southeast-2", `"` + name + `"`, distribute.CopyTokenTag + "=" + token}
	tests := []struct {
		name    string
		regions distribute.Results
		// undo, when set, records the handed-over copy ami-ca in the
		// run's ledger with this undo.
		undo     func(context.Context) error
		want     []string
		wantNot  []string
		wantErrs []string
	}{
		{
			name:    "every copy removed",
			regions: distribute.Results{source, removed},
			want:    []string{"Every copy this run made was removed again."},
		},
		{
			name:    "unknown copy",
			regions: distribute.Results{source, removed, unknown},
			want:    slices.Concat(wantUnknown, []string{"eu-west-1"}),
			wantNot: []string{"Every copy", "every copy", "knows of were removed"},
		},
		{
			name:    "only an unknown copy",
			regions: distribute.Results{source, unknown},
			want:    wantUnknown,
			wantNot: []string{"Every copy", "every copy", "were removed"},
		},
		{
			name:    "a copy not removed",
			regions: distribute.Results{source, removed, kept},
			want:    []string{"sa-east-1", "ami-sa"},
			wantNot: []string{"Every copy", "every copy"},
		},
		{
			name:     "handed-over copy not removed",
			regions:  distribute.Results{source, handedOver},
			undo:     func(context.Context) error { return errors.New("RequestLimitExceeded") },
			want:     []string{"ca-central-1", "ami-ca"},
			wantNot:  []string{"Every copy", "every copy"},
			wantErrs: []string{"undo the run's changes"},
		},
		{
			name:    "handed-over copy removed",
			regions: distribute.Results{source, handedOver},
			undo:    func(context.Context) error { return nil },
			want:    []string{"Every copy this run made was removed again."},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := &run{ui: &packersdk.BasicUi{Writer: &out, ErrorWriter: &out, PB: &packersdk.NoopProgressTracker{}}}
			r.manifest.Regions = append(distribute.Results(nil), tc.regions...)
			if tc.undo != nil {
				r.ledger.Record(ledger.Resource{Kind: ledger.KindImage, ID: "ami-ca", Region: "ca-central-1"}, tc.undo)
			}
			err := r.fail(errors.New("the copy failed"))
			said := out.String()
			t.Logf("output:\n%s", said)
			for _, s := range tc.want {
				if !strings.Contains(said, s) {
					t.Errorf("output does not name %q", s)
				}
			}
			for _, s := range tc.wantNot {
				if strings.Contains(said, s) {
					t.Errorf("output says %q", s)
				}
			}
			if err == nil || !strings.Contains(err.Error(), "the copy failed") {
				t.Errorf("fail() = %v, want the original error kept", err)
			}
			for _, s := range tc.wantErrs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("fail() = %v, want it to contain %q", err, s)
				}
			}
		})
	}
}
