package amibuild

import "testing"

// TestCheckTagsTemplatedKey: a key that is only a build variable is valid,
// although the placeholder build data renders some of them empty.
func TestCheckTagsTemplatedKey(t *testing.T) {
	tags := map[string]string{"{{ .SourceAMIName }}": "v", "{{ .SourceAMIOwnerName }}": "w"}
	if errs := checkTags(nil, "run_tags", tags); len(errs) != 0 {
		t.Errorf("checkTags = %v, want no errors", errs)
	}
}
