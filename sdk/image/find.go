package image

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// FindInput selects images. At least one of ImageIDs, Filters and Owners
// must be set.
type FindInput struct {
	// ImageIDs restricts the search to these IDs.
	ImageIDs []string
	// Filters are DescribeImages filters, e.g. {"name": {"ubuntu/images/*"}}.
	// Unless a "state" filter is given, only available images are found.
	Filters map[string][]string
	// Owners are account IDs or "self", "amazon", "aws-marketplace".
	Owners []string
	// MostRecent picks the image with the latest CreationDate when several
	// match. Without it, several matches are an error.
	MostRecent bool
	// IncludeDeprecated also finds deprecated images. Images named in
	// ImageIDs are found whether deprecated or not.
	IncludeDeprecated bool
	// Region is used in messages; "" means the client's region.
	Region string
}

// FindOutput is the result of Find.
type FindOutput struct {
	Image types.Image
}

// ErrNotFound is wrapped by Find's error when no image matches.
var ErrNotFound = errors.New("no image matches")

// ErrMultiple is wrapped by Find's error when several images match and
// MostRecent is false.
var ErrMultiple = errors.New("several images match")

// Find returns the one image selected by in, reading every page of
// DescribeImages. Its errors say what was searched and wrap ErrNotFound or
// ErrMultiple when the selection did not yield exactly one image.
func Find(ctx context.Context, api DescribeImagesAPI, in *FindInput, optFns ...func(*Options)) (*FindOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, in.Region)
	what := in.describe()
	if len(in.ImageIDs) == 0 && len(in.Filters) == 0 && len(in.Owners) == 0 {
		return nil, fmt.Errorf("find image in %s: give image IDs, filters or owners", region)
	}
	req := &ec2.DescribeImagesInput{
		ImageIds: in.ImageIDs,
		Owners:   in.Owners,
	}
	if in.IncludeDeprecated {
		req.IncludeDeprecated = aws.Bool(true)
	}
	filters := maps.Clone(in.Filters)
	if _, ok := filters["state"]; !ok && len(in.ImageIDs) == 0 {
		if filters == nil {
			filters = map[string][]string{}
		}
		filters["state"] = []string{string(types.ImageStateAvailable)}
	}
	for _, name := range slices.Sorted(maps.Keys(filters)) {
		req.Filters = append(req.Filters, types.Filter{Name: aws.String(name), Values: filters[name]})
	}
	if len(in.ImageIDs) == 0 {
		// DescribeImages pages only when asked to (MaxResults cannot be
		// combined with ImageIds).
		req.MaxResults = aws.Int32(1000)
	}
	o.logf("looking up image %s in %s", what, region)

	var images []types.Image
	p := ec2.NewDescribeImagesPaginator(api, req)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find image %s in %s: %w", what, region, err)
		}
		images = append(images, page.Images...)
	}
	switch {
	case len(images) == 0:
		return nil, fmt.Errorf("find image %s in %s: %w", what, region, ErrNotFound)
	case len(images) > 1 && !in.MostRecent:
		ids := make([]string, 0, 5)
		for _, img := range images[:min(5, len(images))] {
			ids = append(ids, aws.ToString(img.ImageId))
		}
		more := ""
		if len(images) > 5 {
			more = ", ..."
		}
		return nil, fmt.Errorf("find image %s in %s: %w (%d: %s%s); narrow the filters or ask for the most recent",
			what, region, ErrMultiple, len(images), strings.Join(ids, ", "), more)
	}
	img := slices.MaxFunc(images, compareCreation)
	o.logf("found image %s (%s) in %s", aws.ToString(img.ImageId), aws.ToString(img.Name), region)
	return &FindOutput{Image: img}, nil
}

// compareCreation orders images by CreationDate, then by ID so the choice
// is deterministic.
func compareCreation(a, b types.Image) int {
	return cmp.Or(
		creationTime(a).Compare(creationTime(b)),
		strings.Compare(aws.ToString(a.ImageId), aws.ToString(b.ImageId)),
	)
}

func creationTime(img types.Image) time.Time {
	t, err := time.Parse(time.RFC3339, aws.ToString(img.CreationDate))
	if err != nil {
		return time.Time{}
	}
	return t
}

// describe renders the selection for messages.
func (in *FindInput) describe() string {
	var parts []string
	if len(in.ImageIDs) > 0 {
		parts = append(parts, "ids "+strings.Join(in.ImageIDs, ","))
	}
	if len(in.Owners) > 0 {
		parts = append(parts, "owners "+strings.Join(in.Owners, ","))
	}
	for _, k := range slices.Sorted(maps.Keys(in.Filters)) {
		parts = append(parts, fmt.Sprintf("%s=%s", k, strings.Join(in.Filters[k], ",")))
	}
	if len(parts) == 0 {
		return "(no criteria)"
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// FindByNameInput names the images FindByName looks for.
type FindByNameInput struct {
	// Name is the exact image name. Required.
	Name string
	// Owners are the account IDs or aliases ("self", "amazon") that own
	// the images; nil means ["self"].
	Owners []string
}

// FindByNameOutput is the result of FindByName: the images it found.
type FindByNameOutput struct {
	// Images are the images found, oldest first; empty when none matched.
	Images []types.Image
}

// FindByName returns every image named exactly in.Name and owned by
// in.Owners, including deprecated and pending ones but not deregistered
// ones, oldest first. No match is not an error. No option changes its
// behaviour today; optFns is there for the uniform signature.
func FindByName(ctx context.Context, api DescribeImagesAPI, in *FindByNameInput, optFns ...func(*Options)) (*FindByNameOutput, error) {
	images, err := findByName(ctx, api, in.Name, in.Owners)
	if err != nil {
		return nil, err
	}
	return &FindByNameOutput{Images: images}, nil
}

func findByName(ctx context.Context, api DescribeImagesAPI, name string, owners []string) ([]types.Image, error) {
	region := awserr.Region(api, "")
	if name == "" {
		return nil, fmt.Errorf("find images by name in %s: empty name", region)
	}
	if len(owners) == 0 {
		owners = []string{"self"}
	}
	req := &ec2.DescribeImagesInput{
		Owners:            owners,
		Filters:           []types.Filter{{Name: aws.String("name"), Values: []string{name}}},
		IncludeDeprecated: aws.Bool(true),
		MaxResults:        aws.Int32(1000),
	}
	var images []types.Image
	p := ec2.NewDescribeImagesPaginator(api, req)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find images named %q owned by %s in %s: %w", name, strings.Join(owners, ","), region, err)
		}
		for _, img := range page.Images {
			// The name filter takes wildcards; keep exact matches only.
			if aws.ToString(img.Name) == name && img.State != types.ImageStateDeregistered {
				images = append(images, img)
			}
		}
	}
	slices.SortFunc(images, compareCreation)
	return images, nil
}
