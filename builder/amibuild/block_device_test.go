//go:build unix

package amibuild

import (
	"strings"
	"testing"
)

func TestBlockDeviceGP3Limits(t *testing.T) {
	tests := []struct {
		name       string
		iops, tput int32
		wantErr    string
	}{
		{"the smallest", 3000, 125, ""},
		{"the largest", 80000, 2000, ""},
		{"above the old limits", 16001, 1001, ""},
		{"too many iops", 80001, 0, "iops: 80001 is out of range for gp3; valid is 3000 to 80000"},
		{"too much throughput", 0, 2001, "throughput: 2001 MiB/s is out of range; valid is 125 to 2000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := BlockDevice{DeviceName: "/dev/sdb", VolumeType: "gp3", VolumeSize: 100, IOPS: tc.iops, Throughput: tc.tput}
			errs := b.Prepare("ami_block_device_mappings[0]")
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Errorf("errors: %v", errs)
			case tc.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.wantErr)):
				t.Errorf("errors = %v, want one containing %q", errs, tc.wantErr)
			}
		})
	}
}
