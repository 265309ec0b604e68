//go:build unix

package amibuild

import (
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
)

// TestValidAMIID pins the one AMI ID rule the builders and the
// post-processor share: "ami-" and 8 or 17 lower-case hex digits, the two
// lengths EC2 has issued.
func TestValidAMIID(t *testing.T) {
	for id, want := range map[string]bool{
		"ami-0123abcd":           true,
		"ami-0123456789abcdef0":  true,
		"ami-0123abc":            false, // 7 digits
		"ami-0123abcde":          false, // 9
		"ami-0123456789abcdef":   false, // 16
		"ami-0123456789abcdef01": false, // 18
		"ami-0123ABCD":           false,
		"ami-":                   false,
		"snap-0123abcd":          false,
		" ami-0123abcd":          false,
	} {
		if got := amiconfig.ValidAMIID(id); got != want {
			t.Errorf("ValidAMIID(%q) = %v, want %v", id, got, want)
		}
	}
}
