package awscfg

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
)

// DescribeRegionsAPI is the client behaviour CheckRegion needs.
type DescribeRegionsAPI interface {
	DescribeRegions(ctx context.Context, in *ec2.DescribeRegionsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
}

var _ DescribeRegionsAPI = (*ec2.Client)(nil)

// Options are optional settings of this package's calls to AWS
// (CheckRegion).
type Options struct {
	// Logf, when set, receives progress messages. It never receives
	// secrets.
	Logf func(format string, args ...any)
}

func newOptions(optFns []func(*Options)) Options {
	return opts.Apply(optFns)
}

func (o Options) logf(format string, args ...any) {
	opts.Logf(o.Logf, format, args...)
}

// OptInNotOptedIn is the opt-in status of a region the account has not
// enabled.
const OptInNotOptedIn = "not-opted-in"

// CheckRegionInput names the region to check.
type CheckRegionInput struct {
	// Region is the region name, such as "eu-west-1". Required.
	Region string
	// Also are more regions checked with the same call, such as the
	// regions an AMI is copied to.
	Also []string
}

// CheckRegionOutput is the result of CheckRegion: the regions, which
// exist and are enabled.
type CheckRegionOutput struct {
	// Region is the region as EC2 describes it: name, endpoint and opt-in
	// status ("opt-in-not-required" or "opted-in").
	Region types.Region
	// Also describes the regions of CheckRegionInput.Also, in its order.
	Also []types.Region
}

// RegionError reports a region that does not exist, or that exists but is
// not enabled for the account. Use errors.As to tell it from a failure to
// ask.
type RegionError struct {
	// Region is the region name that was checked.
	Region string
	// OptInStatus is the region's opt-in status, such as "not-opted-in";
	// empty when the region does not exist.
	OptInStatus string
}

// Error says that the region does not exist or is not enabled.
func (e *RegionError) Error() string {
	if e.OptInStatus == "" {
		return fmt.Sprintf("region %s does not exist", e.Region)
	}
	return fmt.Sprintf("region %s is not enabled for this account (opt-in status %q)", e.Region, e.OptInStatus)
}

// CheckRegion checks that a region, and the regions of in.Also, exist and
// are enabled for the account, with one DescribeRegions call (all regions,
// filtered by name). api may be a client of any region; a client of the
// checked region also proves that its endpoint answers. A region that does
// not exist or is not enabled yields a *RegionError naming it (in.Region
// first, then in.Also in order); any other error is the failed call,
// wrapped.
func CheckRegion(ctx context.Context, api DescribeRegionsAPI, in *CheckRegionInput, optFns ...func(*Options)) (*CheckRegionOutput, error) {
	o := newOptions(optFns)
	names := append([]string{in.Region}, in.Also...)
	for _, n := range names {
		if !ValidRegion(n) {
			return nil, fmt.Errorf("check region %q: not a region name, like \"us-east-1\"", n)
		}
	}
	out, err := api.DescribeRegions(ctx, &ec2.DescribeRegionsInput{
		AllRegions:  aws.Bool(true),
		RegionNames: names,
	})
	if err != nil {
		return nil, fmt.Errorf("check region %s: describe regions: %w", in.Region, err)
	}
	found := map[string]types.Region{}
	for _, r := range out.Regions {
		found[aws.ToString(r.RegionName)] = r
	}
	res := &CheckRegionOutput{}
	for i, n := range names {
		r, ok := found[n]
		if !ok {
			return nil, &RegionError{Region: n}
		}
		status := aws.ToString(r.OptInStatus)
		o.logf("Region %s exists (opt-in status %q)", n, status)
		if status == OptInNotOptedIn {
			return nil, &RegionError{Region: n, OptInStatus: status}
		}
		if i == 0 {
			res.Region = r
		} else {
			res.Also = append(res.Also, r)
		}
	}
	return res, nil
}
