//go:generate packer-sdc mapstructure-to-hcl2 -type SourceAMIFilter
//go:generate packer-sdc struct-markdown

package amiconfig

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

var (
	amiIDRE = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	ownerRE = regexp.MustCompile(`^([0-9]{12}|self|amazon|aws-marketplace|aws-backup-vault)$`)
)

// ValidAMIID reports whether s looks like an AMI ID ("ami-" and 8 or 17 hex
// digits).
func ValidAMIID(s string) bool { return amiIDRE.MatchString(s) }

// SourceAMIFilter selects the source AMI with DescribeImages filters.
type SourceAMIFilter struct {
	// DescribeImages filters, name to value, for example
	// `name = "debian-12-*"` or `"tag:Role" = "base"`. Wildcards `*` and
	// `?` are allowed in values.
	Filters map[string]string `mapstructure:"filters" required:"false"`
	// The owners to search: account IDs, `self`, `amazon` or
	// `aws-marketplace`. Strongly recommended, so that an image published
	// by somebody else cannot match.
	Owners []string `mapstructure:"owners" required:"false"`
	// Pick the newest image when several match. Without it, a filter that
	// matches more than one image is an error.
	MostRecent bool `mapstructure:"most_recent" required:"false"`
	// Also consider deprecated images.
	IncludeDeprecated bool `mapstructure:"include_deprecated" required:"false"`
}

// Empty reports whether no filter option is set.
func (f *SourceAMIFilter) Empty() bool {
	return len(f.Filters) == 0 && len(f.Owners) == 0 && !f.MostRecent && !f.IncludeDeprecated
}

// Validate checks a source_ami_filter block of a builder or of the
// post-processor: nothing when it is empty; otherwise it must narrow the
// search (filters, owners or both), with named, non-empty filters and
// owners that are account IDs or the aliases EC2 knows.
func (f *SourceAMIFilter) Validate() []error {
	if f.Empty() {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(f.Filters) == 0 && len(f.Owners) == 0 {
		add("source_ami_filter: set filters, owners or both; an empty filter would match any public image")
	}
	for _, k := range slices.Sorted(maps.Keys(f.Filters)) {
		if strings.TrimSpace(k) == "" {
			add("source_ami_filter.filters: a filter name is empty")
		}
		if f.Filters[k] == "" {
			add("source_ami_filter.filters: the value of %q is empty", k)
		}
	}
	for i, o := range f.Owners {
		if !Matches(ownerRE, o) {
			add("source_ami_filter.owners[%d]: %q is invalid; valid are 12-digit account IDs, \"self\", \"amazon\", \"aws-marketplace\" and \"aws-backup-vault\"", i, o)
		}
	}
	return errs
}

// FindInput is the image.FindInput that looks up the AMI a configuration
// names in region: sourceAMI when it is set (even when it is deprecated, as
// it is named explicitly), else the AMI the filter selects.
func (f *SourceAMIFilter) FindInput(sourceAMI, region string) *image.FindInput {
	if sourceAMI != "" {
		return &image.FindInput{ImageIDs: []string{sourceAMI}, IncludeDeprecated: true, Region: region}
	}
	in := &image.FindInput{
		Owners:            f.Owners,
		MostRecent:        f.MostRecent,
		IncludeDeprecated: f.IncludeDeprecated,
		Filters:           make(map[string][]string, len(f.Filters)),
		Region:            region,
	}
	for k, v := range f.Filters {
		in.Filters[k] = []string{v}
	}
	return in
}
