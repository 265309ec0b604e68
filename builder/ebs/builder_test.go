//go:build unix

package ebs

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclparse"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
)

func validRaw() map[string]any {
	return map[string]any{
		"region":        "us-east-1",
		"source_ami":    "ami-0123456789abcdef0",
		"instance_type": "t3.micro",
		"ami_name":      "test {{timestamp}}",
		"ssh_username":  "admin",
	}
}

func TestBuilderPrepare(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	var b Builder
	generated, warnings, err := b.Prepare(validRaw())
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if !slices.Equal(generated, amiconfig.GeneratedDataNames) {
		t.Errorf("generated data = %v, want %v", generated, amiconfig.GeneratedDataNames)
	}
	if b.config.AMIForceDeregister {
		t.Error("force_deregister set without -force")
	}
	if strings.Contains(b.config.AMIName, "{{") {
		t.Errorf("ami_name not rendered: %q", b.config.AMIName)
	}
}

func TestBuilderPrepareForce(t *testing.T) {
	raw := validRaw()
	raw["packer_force"] = true
	var b Builder
	if _, _, err := b.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if !b.config.AMIForceDeregister {
		t.Error("packer build -force did not set force_deregister")
	}
}

func TestBuilderPrepareWarnings(t *testing.T) {
	raw := validRaw()
	delete(raw, "source_ami")
	raw["source_ami_filter"] = map[string]any{"filters": map[string]string{"name": "base-*"}}
	var b Builder
	_, warnings, err := b.Prepare(raw)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warnings, "\n")
	for _, w := range []string{"source_ami_filter has no owners", "without most_recent"} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings %q lack %q", joined, w)
		}
	}
}

func TestBuilderPrepareReportsAllErrors(t *testing.T) {
	raw := validRaw()
	raw["region"] = "Europe"
	raw["ami_name"] = "no"
	raw["temporary_security_group_source_cidrs"] = []string{"1.2.3.4/40"}
	var b Builder
	_, _, err := b.Prepare(raw)
	var me *packersdk.MultiError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v (%T), want a *packer.MultiError", err, err)
	}
	if len(me.Errors) != 3 {
		t.Errorf("%d errors, want 3:\n%v", len(me.Errors), err)
	}
	for _, w := range []string{"region:", "ami_name:", "temporary_security_group_source_cidrs[0]:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, err)
		}
	}
}

// TestBuilderHCL2 decodes an HCL2 source block body with the builder's spec,
// the way packer does, and prepares the result.
func TestBuilderHCL2(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	src := `
region        = "us-east-1"
instance_type = "t3.micro"
ami_name      = "app {{timestamp}}"
ssh_username  = "admin"
ssh_host      = "127.0.0.1"
ssh_port      = 2222
custom_endpoint_ec2        = "http://127.0.0.1:5000"
skip_credential_validation = true
associate_public_ip_address = false
ssh_interface = "private_ip"
tags = {
  Base = "{{ .SourceAMIName }}"
}
source_ami_filter {
  filters = {
    name = "debian-12-*"
  }
  owners      = ["self"]
  most_recent = true
}
launch_block_device_mappings {
  device_name = "/dev/xvda"
  volume_size = 20
  volume_type = "gp3"
}
launch_block_device_mappings {
  device_name = "/dev/xvdb"
  no_device   = true
}
metadata_options {
  http_tokens = "required"
}
aws_polling {
  delay_seconds = 2
  max_attempts  = 3
}
`
	var b Builder
	file, diags := hclparse.NewParser().ParseHCL([]byte(src), "source.pkr.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	val, diags := hcldec.Decode(file.Body, b.ConfigSpec(), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, _, err := b.Prepare(val); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	c := &b.config
	if c.Comm.SSHHost != "127.0.0.1" || c.Comm.SSHPort != 2222 || c.CustomEndpointEC2 != "http://127.0.0.1:5000" || !c.SkipCredentialValidation {
		t.Errorf("communicator/access: %s:%d %s %t", c.Comm.SSHHost, c.Comm.SSHPort, c.CustomEndpointEC2, c.SkipCredentialValidation)
	}
	if !c.AssociatePublicIPAddress.False() || c.SSHInterface != "private_ip" {
		t.Errorf("associate_public_ip_address = %v, ssh_interface = %q", c.AssociatePublicIPAddress, c.SSHInterface)
	}
	if len(c.LaunchMappings) != 2 || !c.LaunchMappings[1].NoDevice || c.LaunchMappings[0].VolumeSize != 20 {
		t.Errorf("launch mappings = %+v", c.LaunchMappings)
	}
	if c.AMITags["Base"] != "{{ .SourceAMIName }}" {
		t.Errorf("tags rendered at Prepare: %v", c.AMITags)
	}
	if !c.SourceAMIFilter.MostRecent || c.SourceAMIFilter.Filters["name"] != "debian-12-*" {
		t.Errorf("filter = %+v", c.SourceAMIFilter)
	}
	if c.MetadataOptions.HTTPTokens != "required" {
		t.Errorf("metadata options = %+v", c.MetadataOptions)
	}
	if w := c.Polling.ImageWait(); w.MaxWait != 6*time.Second {
		t.Errorf("polling = %+v", w)
	}
}

func TestBuilderKeepsGivenSnapshots(t *testing.T) {
	raw := validRaw()
	raw["launch_block_device_mappings"] = []map[string]any{
		{"device_name": "/dev/sdb", "snapshot_id": "snap-0aaaaaaaaaaaaaaaa"},
		{"device_name": "/dev/sdc", "volume_size": 8},
	}
	raw["ami_block_device_mappings"] = []map[string]any{
		{"device_name": "/dev/sdd", "snapshot_id": "snap-0bbbbbbbbbbbbbbbb"},
		{"device_name": "/dev/sde", "snapshot_id": "snap-0aaaaaaaaaaaaaaaa"},
	}
	raw["force_deregister"] = true
	raw["force_delete_snapshot"] = true
	var b Builder
	if _, _, err := b.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	want := []string{"snap-0aaaaaaaaaaaaaaaa", "snap-0bbbbbbbbbbbbbbbb"}
	if got := b.givenSnapshotIDs(); !slices.Equal(got, want) {
		t.Errorf("given snapshots = %v, want %v", got, want)
	}
	var create, dereg bool
	for _, s := range b.steps("us-east-1", nil) {
		switch s := s.(type) {
		case *stepCreateImage:
			create = true
			if !slices.Equal(s.KeepSnapshotIDs, want) {
				t.Errorf("stepCreateImage keeps %v, want %v", s.KeepSnapshotIDs, want)
			}
		case *amibuild.StepDeregisterExisting:
			dereg = true
			if !slices.Equal(s.KeepSnapshotIDs, want) {
				t.Errorf("StepDeregisterExisting keeps %v, want %v", s.KeepSnapshotIDs, want)
			}
		}
	}
	if !create || !dereg {
		t.Errorf("steps: create image %t, deregister existing %t", create, dereg)
	}
}

// TestBuilderSpot checks the ami-ebs side of the spot options: the
// deprecated ones warn, ENA and SR-IOV support are refused (they are set on
// the stopped instance), and a spot instance is not stopped.
func TestBuilderSpot(t *testing.T) {
	tests := []struct {
		name     string
		set      map[string]any
		wantErr  string
		warnings []string
		stops    bool
	}{
		{name: "on demand stops the instance", set: map[string]any{}, stops: true},
		{name: "spot price 0 is on demand", set: map[string]any{"spot_price": "0"}, stops: true},
		{name: "spot is not stopped", set: map[string]any{"spot_price": "auto"}},
		{name: "deprecated options warn", set: map[string]any{"spot_price": "0.1", "spot_price_auto_product": "Linux/UNIX", "block_duration_minutes": 60},
			warnings: []string{"spot_price_auto_product is deprecated", "block_duration_minutes is deprecated"}},
		{name: "ena with spot", set: map[string]any{"spot_price": "auto", "ena_support": true}, wantErr: "ena_support, sriov_support: not valid with spot_price"},
		{name: "sriov with spot", set: map[string]any{"spot_price": "auto", "sriov_support": true}, wantErr: "ena_support, sriov_support: not valid with spot_price"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_REGION", "")
			raw := validRaw()
			for k, v := range tc.set {
				raw[k] = v
			}
			var b Builder
			_, warnings, err := b.Prepare(raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings %q, want %d", warnings, len(tc.warnings))
			}
			for i, w := range tc.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q lacks %q", warnings[i], w)
				}
			}
			stops := false
			for _, s := range b.steps("us-east-1", nil) {
				if _, ok := s.(*amibuild.StepStopInstance); ok {
					stops = true
				}
			}
			if stops != tc.stops {
				t.Errorf("the steps stop the instance: %t, want %t", stops, tc.stops)
			}
		})
	}
}
