//go:build unix

package amibuild

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestSpotConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]any // keys to set; a nil value deletes the key
		want []string       // substrings the errors must contain, one error each
	}{
		{"price not a number", map[string]any{"spot_price": "cheap"}, []string{`spot_price: "cheap" is not a price; valid are a price in US dollars per hour such as "0.05", "auto"`}},
		{"price negative", map[string]any{"spot_price": "-1"}, []string{`spot_price: "-1" is not a price`}},
		{"types and instance_type", map[string]any{"spot_price": "auto", "spot_instance_types": []string{"c5.large"}}, []string{"instance_type, spot_instance_types: set one of them, not both"}},
		{"types without price", map[string]any{"instance_type": nil, "spot_instance_types": []string{"c5.large"}}, []string{"spot_instance_types: only valid with spot_price"}},
		{"types with price 0", map[string]any{"instance_type": nil, "spot_price": "0", "spot_instance_types": []string{"c5.large"}}, []string{"spot_instance_types: only valid with spot_price"}},
		{"type malformed", map[string]any{"instance_type": nil, "spot_price": "auto", "spot_instance_types": []string{"c5.large", "big"}}, []string{`spot_instance_types[1]: "big" is not an instance type`}},
		{"type twice", map[string]any{"instance_type": nil, "spot_price": "auto", "spot_instance_types": []string{"c5.large", "c5.large"}}, []string{`spot_instance_types[1]: "c5.large" is listed twice`}},
		{"no type at all", map[string]any{"instance_type": nil, "spot_price": "auto"}, []string{"instance_type: required, for example \"t3.micro\" (or spot_instance_types for a spot instance)"}},
		{"allocation strategy", map[string]any{"spot_price": "auto", "spot_allocation_strategy": "cheapest"}, []string{`spot_allocation_strategy: "cheapest" is unknown; valid are price-capacity-optimized, capacity-optimized, diversified, lowest-price`}},
		{"spot tags on demand", map[string]any{"spot_tags": map[string]string{"a": "b"}}, []string{"spot_tags: only valid with spot_price"}},
		{"spot tag block on demand", map[string]any{"spot_price": "0", "spot_tag": []map[string]string{{"key": "a", "value": "b"}}}, []string{"spot_tags: only valid with spot_price"}},
		{"fleet tags on demand", map[string]any{"fleet_tags": map[string]string{"a": "b"}}, []string{"fleet_tags: only valid with spot_price"}},
		{"fleet tag twice", map[string]any{"spot_price": "auto", "fleet_tags": map[string]string{"a": "b"}, "fleet_tag": []map[string]string{{"key": "a", "value": "c"}}}, []string{`fleet_tags, fleet_tag: tag "a" is set in both`}},
		{"spot tag reserved", map[string]any{"spot_price": "auto", "spot_tags": map[string]string{"aws:x": "b"}}, []string{`spot_tags: tag key "aws:x" uses the reserved prefix`}},
		{"spot tag bad template", map[string]any{"spot_price": "auto", "spot_tags": map[string]string{"a": "{{ .SourceAMIID }}"}}, []string{`spot_tags: the value of tag "a" is not a valid template`}},
		{"block duration not hours", map[string]any{"spot_price": "auto", "block_duration_minutes": 90}, []string{"block_duration_minutes: 90 is not a multiple of 60"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				if v == nil {
					delete(raw, k)
				} else {
					raw[k] = v
				}
			}
			_, errs := prepareRaw(t, raw)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(errs), len(tc.want), joinErrs(errs))
			}
			for i, want := range tc.want {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %q does not contain %q", errs[i], want)
				}
			}
		})
	}
}

func TestSpotConfigValid(t *testing.T) {
	tests := []struct {
		name      string
		set       map[string]any
		spot      bool
		maxPrice  string
		spotTags  map[string]string
		fleetTags map[string]string
		warnings  []string
	}{
		{name: "on demand", set: map[string]any{}},
		{name: "price 0 is on demand", set: map[string]any{"spot_price": "0", "spot_allocation_strategy": "diversified"}},
		{name: "auto", set: map[string]any{"spot_price": "auto"}, spot: true},
		{name: "price", set: map[string]any{"spot_price": "0.0416"}, spot: true, maxPrice: "0.0416"},
		{
			name: "instance types, strategy, tags and blocks",
			set: map[string]any{
				"instance_type": nil, "spot_price": "auto", "spot_instance_types": []string{"c6i.xlarge", "c5.xlarge"},
				"spot_allocation_strategy": "price-capacity-optimized",
				"spot_tags":                map[string]string{"Name": "{{ .SourceAMIName }}"},
				"spot_tag":                 []map[string]string{{"key": "Team", "value": "data"}},
				"fleet_tag":                []map[string]string{{"key": "Fleet", "value": "build"}},
			},
			spot:      true,
			spotTags:  map[string]string{"Name": "{{ .SourceAMIName }}", "Team": "data"},
			fleetTags: map[string]string{"Fleet": "build"},
		},
		{name: "price not known yet", set: map[string]any{"spot_price": unknownValue, "spot_tags": map[string]string{"a": "b"}}, spot: true, maxPrice: unknownValue, spotTags: map[string]string{"a": "b"}},
		{
			name:     "deprecated options warn",
			set:      map[string]any{"spot_price": "auto", "spot_price_auto_product": "Linux/UNIX (Amazon VPC)", "block_duration_minutes": 120},
			spot:     true,
			warnings: []string{"spot_price_auto_product is deprecated and ignored", "block_duration_minutes is deprecated and ignored"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				if v == nil {
					delete(raw, k)
				} else {
					raw[k] = v
				}
			}
			c, errs := prepareRaw(t, raw)
			if len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%s", joinErrs(errs))
			}
			if c.IsSpotInstance() != tc.spot || c.SpotMaxPrice() != tc.maxPrice {
				t.Errorf("spot %v max price %q, want %v %q", c.IsSpotInstance(), c.SpotMaxPrice(), tc.spot, tc.maxPrice)
			}
			if !maps.Equal(c.SpotTags, tc.spotTags) && (len(c.SpotTags) > 0 || len(tc.spotTags) > 0) {
				t.Errorf("spot tags %v, want %v", c.SpotTags, tc.spotTags)
			}
			if !maps.Equal(c.FleetTags, tc.fleetTags) && (len(c.FleetTags) > 0 || len(tc.fleetTags) > 0) {
				t.Errorf("fleet tags %v, want %v", c.FleetTags, tc.fleetTags)
			}
			w := c.SpotWarnings()
			if len(w) != len(tc.warnings) {
				t.Fatalf("warnings %q, want %d", w, len(tc.warnings))
			}
			for i, want := range tc.warnings {
				if !strings.Contains(w[i], want) {
					t.Errorf("warning %q does not contain %q", w[i], want)
				}
			}
			if got := slices.Clone(c.SpotInstanceTypes); len(got) > 0 && c.InstanceType != "" {
				t.Errorf("instance_type %q and spot_instance_types %v are both set", c.InstanceType, got)
			}
		})
	}
}
