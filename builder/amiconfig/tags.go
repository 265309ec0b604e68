package amiconfig

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// EC2's limits on the tags of one resource.
const (
	maxTags        = 50
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// tagKeyForbidden is the key prefix AWS reserves for its own tags.
const tagKeyForbidden = "aws:"

// CheckTags validates the tags option field of a builder or of the
// post-processor before anything runs. Keys and values are templates:
// render turns each into its text with placeholder data (an error is a
// template that cannot render). There may be at most 50 tags; each key
// must be non-empty as written (placeholder data may render a good
// template empty), and once rendered without the prefix "aws:" that AWS
// reserves and at most 128 characters; each rendered value at most 256.
func CheckTags(field string, tags map[string]string, render func(string) (string, error)) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(tags) > maxTags {
		add("%s: %d tags; EC2 allows at most %d per resource", field, len(tags), maxTags)
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		rk, err := render(k)
		if err != nil {
			add("%s: tag key %q is not a valid template: %w", field, k, err)
			continue
		}
		switch {
		case strings.TrimSpace(k) == "":
			add("%s: a tag key is empty", field)
		case strings.HasPrefix(strings.ToLower(rk), tagKeyForbidden):
			add("%s: tag key %q uses the reserved prefix \"aws:\"", field, k)
		case len(rk) > maxTagKeyLen:
			add("%s: tag key %q is longer than %d characters", field, k, maxTagKeyLen)
		}
		rv, err := render(tags[k])
		if err != nil {
			add("%s: the value of tag %q is not a valid template: %w", field, k, err)
			continue
		}
		if len(rv) > maxTagValueLen {
			add("%s: the value of tag %q is longer than %d characters", field, k, maxTagValueLen)
		}
	}
	return errs
}

// RenderTagsWith renders the keys and values of the tags option field
// with render, in key order; two keys that render to the same text are an
// error. It returns nil for no tags.
func RenderTagsWith(field string, tags map[string]string, render func(string) (string, error)) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		rk, err := render(k)
		if err != nil {
			return nil, fmt.Errorf("%s: render key %q: %w", field, k, err)
		}
		rv, err := render(tags[k])
		if err != nil {
			return nil, fmt.Errorf("%s: render value of %q: %w", field, k, err)
		}
		if _, dup := out[rk]; dup {
			return nil, fmt.Errorf("%s: two keys render to %q", field, rk)
		}
		out[rk] = rv
	}
	return out, nil
}
