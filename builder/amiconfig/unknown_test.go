//go:build unix

package amiconfig

import (
	"regexp"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/hcl2helper"
)

func TestUnknownValuesPassFormatChecks(t *testing.T) {
	re := regexp.MustCompile(`^ami-[0-9a-f]{8}$`)
	tests := []struct {
		value         string
		unknown, fits bool
	}{
		{"<unknown>", true, true},
		{hcl2helper.UnknownVariableValue, true, true},
		{"ami-0123abcd", false, true},
		{"ami-zzzz", false, false},
		{"", false, false},
		{"unknown", false, false},
	}
	for _, tc := range tests {
		if got := Unknown(tc.value); got != tc.unknown {
			t.Errorf("Unknown(%q) = %v, want %v", tc.value, got, tc.unknown)
		}
		if got := Matches(re, tc.value); got != tc.fits {
			t.Errorf("Matches(%q) = %v, want %v", tc.value, got, tc.fits)
		}
	}
}
