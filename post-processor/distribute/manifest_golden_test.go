//go:build unix

package distribute

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestManifestGolden pins the JSON of manifest_output, which users parse:
// every field a run can fill, for a run whose last region failed after the
// others were published. Run with -update after a deliberate change, and
// say in the release notes what changed.
func TestManifestGolden(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC)
	deprecate := at.Add(365 * 24 * time.Hour)
	copyErr := errors.New("copy ami-0123456789abcdef0 from us-east-1 to ap-south-1: InvalidRequest")
	m := Manifest{
		Time:      at,
		BuildName: "web",
		Source:    ManifestSource{Region: "us-east-1", ImageID: "ami-0123456789abcdef0", Name: "web-20261130"},
		Inputs:    []RegionAMI{{Region: "us-east-1", ImageID: "ami-0123456789abcdef0"}},
		Regions: distribute.Results{
			{Region: "us-east-1", ImageID: "ami-0123456789abcdef0", Name: "web-20261130", Source: true, Status: distribute.StatusAvailable,
				SnapshotIDs: []string{"snap-0123456789abcdef0"}, SharedWith: distribute.Permissions{Accounts: []string{"111122223333"}}},
			{Region: "eu-west-1", ImageID: "ami-0fedcba9876543210", Name: "web-20261130", Status: distribute.StatusAvailable,
				Duration: 9*time.Minute + 30*time.Second, SnapshotIDs: []string{"snap-0fedcba9876543210"}, Encrypted: true, KMSKeyID: "alias/web",
				ClientToken: "amiforge-0123", SharedWith: distribute.Permissions{Accounts: []string{"111122223333"}, OrgARNs: []string{"arn:aws:organizations::123456789012:organization/o-abcdefghij"}},
				DeprecateAt: &deprecate, Protected: true, Warnings: []string{"deprecation: optional step failed"}},
			{Account: "222233334444", Region: "eu-west-1", ImageID: "ami-0aaaabbbbccccdddd", Name: "web-20261130", Status: distribute.StatusAvailable},
			{Region: "ap-south-1", Name: "web-20261130", Status: distribute.StatusFailed, Err: copyErr},
		},
		Parameters: []distribute.ParameterResult{
			{Region: "eu-west-1", Name: "/web/latest", ImageID: "ami-0fedcba9876543210", Version: 7, Previous: "ami-0badc0ffee0000000", Status: distribute.PublishWritten},
			{Account: "222233334444", Region: "eu-west-1", Name: "/web/latest", ImageID: "ami-0aaaabbbbccccdddd", Created: true, Status: distribute.PublishRemoved},
		},
		LaunchTemplates: []distribute.LaunchTemplateResult{
			{Region: "eu-west-1", ID: "lt-0123456789abcdef0", Name: "web", ImageID: "ami-0fedcba9876543210", Version: 12, SourceVersion: 11,
				PreviousDefault: 11, Default: true, Status: distribute.PublishRestored},
		},
		Retention: distribute.Decisions{
			{Region: "eu-west-1", ImageID: "ami-0badc0ffee0000000", Name: "web-20251130", Created: at.Add(-365 * 24 * time.Hour),
				Action: distribute.ActionKeep, Reason: "a launch template version uses it"},
		},
		ArtifactID: "us-east-1:ami-0123456789abcdef0,eu-west-1:ami-0fedcba9876543210",
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "manifest.json")
	r := &run{c: &Config{ManifestOutput: path}, ui: &packersdk.MockUi{}, manifest: m, committed: false}
	if err := r.writeManifest(errors.New("ap-south-1: " + copyErr.Error())); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "manifest.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("manifest_output changed; if that is deliberate, run with -update.\ngot:\n%s\nwant:\n%s", got, want)
	}
}
