//go:build unix

package awscfg

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// fakeRegions answers DescribeRegions with a function and logs each call
// as "DescribeRegions all=<bool> <names>".
type fakeRegions struct {
	describe func(*ec2.DescribeRegionsInput) (*ec2.DescribeRegionsOutput, error)
	calls    []string
}

var _ DescribeRegionsAPI = (*fakeRegions)(nil)

func (f *fakeRegions) DescribeRegions(_ context.Context, in *ec2.DescribeRegionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	f.calls = append(f.calls, strings.TrimSpace("DescribeRegions all="+boolString(aws.ToBool(in.AllRegions))+" "+strings.Join(in.RegionNames, ",")))
	return f.describe(in)
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func regions(rs ...types.Region) func(*ec2.DescribeRegionsInput) (*ec2.DescribeRegionsOutput, error) {
	return func(*ec2.DescribeRegionsInput) (*ec2.DescribeRegionsOutput, error) {
		return &ec2.DescribeRegionsOutput{Regions: rs}, nil
	}
}

func region(name, status string) types.Region {
	return types.Region{RegionName: aws.String(name), OptInStatus: aws.String(status), Endpoint: aws.String("ec2." + name + ".amazonaws.com")}
}

func TestCheckRegion(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "no", Fault: smithy.FaultClient}
	tests := []struct {
		name       string
		region     string
		describe   func(*ec2.DescribeRegionsInput) (*ec2.DescribeRegionsOutput, error)
		wantCalls  []string
		wantRegion *RegionError // a *RegionError equal to this
		wantErr    string       // substring of another error
		wantCode   string
	}{
		{
			name:      "enabled by default",
			region:    "us-east-1",
			describe:  regions(region("us-east-1", "opt-in-not-required")),
			wantCalls: []string{"DescribeRegions all=true us-east-1"},
		},
		{
			name:      "opted in",
			region:    "af-south-1",
			describe:  regions(region("af-south-1", "opted-in")),
			wantCalls: []string{"DescribeRegions all=true af-south-1"},
		},
		{
			name:       "not opted in",
			region:     "af-south-1",
			describe:   regions(region("af-south-1", OptInNotOptedIn)),
			wantCalls:  []string{"DescribeRegions all=true af-south-1"},
			wantRegion: &RegionError{Region: "af-south-1", OptInStatus: OptInNotOptedIn},
		},
		{
			name:       "does not exist",
			region:     "xx-nowhere-1",
			describe:   regions(),
			wantCalls:  []string{"DescribeRegions all=true xx-nowhere-1"},
			wantRegion: &RegionError{Region: "xx-nowhere-1"},
		},
		{
			name:       "other regions in the answer are ignored",
			region:     "xx-nowhere-1",
			describe:   regions(region("us-east-1", "opt-in-not-required")),
			wantCalls:  []string{"DescribeRegions all=true xx-nowhere-1"},
			wantRegion: &RegionError{Region: "xx-nowhere-1"},
		},
		{
			name:   "call fails",
			region: "eu-west-1",
			describe: func(*ec2.DescribeRegionsInput) (*ec2.DescribeRegionsOutput, error) {
				return nil, denied
			},
			wantCalls: []string{"DescribeRegions all=true eu-west-1"},
			wantErr:   "check region eu-west-1: describe regions",
			wantCode:  "UnauthorizedOperation",
		},
		{
			name:    "not a region name",
			region:  "US East",
			wantErr: `check region "US East": not a region name`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRegions{describe: tc.describe}
			var logged int
			out, err := CheckRegion(context.Background(), f, &CheckRegionInput{Region: tc.region}, func(o *Options) {
				o.Logf = func(string, ...any) { logged++ }
			})
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.calls, tc.wantCalls)
			}
			var re *RegionError
			switch {
			case tc.wantRegion != nil:
				if !errors.As(err, &re) || *re != *tc.wantRegion {
					t.Fatalf("CheckRegion = %v, want %#v", err, tc.wantRegion)
				}
				if !strings.Contains(err.Error(), tc.region) {
					t.Errorf("error %q does not name the region", err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.As(err, &re) {
					t.Fatalf("CheckRegion = %v, want a non-RegionError containing %q", err, tc.wantErr)
				}
				var ae smithy.APIError
				if tc.wantCode != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tc.wantCode) {
					t.Errorf("error %v does not wrap code %s", err, tc.wantCode)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.Region.RegionName) != tc.region || logged != 1 {
					t.Errorf("CheckRegion = %+v (%d log lines), want region %s", out.Region, logged, tc.region)
				}
			}
		})
	}
}

func TestRegionErrorMessage(t *testing.T) {
	tests := []struct {
		err  RegionError
		want string
	}{
		{RegionError{Region: "xx-nowhere-1"}, "region xx-nowhere-1 does not exist"},
		{RegionError{Region: "af-south-1", OptInStatus: "not-opted-in"}, `region af-south-1 is not enabled for this account (opt-in status "not-opted-in")`},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// TestCheckRegionAlso checks several regions with one call and names the
// first one that is missing or not enabled.
func TestCheckRegionAlso(t *testing.T) {
	f := &fakeRegions{describe: regions(region("us-east-1", "opt-in-not-required"), region("eu-west-1", "opt-in-not-required"), region("af-south-1", OptInNotOptedIn))}
	out, err := CheckRegion(context.Background(), f, &CheckRegionInput{Region: "us-east-1", Also: []string{"eu-west-1"}})
	if err != nil || aws.ToString(out.Region.RegionName) != "us-east-1" || len(out.Also) != 1 || aws.ToString(out.Also[0].RegionName) != "eu-west-1" {
		t.Errorf("CheckRegion = %+v, %v", out, err)
	}
	_, err = CheckRegion(context.Background(), f, &CheckRegionInput{Region: "us-east-1", Also: []string{"eu-west-1", "af-south-1", "xx-nowhere-1"}})
	var re *RegionError
	if !errors.As(err, &re) || *re != (RegionError{Region: "af-south-1", OptInStatus: OptInNotOptedIn}) {
		t.Errorf("err = %v, want af-south-1 not enabled", err)
	}
	if want := []string{"DescribeRegions all=true us-east-1,eu-west-1", "DescribeRegions all=true us-east-1,eu-west-1,af-south-1,xx-nowhere-1"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls = %q, want %q", f.calls, want)
	}
	if _, err := CheckRegion(context.Background(), f, &CheckRegionInput{Region: "us-east-1", Also: []string{"EU"}}); err == nil || !strings.Contains(err.Error(), `"EU": not a region name`) {
		t.Errorf("bad name in Also: %v", err)
	}
}
