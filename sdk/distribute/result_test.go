//go:build unix

package distribute

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestResultsTableAndErr(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	rs := Results{
		{Region: "us-east-1", ImageID: "ami-1", Source: true, Status: StatusAvailable, SnapshotIDs: []string{"snap-1"}},
		{Region: "eu-west-1", ImageID: "ami-2", Status: StatusAvailable, Duration: 3*time.Minute + 10400*time.Millisecond, SnapshotIDs: []string{"snap-2"}, Encrypted: true, KMSKeyID: "alias/team",
			SharedWith: Permissions{Accounts: []string{account2}, OrgARNs: []string{orgARN}}, DeprecateAt: &at},
		{Region: "ap-south-1", ImageID: "ami-3", Status: StatusRemoved, Duration: 420 * time.Millisecond, Encrypted: true, Err: errors.New("boom\nsecond line")},
		{Region: "us-west-2", Status: StatusCancelled, Err: errors.New("context canceled")},
	}
	lines := strings.Split(strings.TrimSpace(rs.String()), "\n")
	want := [][]string{
		{"REGION", "IMAGE", "STATUS", "TOOK", "SNAPSHOTS", "ENCRYPTION", "SHARED WITH", "DEPRECATE AT", "NOTE"},
		{"us-east-1", "ami-1", "available", "-", "snap-1", "no", "-", "-", "source"},
		{"eu-west-1", "ami-2", "available", "3m10s", "snap-2", "alias/team", "accounts=" + account2 + " orgs=" + orgARN, "2031-05-06T07:08:09Z", "-"},
		{"ap-south-1", "ami-3", "removed", "420ms", "-", "default key", "-", "-", "boom …"},
		{"us-west-2", "-", "cancelled", "-", "-", "no", "-", "-", "context canceled"},
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", rs)
	}
	for i, w := range want {
		// Columns are aligned: each cell starts where the header's does.
		for j, cell := range w {
			col := strings.Index(lines[0], want[0][j])
			if !strings.HasPrefix(lines[i][col:], cell) {
				t.Errorf("line %d column %q: got %q, want %q", i, want[0][j], lines[i][col:], cell)
			}
		}
	}
	err := rs.Err()
	if err == nil || !strings.Contains(err.Error(), "ap-south-1: boom") || !strings.Contains(err.Error(), "us-west-2: context canceled") {
		t.Errorf("Err() = %v", err)
	}
	if got := rs.ImageIDs(); len(got) != 2 || got["eu-west-1"] != "ami-2" {
		t.Errorf("ImageIDs() = %v", got)
	}
	if (Results{{Region: "x", Status: StatusAvailable}}).Err() != nil {
		t.Error("Err() of a success is not nil")
	}
}

func TestPermissionsString(t *testing.T) {
	if got := (Permissions{}).String(); got != "" {
		t.Errorf("empty Permissions = %q, want \"\"", got)
	}
	p := Permissions{Accounts: []string{account2, "333333333333"}, Groups: []string{"all"}, SnapshotAccounts: []string{account2}}
	want := "accounts=" + account2 + ",333333333333 groups=all snapshot-accounts=" + account2
	if got := p.String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
