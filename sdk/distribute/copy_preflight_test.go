//go:build unix

package distribute

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestCopyRefusesBeforeChangingAnything(t *testing.T) {
	encrypted := func(kms string) func(*types.Image) {
		return func(img *types.Image) {
			img.BlockDeviceMappings[0].Ebs.Encrypted = aws.Bool(true)
			if kms != "" {
				img.BlockDeviceMappings[0].Ebs.KmsKeyId = aws.String(kms)
			}
		}
	}
	tests := []struct {
		name      string
		in        func(in *CopyInput)
		srcMod    func(*types.Image)
		taken     string // region where the name is already used
		wantIs    error
		wantMsg   string
		noAWSCall bool
	}{
		{
			name:   "encrypted with the default key, shared with an account",
			in:     func(in *CopyInput) { in.Encrypted = true; in.Permissions.Accounts = []string{account2} },
			wantIs: ErrShareDefaultKey, noAWSCall: true,
		},
		{
			name:   "explicit alias/aws/ebs shared with an organization",
			in:     func(in *CopyInput) { in.KMSKeyID = "alias/aws/ebs"; in.Permissions.OrgARNs = []string{orgARN} },
			wantIs: ErrShareDefaultKey, noAWSCall: true,
		},
		{
			name:   "encrypted source copied without a key, shared with an OU",
			in:     func(in *CopyInput) { in.Permissions.OUARNs = []string{ouARN} },
			srcMod: encrypted(""), wantIs: ErrShareDefaultKey,
		},
		{
			name:   "encrypted copy made public",
			in:     func(in *CopyInput) { in.KMSKeyID = "alias/team"; in.Permissions.Groups = []string{"all"} },
			wantIs: ErrPublicEncrypted, noAWSCall: true,
		},
		{
			name:   "encrypted source, public snapshots",
			in:     func(in *CopyInput) { in.KMSKeyID = "alias/team"; in.Permissions.SnapshotGroups = []string{"all"} },
			srcMod: encrypted("arn:aws:kms:us-east-1:111111111111:key/0f3c1a2b-1234-4abc-8def-0123456789ab"), wantIs: ErrPublicEncrypted, noAWSCall: true,
		},
		{
			name: "source shared with the default key (IncludeSource)",
			in: func(in *CopyInput) {
				in.IncludeSource = true
				in.KMSKeyID = "alias/team"
				in.Permissions.Accounts = []string{account2}
			},
			srcMod:  encrypted(""),
			wantIs:  ErrShareDefaultKey,
			wantMsg: "source " + srcID,
		},
		{
			name:    "name taken in a target region",
			taken:   "ap-south-1",
			wantMsg: `ap-south-1: name "app-1" is already used by ami-taken`,
		},
		{
			name:    "region does not exist",
			in:      func(in *CopyInput) { in.Targets = append(in.Targets, Target{Region: "eu-nowhere-1"}) },
			wantMsg: "eu-nowhere-1: region does not exist or is not enabled",
		},
		{
			name: "invalid ids name their fields",
			in: func(in *CopyInput) {
				in.Permissions.Accounts = []string{account2, "1234"}
				in.Targets[1].Permissions = &Permissions{OrgARNs: []string{"arn:aws:organizations::1:organization/o-x"}}
				in.Targets[0].KMSKeyID = "not a key"
			},
			wantMsg:   `Permissions.Accounts[1]: "1234" is not an AWS account ID`,
			noAWSCall: true,
		},
		{
			name:      "duplicate region",
			in:        func(in *CopyInput) { in.Targets = append(in.Targets, Target{Region: "eu-west-1"}) },
			wantMsg:   "Targets[2].Region: eu-west-1 is listed more than once",
			noAWSCall: true,
		},
		{
			name:      "deprecation in the past",
			in:        func(in *CopyInput) { in.Deprecation.At = fixedNow.Add(-time.Minute) },
			wantMsg:   "Deprecation: deprecation time 2030-01-02T03:03:05Z is not in the future",
			noAWSCall: true,
		},
		{
			name:      "unencrypted but with a key",
			in:        func(in *CopyInput) { in.KMSKeyID = "alias/team"; in.Targets[0].Encrypted = aws.Bool(false) },
			wantMsg:   "Targets[0].Encrypted is false but a KMS key is set",
			noAWSCall: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCopyCloud(t, "eu-west-1", "ap-south-1")
			if tc.srcMod != nil {
				c.addImage(srcRegion, srcID, "app-1", fixedNow.Add(-time.Hour), tc.srcMod)
			}
			if tc.taken != "" {
				c.addImage(tc.taken, "ami-taken", "app-1", fixedNow)
			}
			in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1")}
			if tc.in != nil {
				tc.in(in)
			}
			for _, run := range []func() error{
				func() error { _, err := Preflight(context.Background(), c.clients(), in, testOptions); return err },
				func() error { _, err := Copy(context.Background(), c.clients(), in, testOptions); return err },
			} {
				err := run()
				if err == nil {
					t.Fatal("no error")
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("err = %v, want %v", err, tc.wantIs)
				}
				if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("err = %v, want it to mention %q", err, tc.wantMsg)
				}
			}
			mustNoCalls(t, c, mutatingOps...)
			if tc.noAWSCall {
				mustNoCalls(t, c)
			}
		})
	}
}

func TestCopyAllowsSharingWithCustomerKey(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1")
	in := &CopyInput{
		SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1"),
		KMSKeyID: "alias/team", Permissions: Permissions{Accounts: []string{account2}, SnapshotAccounts: []string{account2}},
	}
	pre, err := Preflight(context.Background(), c.clients(), in, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	mustNoCalls(t, c, mutatingOps...)
	if len(pre.Copies) != 1 || pre.Copies[0].Name != "app-1" || !pre.Copies[0].Encrypted || pre.Copies[0].ClientToken != "" {
		t.Errorf("preflight = %+v", pre.Copies)
	}
	out, err := Copy(context.Background(), c.clients(), in, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Results[0]; !r.Encrypted || r.KMSKeyID != "alias/team" || len(r.SharedWith.Accounts) != 1 {
		t.Errorf("result = %+v", r)
	}
}

// A disabled region listed after a region whose name is taken: preflight
// reports both, whatever order its lookups finish in.
func TestPreflightReportsEveryRegion(t *testing.T) {
	for i := 0; i < 20; i++ {
		c := newCopyCloud(t, "eu-west-1", "ap-south-1")
		c.addImage("eu-west-1", "ami-0taken", "app-1", fixedNow.Add(-time.Hour))
		c.addImage("ap-south-1", "ami-0taken2", "app-1", fixedNow.Add(-time.Hour))
		in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1", "xx-nowhere-1", "eu-north-2")}
		_, err := Preflight(context.Background(), c.clients(), in, testOptions)
		if err == nil {
			t.Fatal("preflight passed")
		}
		for _, want := range []string{
			`eu-west-1: name "app-1" is already used by ami-0taken`,
			`ap-south-1: name "app-1" is already used by ami-0taken2`,
			"xx-nowhere-1: region does not exist or is not enabled",
			"eu-north-2: region does not exist or is not enabled",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
		}
		mustNoCalls(t, c, mutatingOps...)
	}
}

func TestPreflightSkipRegionCheck(t *testing.T) {
	// eu-north-2 is not among the regions DescribeRegions lists (for
	// example one the SDK's caller knows better); with SkipRegionCheck only
	// the names are checked, there too.
	c := newCopyCloud(t, "eu-west-1")
	c.addImage("eu-north-2", "ami-0taken3", "app-1", fixedNow.Add(-time.Hour))
	in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "eu-north-2"), SkipRegionCheck: true}
	_, err := Preflight(context.Background(), c.clients(), in, testOptions)
	if err == nil || !strings.Contains(err.Error(), `eu-north-2: name "app-1" is already used by ami-0taken3`) || strings.Contains(err.Error(), "not enabled") {
		t.Fatalf("err = %v, want only the name in eu-north-2 refused", err)
	}
	if n := len(c.Calls("DescribeRegions")); n != 0 {
		t.Errorf("DescribeRegions called %d times", n)
	}
	in.Targets = targets("eu-west-1")
	if _, err := Preflight(context.Background(), c.clients(), in, testOptions); err != nil {
		t.Errorf("Preflight: %v", err)
	}
}

// TestCopySkipNameCheck: with SkipNameCheck no name is looked up, and a
// name taken after the caller's own check fails that region's CopyImage,
// after which the copies made elsewhere are removed.
func TestCopySkipNameCheck(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1", "ap-south-1")
	made := trackCopies(c)
	c.addImage("ap-south-1", "ami-0taken4", "app-1", fixedNow.Add(-time.Hour))
	in := &CopyInput{
		SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1", "ap-south-1"),
		SkipRegionCheck: true, SkipNameCheck: true, Concurrency: 1,
	}
	_, err := Copy(context.Background(), c.clients(), in, testOptions)
	if err == nil || !strings.Contains(err.Error(), "InvalidAMIName.Duplicate") {
		t.Fatalf("err = %v, want ap-south-1's CopyImage refused for the name", err)
	}
	for _, k := range c.Calls("DescribeImages", "DescribeRegions") {
		if k.ID == "" {
			t.Errorf("%s %s: a region or name check with SkipRegionCheck and SkipNameCheck", k.Region, k.Op)
		}
	}
	m := made()
	if len(m) != 1 || m["eu-west-1"] == "" {
		t.Fatalf("copies made %v, want only eu-west-1's", m)
	}
	assertRemovedExactly(t, c, m)
}

// TestCopyAfterPreflight checks that Copy after a Preflight of the same
// input, with the source as already described, makes no call twice: the
// checks run once, the source is not described again, and the known
// snapshots are tagged with the image in one call.
func TestCopyAfterPreflight(t *testing.T) {
	c := newCopyCloud(t, "eu-west-1")
	src, err := c.clients()(srcRegion).DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{srcID}})
	if err != nil {
		t.Fatal(err)
	}
	in := &CopyInput{
		SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1"),
		Tags: map[string]string{"App": "x"}, Source: &src.Images[0],
	}
	before := len(c.Calls())
	if _, err := Preflight(context.Background(), c.clients(), in, testOptions); err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	in.Preflighted = true
	out, err := Copy(context.Background(), c.clients(), in, testOptions)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	id := out.Results[0].ImageID
	var got []string
	for _, op := range opsOf(c.Calls()[before:]) {
		got = append(got, strings.TrimSpace(op))
	}
	want := []string{
		"us-east-1 DescribeRegions", "eu-west-1 DescribeImages", // the preflight, once
		"eu-west-1 CopyImage app-1", "eu-west-1 DescribeImages " + id, // tagged by CopyImage
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	snap := out.Results[0].SnapshotIDs[0]
	if c.tags[id]["App"] != "x" || c.tags[snap]["App"] != "x" {
		t.Errorf("tags of the copy %v, of its snapshot %v; want App=x on both", c.tags[id], c.tags[snap])
	}

	t.Run("source of another image", func(t *testing.T) {
		bad := *in
		bad.SourceImageID = otherID
		if _, err := Copy(context.Background(), c.clients(), &bad, testOptions); err == nil || !strings.Contains(err.Error(), "Source: describes") {
			t.Errorf("Copy() error = %v, want one about Source", err)
		}
	})
}

// TestNarrowClients: each operation asks of the client only the methods
// of its own interface, so a client with no others will do (this test
// would not compile otherwise), and gives the same answer as with a full
// client.
func TestNarrowClients(t *testing.T) {
	type preflightOnly struct{ PreflightAPI }
	type copyOnly struct{ CopyAPI }
	c := newCopyCloud(t, "eu-west-1")
	in := &CopyInput{SourceImageID: srcID, SourceRegion: srcRegion, Targets: targets("eu-west-1")}
	full := c.clients()
	pre, err := Preflight(context.Background(), func(r string) preflightOnly { return preflightOnly{full(r)} }, in, testOptions)
	if err != nil || len(pre.Copies) != 1 || pre.Copies[0].Region != "eu-west-1" {
		t.Fatalf("Preflight with a PreflightAPI client = %+v, %v", pre, err)
	}
	mustNoCalls(t, c, mutatingOps...)
	out, err := Copy(context.Background(), func(r string) copyOnly { return copyOnly{full(r)} }, in, testOptions)
	if err != nil || len(out.Results) != 1 || out.Results[0].Status != StatusAvailable {
		t.Fatalf("Copy with a CopyAPI client = %+v, %v", out, err)
	}
}
