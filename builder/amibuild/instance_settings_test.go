//go:build unix

package amibuild

import (
	"strings"
	"testing"
)

const licenseARN = "arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123456789abcdef0123456789abcdef"

func TestInstanceSettingsRefuse(t *testing.T) {
	tests := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"unlimited credits on a non-burstable type", map[string]any{"instance_type": "m5.large", "enable_unlimited_credits": true}, []string{"enable_unlimited_credits", "m5.large"}},
		{"shutdown behavior", map[string]any{"shutdown_behavior": "hibernate"}, []string{"shutdown_behavior", "stop", "terminate"}},
		{"stop disabled, terminate on shutdown", map[string]any{"disable_stop_instance": true, "shutdown_behavior": "terminate"}, []string{"disable_stop_instance", "terminate"}},
		{"tenancy", map[string]any{"placement": map[string]any{"tenancy": "shared"}}, []string{"placement.tenancy", "shared"}},
		{"host with dedicated tenancy", map[string]any{"placement": map[string]any{"tenancy": "dedicated", "host_id": "h-0123456789abcdef0"}}, []string{"placement.tenancy", "host"}},
		{"bad host", map[string]any{"placement": map[string]any{"host_id": "host-1"}}, []string{"placement.host_id", "host-1"}},
		{"two tenancies", map[string]any{"tenancy": "dedicated", "placement": map[string]any{"tenancy": "host"}}, []string{"tenancy, placement.tenancy"}},
		{"two capacity settings", map[string]any{"capacity_reservation_preference": "open", "capacity_reservation_id": "cr-0123456789abcdef0"}, []string{"set at most one"}},
		{"capacity preference", map[string]any{"capacity_reservation_preference": "always"}, []string{"capacity_reservation_preference", "open", "none"}},
		{"capacity id", map[string]any{"capacity_reservation_id": "res-1"}, []string{"capacity_reservation_id", "cr-"}},
		{"capacity group", map[string]any{"capacity_reservation_group_arn": "my-group"}, []string{"capacity_reservation_group_arn"}},
		{"source CIDRs with Session Manager", map[string]any{"ssh_interface": "session_manager", "iam_instance_profile": "ssm", "temporary_security_group_source_cidrs": []string{"10.0.0.0/8"}}, []string{"temporary_security_group_source_cidrs", "session_manager"}},
		{"public IP with a security group filter", map[string]any{"security_group_filter": map[string]any{"filters": map[string]string{"tag:Role": "build"}}, "temporary_security_group_source_public_ip": true}, []string{"temporary_security_group_source_public_ip", "security_group_filter"}},
		{"stop on shutdown on spot", map[string]any{"spot_price": "auto", "shutdown_behavior": "stop"}, []string{"shutdown_behavior", "spot"}},
		{"dedicated host on spot", map[string]any{"spot_price": "auto", "placement": map[string]any{"tenancy": "host"}}, []string{"placement", "Dedicated Hosts"}},
		{"capacity reservation on spot", map[string]any{"spot_price": "auto", "capacity_reservation_id": "cr-0123456789abcdef0"}, []string{"capacity_reservation_id", "spot_price"}},
		{"unlimited credits on spot types", map[string]any{"spot_price": "auto", "instance_type": "", "spot_instance_types": []string{"t3.micro", "m5.large"}, "enable_unlimited_credits": true}, []string{"spot_instance_types lists \"m5.large\""}},
		{"unlimited credits on a T2 spot type", map[string]any{"spot_price": "auto", "instance_type": "", "spot_instance_types": []string{"t2.micro"}, "enable_unlimited_credits": true}, []string{"T2 spot instances (t2.micro)"}},
		{"stop disabled on spot", map[string]any{"spot_price": "auto", "disable_stop_instance": true}, []string{"disable_stop_instance", "spot"}},
		{"nitro enclave on spot", map[string]any{"spot_price": "auto", "enable_nitro_enclave": true}, []string{"enable_nitro_enclave", "spot"}},
		{"unlimited t2 spot", map[string]any{"spot_price": "auto", "instance_type": "t2.micro", "enable_unlimited_credits": true}, []string{"enable_unlimited_credits", "T2"}},
		{"license arn", map[string]any{"license_specifications": []map[string]any{{"license_configuration_request": map[string]any{"license_configuration_arn": "lic-1"}}}}, []string{"license_specifications[0].license_configuration_request.license_configuration_arn", "lic-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.raw {
				raw[k] = v
			}
			_, errs := prepareRaw(t, raw)
			msg := joinErrs(errs)
			if len(errs) == 0 {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("errors %q do not mention %q", msg, w)
				}
			}
		})
	}
}

func TestInstanceSettingsLaunch(t *testing.T) {
	raw := validRaw()
	raw["instance_type"] = "t3.large"
	raw["enable_t2_unlimited"] = true
	raw["shutdown_behavior"] = "terminate"
	raw["tenancy"] = "dedicated"
	raw["capacity_reservation_preference"] = "none"
	raw["enable_nitro_enclave"] = true
	raw["license_specifications"] = []map[string]any{{"license_configuration_request": map[string]any{"license_configuration_arn": licenseARN}}}
	c, errs := prepareRaw(t, raw)
	if len(errs) > 0 {
		t.Fatal(joinErrs(errs))
	}
	if w := strings.Join(c.RunConfig.Warnings(), "\n"); !strings.Contains(w, "enable_t2_unlimited is deprecated") || !strings.Contains(w, "tenancy is deprecated") {
		t.Errorf("warnings %q, want the deprecated names", c.RunConfig.Warnings())
	}
	ls := c.InstanceSettings.Launch()
	if ls == nil || !ls.UnlimitedCredits || ls.ShutdownBehavior != "terminate" || ls.Tenancy != "dedicated" ||
		ls.CapacityReservationPreference != "none" || !ls.NitroEnclave || len(ls.LicenseConfigurationARNs) != 1 {
		t.Errorf("launch settings %+v", ls)
	}

	c, errs = prepareRaw(t, validRaw())
	if len(errs) > 0 {
		t.Fatal(joinErrs(errs))
	}
	if ls := c.InstanceSettings.Launch(); ls != nil {
		t.Errorf("launch settings %+v without any option, want nil", ls)
	}
}
