package bundle

import (
	"fmt"
	"strings"
)

// ParseBlockDeviceMappings parses block device mappings in the original
// tools' form, "virtual=device" pairs separated by commas, e.g.
// "ami=sda1,root=/dev/sda1,ephemeral0=sdb,swap=sda3". An empty string gives
// no mappings.
func ParseBlockDeviceMappings(s string) ([]BlockDeviceMapping, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []BlockDeviceMapping
	seen := map[string]bool{}
	for _, pair := range strings.Split(s, ",") {
		v, d, ok := strings.Cut(strings.TrimSpace(pair), "=")
		v, d = strings.TrimSpace(v), strings.TrimSpace(d)
		if !ok || v == "" || d == "" {
			return nil, fmt.Errorf("block device mapping %q: want virtual=device", pair)
		}
		if seen[v] {
			return nil, fmt.Errorf("block device mapping: virtual name %q appears twice", v)
		}
		seen[v] = true
		out = append(out, BlockDeviceMapping{Virtual: v, Device: d})
	}
	return out, nil
}
