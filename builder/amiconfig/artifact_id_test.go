//go:build unix

package amiconfig

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParseArtifactID(t *testing.T) {
	tests := []struct {
		id      string
		want    ArtifactID
		regions []string
		wantErr string
	}{
		{id: "us-east-1:ami-0123abcd,eu-west-1:ami-0456abcd", want: ArtifactID{"eu-west-1": "ami-0456abcd", "us-east-1": "ami-0123abcd"}, regions: []string{"eu-west-1", "us-east-1"}},
		{id: "us-east-1:ami-0123456789abcdef0", want: ArtifactID{"us-east-1": "ami-0123456789abcdef0"}, regions: []string{"us-east-1"}},
		{id: " us-gov-west-1:ami-12345678 , ap-southeast-2:ami-abcdef01 ", want: ArtifactID{"ap-southeast-2": "ami-abcdef01", "us-gov-west-1": "ami-12345678"}, regions: []string{"ap-southeast-2", "us-gov-west-1"}},
		{id: "", wantErr: "empty"},
		{id: "Null", wantErr: "not region:ami-"},
		{id: "ami-0123456789abcdef0", wantErr: "not region:ami-"},
		{id: "us-east-1:ami-0123abcd,", wantErr: "part 2"},
		{id: "us-east-1:snap-123", wantErr: `"snap-123" is not an AMI ID`},
		{id: "us-east-1:ami-XYZ", wantErr: "not an AMI ID"},
		{id: "useast1:ami-0123abcd", wantErr: "region name"},
		{id: "us-east-1:ami-11111111,us-east-1:ami-22222222", wantErr: "more than once"},
		{id: "/tmp/output/box.tar.gz", wantErr: "not region:ami-"},
		{id: "us-east-1:ami-11111111:extra", wantErr: "not an AMI ID"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			got, err := ParseArtifactID(tc.id)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseArtifactID(%q) = %v, %v; want error with %q", tc.id, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseArtifactID(%q): %v", tc.id, err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("ParseArtifactID(%q) = %v, want %v", tc.id, got, tc.want)
			}
			if !slices.Equal(got.Regions(), tc.regions) {
				t.Errorf("ParseArtifactID(%q).Regions() = %v, want %v", tc.id, got.Regions(), tc.regions)
			}
		})
	}
}

// TestArtifactIDString pins the text form downstream users parse: every
// AMI as region:ami, comma-separated, sorted by region, no spaces. It
// round-trips through ParseArtifactID.
func TestArtifactIDString(t *testing.T) {
	tests := []struct {
		id   ArtifactID
		want string
	}{
		{ArtifactID{}, ""},
		{ArtifactID{"us-east-1": "ami-0123abcd"}, "us-east-1:ami-0123abcd"},
		{
			ArtifactID{"us-west-2": "ami-0bbbbbbbbbbbbbbbb", "eu-west-1": "ami-0aaaaaaaaaaaaaaaa", "ap-southeast-2": "ami-0cccccccccccccccc"},
			"ap-southeast-2:ami-0cccccccccccccccc,eu-west-1:ami-0aaaaaaaaaaaaaaaa,us-west-2:ami-0bbbbbbbbbbbbbbbb",
		},
	}
	for _, tc := range tests {
		got := tc.id.String()
		if got != tc.want {
			t.Errorf("%v.String() = %q, want %q", map[string]string(tc.id), got, tc.want)
		}
		if len(tc.id) == 0 {
			continue
		}
		back, err := ParseArtifactID(got)
		if err != nil || !maps.Equal(back, tc.id) {
			t.Errorf("ParseArtifactID(%q) = %v, %v; want %v", got, back, err, tc.id)
		}
	}
}

func FuzzParseArtifactID(f *testing.F) {
	for _, s := range []string{"us-east-1:ami-0123abcd,eu-west-1:ami-0456abcd", "Null", "", ",,", "a:b:c", "us-east-1:ami-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseArtifactID(s)
		if err != nil {
			return
		}
		if len(id) == 0 {
			t.Fatalf("ParseArtifactID(%q) returned no AMI and no error", s)
		}
		for region, ami := range id {
			if !strings.HasPrefix(ami, "ami-") || region == "" {
				t.Fatalf("ParseArtifactID(%q) returned %s:%s", s, region, ami)
			}
		}
	})
}
