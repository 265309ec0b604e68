//go:build unix

package distribute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type fakeBundles struct {
	mu      sync.Mutex
	deleted []string
	err     error
}

func (b *fakeBundles) DeleteBundle(ctx context.Context, region, loc string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.deleted = append(b.deleted, region+":"+loc)
	return nil
}

// newRetainCloud builds two regions of AMIs:
//
//	eu-west-1  app-10  1h   Team=web  protected (just made)
//	           app-9   2d   Team=web
//	           app-8   3d   Team=web  used by a running instance
//	           app-7   4d   Team=web  image of a launch template's latest version
//	           app-6   5d   Team=web
//	           app-5   6d   Team=web  used only by a terminated instance
//	           app-4   7d   Team=web  instance-store
//	           app-3   8d   Team=ops  outside the selector (tag)
//	           other-1 10d  Team=web  outside the selector (name)
//	           app-x   ?    Team=web  unreadable creation date
//	us-west-2  app-2   9d   Team=web
//	           app-1   11d  Team=web
func newRetainCloud(t *testing.T) *fakeCloud {
	t.Helper()
	c := newFakeCloud("eu-west-1", "us-west-2")
	add := func(region, id, name string, age time.Duration, team string, mod ...func(*types.Image)) {
		c.addImage(region, id, name, fixedNow.Add(-age), mod...)
		c.tags[id] = map[string]string{"Team": team}
	}
	day := 24 * time.Hour
	add("eu-west-1", "ami-a10", "app-10", time.Hour, "web")
	add("eu-west-1", "ami-a9", "app-9", 2*day, "web")
	add("eu-west-1", "ami-a8", "app-8", 3*day, "web")
	add("eu-west-1", "ami-a7", "app-7", 4*day, "web")
	add("eu-west-1", "ami-a6", "app-6", 5*day, "web")
	add("eu-west-1", "ami-a5", "app-5", 6*day, "web")
	add("eu-west-1", "ami-a4", "app-4", 7*day, "web", func(img *types.Image) {
		img.RootDeviceType = types.DeviceTypeInstanceStore
		img.ImageLocation = aws.String("bucket/app-4/image.manifest.xml")
		img.BlockDeviceMappings = nil
	})
	add("eu-west-1", "ami-a3", "app-3", 8*day, "ops")
	add("eu-west-1", "ami-o1", "other-1", 10*day, "web")
	add("eu-west-1", "ami-ax", "app-x", 0, "web", func(img *types.Image) { img.CreationDate = aws.String("yesterday") })
	add("us-west-2", "ami-b2", "app-2", 9*day, "web")
	add("us-west-2", "ami-b1", "app-1", 11*day, "web")
	c.instances["eu-west-1"] = []types.Instance{
		{InstanceId: aws.String("i-running"), ImageId: aws.String("ami-a8"), State: &types.InstanceState{Name: types.InstanceStateNameRunning}},
		{InstanceId: aws.String("i-gone"), ImageId: aws.String("ami-a5"), State: &types.InstanceState{Name: types.InstanceStateNameTerminated}},
	}
	c.templates["eu-west-1"] = []types.LaunchTemplateVersion{
		{LaunchTemplateId: aws.String("lt-1"), VersionNumber: aws.Int64(3), LaunchTemplateData: &types.ResponseLaunchTemplateData{ImageId: aws.String("ami-a7")}},
		{LaunchTemplateId: aws.String("lt-2"), VersionNumber: aws.Int64(1), LaunchTemplateData: &types.ResponseLaunchTemplateData{ImageId: aws.String("ami-zzz")}},
	}
	return c
}

func decisionSummary(ds Decisions) []string {
	var out []string
	for _, d := range ds {
		s := fmt.Sprintf("%s %s %s", d.Region, d.Name, d.Action)
		if d.Removed {
			s += " removed"
		}
		out = append(out, s)
	}
	return out
}

func TestRetain(t *testing.T) {
	sel := Selector{Name: "app-*", Tags: map[string]string{"Team": "web"}}
	keep2 := func(in *RetainInput) { in.KeepNewest = 2 }
	tests := []struct {
		name         string
		in           func(*RetainInput)
		setup        func(*fakeCloud, *fakeBundles)
		noBundles    bool
		want         []string
		wantRemoved  []string // images deregistered
		wantSnaps    bool     // their snapshots deleted
		wantBundles  []string
		wantErr      string
		wantWarning  string
		wantNoChange bool
	}{
		{
			name: "keep newest two, dry run",
			in:   func(in *RetainInput) { keep2(in); in.DryRun = true },
			want: []string{
				"eu-west-1 app-10 keep", "eu-west-1 app-9 keep", "eu-west-1 app-8 keep", "eu-west-1 app-7 keep",
				"eu-west-1 app-6 remove", "eu-west-1 app-5 remove", "eu-west-1 app-4 remove", "eu-west-1 app-x keep",
				"us-west-2 app-2 keep", "us-west-2 app-1 keep",
			},
			wantNoChange: true,
		},
		{
			name: "keep newest two",
			in:   keep2,
			want: []string{
				"eu-west-1 app-10 keep", "eu-west-1 app-9 keep", "eu-west-1 app-8 keep", "eu-west-1 app-7 keep",
				"eu-west-1 app-6 remove removed", "eu-west-1 app-5 remove removed", "eu-west-1 app-4 remove removed", "eu-west-1 app-x keep",
				"us-west-2 app-2 keep", "us-west-2 app-1 keep",
			},
			wantRemoved: []string{"ami-a4", "ami-a5", "ami-a6"}, wantSnaps: true,
			wantBundles: []string{"eu-west-1:bucket/app-4/image.manifest.xml"},
		},
		{
			name: "keep newest one and those younger than 5.5 days, keeping snapshots",
			in: func(in *RetainInput) {
				in.KeepNewest, in.KeepWithin, in.KeepSnapshots = 1, 132*time.Hour, true
			},
			want: []string{
				"eu-west-1 app-10 keep", "eu-west-1 app-9 keep", "eu-west-1 app-8 keep", "eu-west-1 app-7 keep",
				"eu-west-1 app-6 keep", "eu-west-1 app-5 remove removed", "eu-west-1 app-4 remove removed", "eu-west-1 app-x keep",
				"us-west-2 app-2 keep", "us-west-2 app-1 remove removed",
			},
			wantRemoved: []string{"ami-a4", "ami-a5", "ami-b1"},
			wantBundles: []string{"eu-west-1:bucket/app-4/image.manifest.xml"},
		},
		{
			name:      "instance-store AMI without a bundle deleter is kept",
			in:        keep2,
			noBundles: true,
			want: []string{
				"eu-west-1 app-10 keep", "eu-west-1 app-9 keep", "eu-west-1 app-8 keep", "eu-west-1 app-7 keep",
				"eu-west-1 app-6 remove removed", "eu-west-1 app-5 remove removed", "eu-west-1 app-4 remove", "eu-west-1 app-x keep",
				"us-west-2 app-2 keep", "us-west-2 app-1 keep",
			},
			wantRemoved: []string{"ami-a5", "ami-a6"}, wantSnaps: true,
			wantErr: `bundle "bucket/app-4/image.manifest.xml": no bundle deleter given`,
		},
		{
			name: "launch template check fails: nothing removed in that region",
			in:   func(in *RetainInput) { in.KeepNewest = 1 },
			setup: func(c *fakeCloud, _ *fakeBundles) {
				c.LaunchTemplatesFn = func(ctx context.Context, region string, in *ec2.DescribeLaunchTemplateVersionsInput) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
					if region == "eu-west-1" {
						return nil, apiErr("UnauthorizedOperation")
					}
					return &ec2.DescribeLaunchTemplateVersionsOutput{}, nil
				}
			},
			want: []string{
				"eu-west-1 app-10 keep", "eu-west-1 app-9 keep", "eu-west-1 app-8 keep", "eu-west-1 app-7 keep",
				"eu-west-1 app-6 keep", "eu-west-1 app-5 keep", "eu-west-1 app-4 keep", "eu-west-1 app-x keep",
				"us-west-2 app-2 keep", "us-west-2 app-1 remove removed",
			},
			wantRemoved: []string{"ami-b1"}, wantSnaps: true,
			wantErr: "find launch templates using the AMIs",
		},
		{
			name: "bundle deletion fails",
			in:   keep2,
			setup: func(c *fakeCloud, b *fakeBundles) {
				b.err = errors.New("access denied")
			},
			want: []string{
				"eu-west-1 app-10 keep", "eu-west-1 app-9 keep", "eu-west-1 app-8 keep", "eu-west-1 app-7 keep",
				"eu-west-1 app-6 remove removed", "eu-west-1 app-5 remove removed", "eu-west-1 app-4 remove removed", "eu-west-1 app-x keep",
				"us-west-2 app-2 keep", "us-west-2 app-1 keep",
			},
			wantRemoved: []string{"ami-a4", "ami-a5", "ami-a6"}, wantSnaps: true,
			wantErr: `delete bundle "bucket/app-4/image.manifest.xml" of ami-a4 in eu-west-1: access denied`,
		},
		{
			name: "bundle skipped by the deleter: a warning, not an error",
			in:   keep2,
			setup: func(c *fakeCloud, b *fakeBundles) {
				b.err = fmt.Errorf("bucket of another account: %w", ErrBundleSkipped)
			},
			want: []string{
				"eu-west-1 app-10 keep", "eu-west-1 app-9 keep", "eu-west-1 app-8 keep", "eu-west-1 app-7 keep",
				"eu-west-1 app-6 remove removed", "eu-west-1 app-5 remove removed", "eu-west-1 app-4 remove removed", "eu-west-1 app-x keep",
				"us-west-2 app-2 keep", "us-west-2 app-1 keep",
			},
			wantRemoved: []string{"ami-a4", "ami-a5", "ami-a6"}, wantSnaps: true,
			wantWarning: `bundle "bucket/app-4/image.manifest.xml" of ami-a4 left in place: bucket of another account`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newRetainCloud(t)
			b := &fakeBundles{}
			if tc.setup != nil {
				tc.setup(c, b)
			}
			in := &RetainInput{Regions: []string{"eu-west-1", "us-west-2"}, Selector: sel, Protect: []string{"ami-a10"}, Bundles: b}
			if tc.noBundles {
				in.Bundles = nil
			}
			tc.in(in)
			out, err := Retain(context.Background(), c.clients(), in, testOptions)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if got := decisionSummary(out.Decisions); !slices.Equal(got, tc.want) {
				t.Errorf("decisions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			var removed, snaps, wantSnaps []string
			for _, k := range c.Calls("DeregisterImage") {
				removed = append(removed, k.ID)
			}
			for _, k := range c.Calls("DeleteSnapshot") {
				snaps = append(snaps, k.ID)
			}
			if tc.wantSnaps {
				for _, id := range tc.wantRemoved {
					if id != "ami-a4" { // instance-store: no snapshot
						wantSnaps = append(wantSnaps, "snap-"+strings.TrimPrefix(id, "ami-"))
					}
				}
			}
			slices.Sort(removed)
			slices.Sort(snaps)
			if !slices.Equal(removed, tc.wantRemoved) || !slices.Equal(snaps, wantSnaps) {
				t.Errorf("deregistered %v, deleted snapshots %v; want %v, %v", removed, snaps, tc.wantRemoved, wantSnaps)
			}
			var warnings []string
			for _, d := range out.Decisions {
				warnings = append(warnings, d.Warnings...)
			}
			if tc.wantWarning == "" && len(warnings) > 0 || tc.wantWarning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.wantWarning)) {
				t.Errorf("warnings %q, want %q", warnings, tc.wantWarning)
			}
			if !slices.Equal(b.deleted, tc.wantBundles) {
				t.Errorf("bundles deleted %v, want %v", b.deleted, tc.wantBundles)
			}
			if tc.wantNoChange {
				mustNoCalls(t, c, mutatingOps...)
			}
			// In-use checks are only made for candidates, once per region.
			if n := len(c.Calls("DescribeLaunchTemplateVersions")); n > 2 {
				t.Errorf("%d launch template queries", n)
			}
		})
	}
}

func TestRetainReasonsAndTable(t *testing.T) {
	c := newRetainCloud(t)
	out, err := Retain(context.Background(), c.clients(), &RetainInput{
		Regions: []string{"eu-west-1"}, Selector: Selector{Name: "app-*", Tags: map[string]string{"Team": "web"}},
		KeepNewest: 2, Protect: []string{"ami-a10"}, DryRun: true,
	}, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, d := range out.Decisions {
		reasons[d.Name] = d.Reason
	}
	for name, want := range map[string]string{
		"app-10": "protected", "app-9": "among the newest 2", "app-8": "in use by instance i-running (running)",
		"app-7": "in use by launch template lt-1 version 3", "app-6": "number 5 by age, beyond the newest 2",
		"app-x": `creation date "yesterday" unreadable`,
	} {
		if reasons[name] != want {
			t.Errorf("%s: reason %q, want %q", name, reasons[name], want)
		}
	}
	var b strings.Builder
	if err := out.Decisions.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "ACTION") || !strings.Contains(b.String(), "ami-a6") {
		t.Errorf("table:\n%s", b.String())
	}
	if n := len(out.Decisions.ToRemove()); n != 3 {
		t.Errorf("%d to remove, want 3", n)
	}
	// The in-use queries name only the candidates.
	for _, k := range c.Calls("DescribeInstances") {
		in := k.In.(*ec2.DescribeInstancesInput)
		if got := in.Filters[0].Values; !slices.Equal(got, []string{"ami-a4", "ami-a5", "ami-a6", "ami-a7", "ami-a8"}) {
			t.Errorf("instances queried for %v", got)
		}
	}
}

func TestRetainRefusesUnsafeInput(t *testing.T) {
	tests := []struct {
		name string
		in   RetainInput
		want string
	}{
		{"empty selector", RetainInput{Regions: []string{"eu-west-1"}, KeepNewest: 1}, "an empty selector would select every AMI"},
		{"no rule", RetainInput{Regions: []string{"eu-west-1"}, Selector: Selector{Name: "app-*"}}, "KeepNewest or KeepWithin must be set"},
		{"negative", RetainInput{Regions: []string{"eu-west-1"}, Selector: Selector{Name: "app-*"}, KeepNewest: -1}, "KeepNewest: -1 is negative"},
		{"no region", RetainInput{Selector: Selector{Name: "app-*"}, KeepNewest: 1}, "Regions: at least one region"},
		{"bad region", RetainInput{Regions: []string{"mars-1"}, Selector: Selector{Name: "app-*"}, KeepNewest: 1}, `Regions[0]: "mars-1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newRetainCloud(t)
			_, err := Retain(context.Background(), c.clients(), &tc.in, testOptions)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			mustNoCalls(t, c)
		})
	}
}

func TestSelectorMatch(t *testing.T) {
	img := func(name string, tags ...string) types.Image {
		i := types.Image{Name: aws.String(name)}
		for j := 0; j+1 < len(tags); j += 2 {
			i.Tags = append(i.Tags, types.Tag{Key: aws.String(tags[j]), Value: aws.String(tags[j+1])})
		}
		return i
	}
	tests := []struct {
		sel  Selector
		img  types.Image
		want bool
	}{
		{Selector{Name: "app-*"}, img("app-1"), true},
		{Selector{Name: "app-*"}, img("myapp-1"), false},
		{Selector{Name: "app-?"}, img("app-12"), false},
		{Selector{Name: "app/[x]-*"}, img("app/[x]-1"), true},
		{Selector{Name: "a.b"}, img("axb"), false},
		{Selector{Tags: map[string]string{"Team": "web"}}, img("x", "Team", "web", "Env", "prod"), true},
		{Selector{Tags: map[string]string{"Team": "web", "Env": "dev"}}, img("x", "Team", "web", "Env", "prod"), false},
		{Selector{Name: "*", Tags: map[string]string{"Team": ""}}, img("x", "Team", ""), true},
		{Selector{Name: "*", Tags: map[string]string{"Team": ""}}, img("x"), false},
	}
	for _, tc := range tests {
		if got := tc.sel.Match(tc.img); got != tc.want {
			t.Errorf("%+v matches %s: %v, want %v", tc.sel, aws.ToString(tc.img.Name), got, tc.want)
		}
	}
}
