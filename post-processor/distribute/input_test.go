//go:build unix

package distribute

import (
	"reflect"
	"testing"
)

// TestInputAMIs checks that the AMIs of the input artifact come sorted by
// region, and that a malformed ID is refused; the parsing rules
// themselves are tested with amiconfig.ParseArtifactID.
func TestInputAMIs(t *testing.T) {
	tests := map[string][]RegionAMI{
		"us-east-1:ami-0123abcd,eu-west-1:ami-0456abcd":              {{"eu-west-1", "ami-0456abcd"}, {"us-east-1", "ami-0123abcd"}},
		"us-east-1:ami-0123456789abcdef0":                            {{"us-east-1", "ami-0123456789abcdef0"}},
		" us-gov-west-1:ami-12345678 , ap-southeast-2:ami-abcdef01 ": {{"ap-southeast-2", "ami-abcdef01"}, {"us-gov-west-1", "ami-12345678"}},
	}
	for id, want := range tests {
		if got, err := inputAMIs(id); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("inputAMIs(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
	for _, id := range []string{"", "/tmp/output/box.tar.gz", "us-east-1:ami-11111111,us-east-1:ami-22222222"} {
		if got, err := inputAMIs(id); err == nil {
			t.Errorf("inputAMIs(%q) = %v; want an error", id, got)
		}
	}
}

func TestPickSource(t *testing.T) {
	amis := []RegionAMI{{"eu-west-1", "ami-11111111"}, {"us-east-1", "ami-22222222"}}
	tests := []struct {
		preferred string
		want      int
	}{
		{"us-east-1", 1},
		{"eu-west-1", 0},
		{"ap-south-1", 0},
	}
	for _, tc := range tests {
		if got := pickSource(amis, tc.preferred); got != tc.want {
			t.Errorf("pickSource(%q) = %d, want %d", tc.preferred, got, tc.want)
		}
	}
}
