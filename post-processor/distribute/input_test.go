//go:build unix

package distribute

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseArtifactID(t *testing.T) {
	tests := []struct {
		id      string
		want    []RegionAMI
		wantErr string
	}{
		{id: "us-east-1:ami-0123abcd,eu-west-1:ami-0456abcd", want: []RegionAMI{{"eu-west-1", "ami-0456abcd"}, {"us-east-1", "ami-0123abcd"}}},
		{id: "us-east-1:ami-0123456789abcdef0", want: []RegionAMI{{"us-east-1", "ami-0123456789abcdef0"}}},
		{id: " us-gov-west-1:ami-12345678 , ap-southeast-2:ami-abcdef01 ", want: []RegionAMI{{"ap-southeast-2", "ami-abcdef01"}, {"us-gov-west-1", "ami-12345678"}}},
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
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseArtifactID(%q) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
}

func FuzzParseArtifactID(f *testing.F) {
	for _, s := range []string{"us-east-1:ami-0123abcd,eu-west-1:ami-0456abcd", "Null", "", ",,", "a:b:c", "us-east-1:ami-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		amis, err := ParseArtifactID(id)
		if err != nil {
			return
		}
		if len(amis) == 0 {
			t.Fatalf("ParseArtifactID(%q) returned no AMI and no error", id)
		}
		for _, a := range amis {
			if !strings.HasPrefix(a.ImageID, "ami-") || a.Region == "" {
				t.Fatalf("ParseArtifactID(%q) returned %v", id, a)
			}
		}
	})
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
