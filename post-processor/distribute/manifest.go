package distribute

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// Manifest is what manifest_output contains: one JSON object per run.
type Manifest struct {
	// Time is when the run started.
	Time time.Time `json:"time"`
	// BuildName is the name of the Packer build.
	BuildName string `json:"build_name,omitempty"`
	// DryRun is true for a dry run, which changed nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Source is the AMI the copies were made from.
	Source ManifestSource `json:"source"`
	// Inputs are the AMIs of the input artifact (or source_ami).
	Inputs []RegionAMI `json:"inputs,omitempty"`
	// Regions holds one result per region: the input AMIs first, then the
	// copies, then the copies in target accounts (with their account).
	Regions distribute.Results `json:"regions"`
	// Parameters are the SSM parameters written, in this account and the
	// target accounts, with their previous values and what became of them.
	Parameters []distribute.ParameterResult `json:"parameters,omitempty"`
	// LaunchTemplates are the launch template versions made.
	LaunchTemplates []distribute.LaunchTemplateResult `json:"launch_templates,omitempty"`
	// Planned are the copies a dry run would make.
	Planned []distribute.PlannedCopy `json:"planned_copies,omitempty"`
	// Retention holds the retention decisions.
	Retention distribute.Decisions `json:"retention,omitempty"`
	// ArtifactID is the ID of the output artifact, "region:ami-…,…".
	ArtifactID string `json:"artifact_id,omitempty"`
	// Error is the run's failure, if any.
	Error string `json:"error,omitempty"`
}

// ManifestSource names the source AMI in a Manifest.
type ManifestSource struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
	Name    string `json:"name,omitempty"`
}

// writeManifest writes manifest_output, if set, atomically.
func (r *run) writeManifest(runErr error) error {
	path := r.c.ManifestOutput
	if path == "" {
		return nil
	}
	m := r.manifest
	if runErr != nil {
		m.Error = runErr.Error()
		if !r.committed {
			// The copies were removed again.
			m.ArtifactID = ""
		}
	}
	if m.Regions == nil {
		m.Regions = distribute.Results{}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest_output: %w", err)
	}
	b = append(b, '\n')
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("manifest_output: %w", err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".manifest-*.json")
	if err != nil {
		return fmt.Errorf("manifest_output: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("manifest_output: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("manifest_output: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("manifest_output: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("manifest_output: %w", err)
	}
	r.ui.Say(fmt.Sprintf("Wrote the manifest to %s", path))
	return nil
}
