//go:build unix

package distribute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// distributeInput is a build with AMIs in us-east-1 (the source) and
// eu-north-1, copied to eu-west-1 and ap-south-1 and shared with an
// account.
func distributeInput() *DistributeInput {
	return &DistributeInput{
		Copy: CopyInput{
			SourceImageID: srcID, SourceRegion: srcRegion,
			Targets:     targets("eu-west-1", "ap-south-1"),
			Permissions: Permissions{Accounts: []string{account2}},
			Tags:        map[string]string{"Release": "1"},
			Deprecation: Deprecation{After: 24 * time.Hour},
			Concurrency: 1,
		},
		Inputs: []InputImage{
			{Region: "eu-north-1", ImageID: "ami-north01", Tags: map[string]string{"Input": "north"}},
			{Region: srcRegion, ImageID: srcID, Tags: map[string]string{"Input": "source"}},
		},
		ShareInputs: true,
		Protection:  Protection{Enabled: true},
	}
}

func newDistributeCloud(t *testing.T) *fakeCloud {
	t.Helper()
	c := newCopyCloud(t, "eu-west-1", "ap-south-1")
	c.addImage("eu-north-1", "ami-north01", "app-1", fixedNow.Add(-time.Hour))
	c.addImage("eu-north-1", otherID, "unrelated", fixedNow.Add(-48*time.Hour))
	return c
}

func TestDistributeCopiesSharesAndProtectsEveryAMI(t *testing.T) {
	c := newDistributeCloud(t)
	var l ledger.Ledger
	out, err := Distribute(context.Background(), c.clients(), distributeInput(), testOptions, func(o *Options) { o.Ledger = &l })
	if err != nil {
		t.Fatalf("Distribute: %v", err)
	}
	var got []string
	for _, r := range out.Results {
		got = append(got, r.Region+"/"+string(r.Status)+"/"+map[bool]string{true: "input", false: "copy"}[r.Source])
		if !r.Protected {
			t.Errorf("%s %s: not protected", r.Region, r.ImageID)
		}
		if !slices.Equal(r.SharedWith.Accounts, []string{account2}) {
			t.Errorf("%s %s: shared with %v", r.Region, r.ImageID, r.SharedWith)
		}
		if r.DeprecateAt == nil {
			t.Errorf("%s %s: no deprecation", r.Region, r.ImageID)
		}
	}
	want := []string{"us-east-1/available/input", "eu-north-1/available/input", "eu-west-1/available/copy", "ap-south-1/available/copy"}
	if !slices.Equal(got, want) {
		t.Fatalf("results = %v, want %v (the source first, then the other inputs, then the copies)", got, want)
	}
	if v := c.tags[srcID]["Input"]; v != "source" {
		t.Errorf("source tag Input = %q, want its own tag", v)
	}
	if v := c.tags["ami-north01"]["Input"]; v != "north" {
		t.Errorf("eu-north-1 input tag Input = %q", v)
	}
	if ids := out.ImageIDs(); len(ids) != 4 || ids[srcRegion] != srcID {
		t.Errorf("ImageIDs = %v", ids)
	}
	copies := out.Copies()
	if len(copies) != 2 || copies["eu-west-1"] == "" || copies["ap-south-1"] == "" {
		t.Errorf("Copies = %v", copies)
	}

	// The inputs change only after every copy succeeded, and protection
	// comes last of all.
	lastCopy := max(c.index("eu-west-1", "CopyImage", ""), c.index("ap-south-1", "CopyImage", ""))
	if first := c.index(srcRegion, "ModifyImageAttribute", srcID); first < lastCopy {
		t.Errorf("the source was shared (call %d) before the last copy (call %d)", first, lastCopy)
	}
	protectedYet := false
	for _, k := range c.Calls() {
		switch k.Op {
		case "EnableImageDeregistrationProtection":
			protectedYet = true
		case "ModifyImageAttribute", "CreateTags", "EnableImageDeprecation":
			if protectedYet {
				t.Errorf("%s after protection was turned on: %v", k, opsOf(c.Calls()))
			}
		}
	}
	if n := len(c.Calls("EnableImageDeregistrationProtection")); n != 4 {
		t.Errorf("protection turned on %d times, want 4", n)
	}

	// The copies are the caller's now, in its ledger: undoing it turns
	// protection off and removes them; the inputs stay.
	res := l.Resources()
	if len(res) != 2 {
		t.Fatalf("ledger holds %v, want the two copies", res)
	}
	if err := l.Undo(context.Background()); err != nil {
		t.Fatalf("Undo: %v", err)
	}
	assertRemovedExactly(t, c, copies)
	for region, id := range copies {
		if c.index(region, "DisableImageDeregistrationProtection", id) > c.index(region, "DeregisterImage", id) {
			t.Errorf("%s %s deregistered before its protection was turned off", region, id)
		}
	}
	if c.image("eu-north-1", "ami-north01") == nil {
		t.Error("an input AMI was removed")
	}
}

func TestDistributeRemovesCopiesWhenALaterStepFails(t *testing.T) {
	tests := []struct {
		name       string
		breakCloud func(c *fakeCloud)
		want       string
	}{
		{
			name: "sharing an input fails",
			breakCloud: func(c *fakeCloud) {
				c.ModifyImageAttributeFn = func(ctx context.Context, region string, in *ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error) {
					if region == "eu-north-1" {
						return nil, apiErr("UnauthorizedOperation")
					}
					return c.defModifyImageAttribute(region, in)
				}
			},
			want: "UnauthorizedOperation",
		},
		{
			name: "protection fails in the last region",
			breakCloud: func(c *fakeCloud) {
				c.ProtectFn = func(ctx context.Context, region string, in *ec2.EnableImageDeregistrationProtectionInput) (*ec2.EnableImageDeregistrationProtectionOutput, error) {
					if region == "ap-south-1" {
						return nil, apiErr("UnauthorizedOperation")
					}
					if fi := c.image(region, aws.ToString(in.ImageId)); fi != nil {
						c.mu.Lock()
						fi.protected = true
						c.mu.Unlock()
					}
					return &ec2.EnableImageDeregistrationProtectionOutput{}, nil
				}
			},
			want: "deregistration protection",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newDistributeCloud(t)
			made := trackCopies(c)
			tc.breakCloud(c)
			var l ledger.Ledger
			out, err := Distribute(context.Background(), c.clients(), distributeInput(), testOptions, func(o *Options) { o.Ledger = &l })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if len(made()) != 2 {
				t.Fatalf("copies made = %v, want both before the failure", made())
			}
			assertRemovedExactly(t, c, made())
			for _, r := range out.Results {
				if !r.Source && r.Status != StatusRemoved {
					t.Errorf("copy in %s: status %s, want removed", r.Region, r.Status)
				}
			}
			for region, imgs := range c.images {
				for id, fi := range imgs {
					if fi.protected {
						t.Errorf("%s %s left protected", region, id)
					}
				}
			}
			if res := l.Resources(); len(res) != 0 {
				t.Errorf("the caller's ledger got %v from a failed distribution", res)
			}
		})
	}
}

func TestDistributeCancelledRemovesCopies(t *testing.T) {
	c := newDistributeCloud(t)
	made := trackCopies(c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Ctrl-C once the input AMIs are being shared: the copies exist.
	c.ModifyImageAttributeFn = func(_ context.Context, region string, in *ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error) {
		if aws.ToString(in.ImageId) == srcID {
			cancel()
			return nil, context.Canceled
		}
		return c.defModifyImageAttribute(region, in)
	}
	_, err := Distribute(ctx, c.clients(), distributeInput(), testOptions)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertRemovedExactly(t, c, made())
}

func TestDistributeDryRunChangesNothing(t *testing.T) {
	c := newDistributeCloud(t)
	in := distributeInput()
	in.DryRun = true
	out, err := Distribute(context.Background(), c.clients(), in, testOptions)
	if err != nil {
		t.Fatalf("Distribute: %v", err)
	}
	var regions []string
	for _, p := range out.Planned {
		regions = append(regions, p.Region)
	}
	if !slices.Equal(regions, []string{"eu-west-1", "ap-south-1"}) {
		t.Errorf("planned copies in %v", regions)
	}
	mustNoCalls(t, c, "CopyImage", "ModifyImageAttribute", "ModifySnapshotAttribute", "CreateTags",
		"EnableImageDeprecation", "EnableImageDeregistrationProtection", "DeregisterImage")
}

func TestDistributeWithoutShareInputsLeavesInputsAlone(t *testing.T) {
	c := newDistributeCloud(t)
	in := distributeInput()
	in.ShareInputs = false
	out, err := Distribute(context.Background(), c.clients(), in, testOptions)
	if err != nil {
		t.Fatalf("Distribute: %v", err)
	}
	for _, k := range c.Calls("ModifyImageAttribute", "CreateTags", "EnableImageDeprecation", "EnableImageDeregistrationProtection") {
		if k.ID == srcID || k.ID == "ami-north01" {
			t.Errorf("input changed: %s", k)
		}
	}
	if r := out.Results[0]; !r.Source || r.ImageID != srcID || r.Name != "app-1" || r.Protected {
		t.Errorf("first result = %+v, want the untouched source with its name", r)
	}
}

func TestDistributeValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*DistributeInput)
		want string
	}{
		{"target holds an input", func(in *DistributeInput) { in.Copy.Targets = targets("eu-north-1") }, "eu-north-1 already holds an input AMI"},
		{"source not among inputs", func(in *DistributeInput) { in.Inputs = in.Inputs[:1] }, "the source ami-src0001 in us-east-1 is not among them"},
		{"two inputs in one region", func(in *DistributeInput) {
			in.Inputs = append(in.Inputs, InputImage{Region: "eu-north-1", ImageID: "ami-north02"})
		}, "eu-north-1 holds more than one input AMI"},
		{"bad target region", func(in *DistributeInput) { in.Copy.Targets = targets("mars-1") }, "Targets[0].Region"},
		{"snapshot copy duration", func(in *DistributeInput) { in.Copy.SnapshotCopyMinutes = 20 }, "SnapshotCopyMinutes"},
		{"parameter name", func(in *DistributeInput) { in.Parameters = []Parameter{{Name: "golden/web"}} }, "parameters[0].name"},
		{"parameter in a region not in the output", func(in *DistributeInput) {
			in.Parameters = []Parameter{{Name: "/golden/web", Region: "me-south-1"}}
		}, "me-south-1 is not a region of images"},
		{"launch template without region", func(in *DistributeInput) {
			in.LaunchTemplates = []LaunchTemplate{{ID: "lt-0123456789abcdef0"}}
		}, "launch_templates[0].region: required with an id"},
		{"account ID", func(in *DistributeInput) {
			in.Accounts = []TargetAccount{{AccountID: "2222", RoleARN: "arn:aws:iam::222222222222:role/x"}}
		}, "Accounts[0].AccountID"},
		{"role of another account", func(in *DistributeInput) {
			in.Accounts = []TargetAccount{{AccountID: "222222222222", RoleARN: "arn:aws:iam::333333333333:role/x"}}
		}, "is a role of account 333333333333, not of 222222222222"},
		{"role missing", func(in *DistributeInput) { in.Accounts = []TargetAccount{{AccountID: "222222222222"}} }, "Accounts[0].RoleARN: required"},
		{"account region not in the output", func(in *DistributeInput) {
			in.Accounts = []TargetAccount{{AccountID: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/x", Regions: []string{"sa-east-1"}}}
		}, "Accounts[0].Regions[0]: sa-east-1 is not a region of the output"},
		{"account twice", func(in *DistributeInput) {
			a := TargetAccount{AccountID: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/x"}
			in.Accounts = []TargetAccount{a, a}
		}, "Accounts[1].AccountID: 222222222222 is listed more than once"},
		{"external ID", func(in *DistributeInput) {
			in.Accounts = []TargetAccount{{AccountID: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/x", ExternalID: "no spaces allowed"}}
		}, "Accounts[0].ExternalID: is invalid"},
		{"account parameter", func(in *DistributeInput) {
			in.Accounts = []TargetAccount{{AccountID: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/x", Parameters: []Parameter{{Name: "/aws/x"}}}}
		}, "Accounts[0]: parameters[0].name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newDistributeCloud(t)
			in := distributeInput()
			tc.mod(in)
			_, err := Distribute(context.Background(), c.clients(), in, testOptions)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			mustNoCalls(t, c)
		})
	}
	// No targets is a valid distribution (sharing the inputs only).
	in := distributeInput()
	in.Copy.Targets = nil
	if err := in.Validate(); err != nil {
		t.Errorf("Validate without targets: %v", err)
	}
	// Parameters and accounts need their clients, checked before any call.
	for _, mod := range []func(*DistributeInput){
		func(in *DistributeInput) { in.Parameters = []Parameter{{Name: "/golden/web"}} },
		func(in *DistributeInput) {
			in.Accounts = []TargetAccount{{AccountID: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/x"}}
		},
	} {
		c := newDistributeCloud(t)
		in := distributeInput()
		mod(in)
		if _, err := Distribute(context.Background(), c.clients(), in, testOptions); err == nil || !strings.Contains(err.Error(), "is nil") {
			t.Errorf("Distribute without the clients: %v", err)
		}
		mustNoCalls(t, c)
	}
	// The external ID is redacted whenever an account is printed.
	a := TargetAccount{AccountID: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/x", ExternalID: "s3cr3t-ext"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(f, a); strings.Contains(got, "s3cr3t") {
			t.Errorf("%s shows the external ID: %s", f, got)
		}
	}
}
