package amiconfig

import (
	"regexp"

	"github.com/hashicorp/packer-plugin-sdk/hcl2helper"
)

// unknownValue is what Packer passes for an HCL2 value it cannot know yet:
// during `packer validate`, the outputs of data sources (amazon-ami,
// amazon-parameterstore, HCP Packer's, null …) and anything computed from
// them.
const unknownValue = "<unknown>"

// Unknown reports whether s is a value Packer has not resolved yet
// ("<unknown>" from HCL2, or the SDK's UnknownVariableValue sentinel).
// Validation accepts such a value as it is: `packer build` resolves it
// before Prepare runs again, and the value is checked then.
func Unknown(s string) bool { return s == unknownValue || s == hcl2helper.UnknownVariableValue }

// Matches reports whether s matches re, or is not known yet (Unknown).
func Matches(re *regexp.Regexp, s string) bool { return Unknown(s) || re.MatchString(s) }
