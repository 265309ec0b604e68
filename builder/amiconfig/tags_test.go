package amiconfig

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// upperRender stands for template rendering: "{{x}}" fails, "{{n}}"
// renders to 200 characters, anything else is kept.
func upperRender(s string) (string, error) {
	switch s {
	case "{{x}}":
		return "", errors.New("bad template")
	case "{{n}}":
		return strings.Repeat("n", 200), nil
	case "{{e}}":
		return "", nil
	}
	return s, nil
}

func TestCheckTags(t *testing.T) {
	many := map[string]string{}
	for i := range 51 {
		many[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name string
		tags map[string]string
		want []string
	}{
		{"fine", map[string]string{"Name": "web", "Team": "x"}, nil},
		{"key rendering empty with placeholder data", map[string]string{"{{e}}": "v"}, nil},
		{"too many", many, []string{"tags: 51 tags; EC2 allows at most 50 per resource"}},
		{"empty key", map[string]string{" ": "v"}, []string{"tags: a tag key is empty"}},
		{"reserved prefix in any case", map[string]string{"AWS:owner": "v"}, []string{`tags: tag key "AWS:owner" uses the reserved prefix "aws:"`}},
		{"long key once rendered", map[string]string{"{{n}}": "v"}, []string{`tags: tag key "{{n}}" is longer than 128 characters`}},
		{"long value once rendered", map[string]string{"k": "{{n}}{{n}}"}, nil},
		{"bad key template", map[string]string{"{{x}}": "v"}, []string{`tags: tag key "{{x}}" is not a valid template: bad template`}},
		{"bad value template", map[string]string{"k": "{{x}}"}, []string{`tags: the value of tag "k" is not a valid template: bad template`}},
	}
	for _, tc := range tests {
		errs := CheckTags("tags", tc.tags, upperRender)
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: errors\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	long := CheckTags("tags", map[string]string{"k": strings.Repeat("v", 257)}, upperRender)
	if len(long) != 1 || long[0].Error() != `tags: the value of tag "k" is longer than 256 characters` {
		t.Errorf("a 257-character value: %v", long)
	}
}

func TestRenderTagsWith(t *testing.T) {
	got, err := RenderTagsWith("tags", map[string]string{"a": "1", "b": "{{n}}"}, upperRender)
	if err != nil || len(got) != 2 || got["a"] != "1" || len(got["b"]) != 200 {
		t.Errorf("RenderTagsWith = %v, %v", got, err)
	}
	if got, err := RenderTagsWith("tags", nil, upperRender); got != nil || err != nil {
		t.Errorf("no tags = %v, %v; want nil, nil", got, err)
	}
	dup := func(s string) (string, error) { return strings.ToLower(s), nil }
	if _, err := RenderTagsWith("tags", map[string]string{"Env": "a", "env": "b"}, dup); err == nil || err.Error() != `tags: two keys render to "env"` {
		t.Errorf("two keys rendering alike: %v", err)
	}
	if _, err := RenderTagsWith("snapshot_tags", map[string]string{"k": "{{x}}"}, upperRender); err == nil || err.Error() != `snapshot_tags: render value of "k": bad template` {
		t.Errorf("a bad value: %v", err)
	}
}
