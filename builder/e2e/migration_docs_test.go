//go:build unix

package e2e

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"

	"github.com/amiforge/packer-plugin-ami/builder/ebs"
	"github.com/amiforge/packer-plugin-ami/builder/instance"
)

// The migration page (docs/migrating-from-amazon-ebs.md) has one table
// with a row for every option of HashiCorp's amazon-ebs and
// amazon-instance builders and, per builder of ours, what becomes of it.
// The option lists of HashiCorp's builders are in
// testdata/hashicorp-options, taken from their generated HCL2 specs.

// migrationDoc is the migration page.
var migrationDoc = filepath.Join("..", "..", "docs", "migrating-from-amazon-ebs.md")

// migrationTableHeader is the header row of the option table.
const migrationTableHeader = "| Option | ami-ebs | ami-instance | Notes |"

// Status cells of the option table.
const (
	statusAsIs         = "as is"
	statusDiffers      = "differs"
	statusRefused      = "refused"
	statusNotSupported = "not supported"
	statusAbsent       = "—" // not an option of that HashiCorp builder
)

var migrationStatuses = []string{statusAsIs, statusDiffers, statusRefused, statusNotSupported, statusAbsent}

// migrationRow is one row of the option table.
type migrationRow struct {
	Line     int // 1-based line in the page
	Option   string
	EBS      string // status for ami-ebs
	Instance string // status for ami-instance
	Notes    string
}

// parseMigrationTable returns the rows of the one table in src whose
// header is migrationTableHeader. The table ends at the first line that
// does not start with "|". A "\|" in a cell is a literal "|".
func parseMigrationTable(src string) ([]migrationRow, error) {
	lines := strings.Split(src, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) != migrationTableHeader {
			continue
		}
		if start >= 0 {
			return nil, fmt.Errorf("line %d: a second table with the header %q (the first is on line %d); keep one", i+1, migrationTableHeader, start+1)
		}
		start = i
	}
	if start < 0 {
		return nil, fmt.Errorf("no table with the header %q", migrationTableHeader)
	}
	if start+1 >= len(lines) || !isSeparatorRow(lines[start+1]) {
		return nil, fmt.Errorf("line %d: the header must be followed by a separator row like |---|---|---|---|", start+2)
	}
	var rows []migrationRow
	for i := start + 2; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "|") {
			break
		}
		cells := splitTableRow(l)
		if len(cells) != 4 {
			return nil, fmt.Errorf("line %d: %d cells, want 4 (option, ami-ebs, ami-instance, notes): %s", i+1, len(cells), l)
		}
		opt := cells[0]
		if len(opt) < 3 || !strings.HasPrefix(opt, "`") || !strings.HasSuffix(opt, "`") || strings.Contains(opt[1:len(opt)-1], "`") {
			return nil, fmt.Errorf("line %d: the option cell %q must be the option's name in backticks, like `ami_name`", i+1, opt)
		}
		row := migrationRow{Line: i + 1, Option: opt[1 : len(opt)-1], EBS: cells[1], Instance: cells[2], Notes: cells[3]}
		for _, c := range []struct{ builder, status string }{{"ami-ebs", row.EBS}, {"ami-instance", row.Instance}} {
			if !slices.Contains(migrationStatuses, c.status) {
				return nil, fmt.Errorf("line %d: option %q: the %s cell %q is not a status; valid are %q", i+1, row.Option, c.builder, c.status, migrationStatuses)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// isSeparatorRow reports whether l is a table's header separator row.
func isSeparatorRow(l string) bool {
	l = strings.TrimSpace(l)
	if !strings.HasPrefix(l, "|") {
		return false
	}
	cells := splitTableRow(l)
	for _, c := range cells {
		if strings.Trim(c, ":-") != "" || !strings.Contains(c, "-") {
			return false
		}
	}
	return len(cells) > 0
}

// splitTableRow splits a table row "| a | b |" into its trimmed cells,
// treating "\|" as a literal "|".
func splitTableRow(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimPrefix(l, "|")
	if strings.HasSuffix(l, "|") && !strings.HasSuffix(l, `\|`) {
		l = l[:len(l)-1]
	}
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\\' && i+1 < len(l) && l[i+1] == '|':
			cell.WriteByte('|')
			i++
		case l[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(l[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// readOptionList reads a list of option names, one per line; blank lines
// and lines starting with "#" are skipped. It fails the test when the file
// does not start with a "#" line naming its source, or when the names are
// not sorted and unique.
func readOptionList(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("read HashiCorp option list: %v", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if n == 1 && !strings.HasPrefix(l, "#") {
			t.Errorf("%s: the first line must be a comment naming the source, like \"# <repo>@<commit> builder.hcl2spec.go\"", path)
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if len(names) > 0 && l <= names[len(names)-1] {
			t.Errorf("%s:%d: %q is not after %q; keep the names sorted and unique", path, n, l, names[len(names)-1])
		}
		names = append(names, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(names) == 0 {
		t.Fatalf("%s lists no option", path)
	}
	return names
}

// TestMigrationTableMatchesSpecs checks the option table of the migration
// page against HashiCorp's option lists and our builders' HCL2 specs,
// without running packer.
func TestMigrationTableMatchesSpecs(t *testing.T) {
	src, err := os.ReadFile(migrationDoc)
	if err != nil {
		t.Fatalf("read the migration page: %v", err)
	}
	rows, err := parseMigrationTable(string(src))
	if err != nil {
		t.Fatalf("%s: %v", migrationDoc, err)
	}

	builders := []struct {
		ours, theirs string
		spec         map[string]hcldec.Spec
		options      []string
		status       func(migrationRow) string
	}{
		{
			ours: "ami-ebs", theirs: "amazon-ebs",
			spec:    (&ebs.Config{}).FlatMapstructure().HCL2Spec(),
			options: readOptionList(t, filepath.Join("testdata", "hashicorp-options", "amazon-ebs.txt")),
			status:  func(r migrationRow) string { return r.EBS },
		},
		{
			ours: "ami-instance", theirs: "amazon-instance",
			spec:    (&instance.Config{}).FlatMapstructure().HCL2Spec(),
			options: readOptionList(t, filepath.Join("testdata", "hashicorp-options", "amazon-instance.txt")),
			status:  func(r migrationRow) string { return r.Instance },
		},
	}

	byOption := map[string][]migrationRow{}
	for i, r := range rows {
		byOption[r.Option] = append(byOption[r.Option], r)
		if i > 0 && r.Option < rows[i-1].Option {
			t.Errorf("%s:%d: row %q comes after %q; sort the rows by option name", migrationDoc, r.Line, r.Option, rows[i-1].Option)
		}
	}
	for _, opt := range slices.Sorted(maps.Keys(byOption)) {
		if rs := byOption[opt]; len(rs) > 1 {
			var at []string
			for _, r := range rs {
				at = append(at, fmt.Sprint(r.Line))
			}
			t.Errorf("%s: option %q has %d rows (lines %s); keep one", migrationDoc, opt, len(rs), strings.Join(at, ", "))
		}
	}

	for _, b := range builders {
		for _, opt := range b.options {
			rs := byOption[opt]
			if len(rs) == 0 {
				t.Errorf("%s: %s option %q has no row; add one: | `%s` | <ami-ebs status> | <ami-instance status> | <notes> |", migrationDoc, b.theirs, opt, opt)
				continue
			}
			if s := b.status(rs[0]); s == statusAbsent {
				t.Errorf("%s:%d: option %q: %s has it, so the %s cell must be a status (%s, %s, %s or %s), not %s",
					migrationDoc, rs[0].Line, opt, b.theirs, b.ours, statusAsIs, statusDiffers, statusRefused, statusNotSupported, statusAbsent)
			}
		}
	}

	for _, r := range rows {
		inEither := false
		for _, b := range builders {
			theirs := slices.Contains(b.options, r.Option)
			inEither = inEither || theirs
			s := b.status(r)
			_, ours := b.spec[r.Option]
			switch {
			case !theirs && s != statusAbsent:
				t.Errorf("%s:%d: option %q: the %s cell is %q, but %s has no such option; make it %s",
					migrationDoc, r.Line, r.Option, b.ours, s, b.theirs, statusAbsent)
			case (s == statusAsIs || s == statusDiffers || s == statusRefused) && !ours:
				t.Errorf("%s:%d: option %q: the %s cell is %q, but %s's configuration (HCL2 spec) has no %q; make it %q, or add the option to %s",
					migrationDoc, r.Line, r.Option, b.ours, s, b.ours, r.Option, statusNotSupported, b.ours)
			case s == statusNotSupported && ours:
				t.Errorf("%s:%d: option %q: the %s cell is %q, but %s's configuration (HCL2 spec) has %q; make it %q, %q or %q",
					migrationDoc, r.Line, r.Option, b.ours, s, b.ours, r.Option, statusAsIs, statusDiffers, statusRefused)
			}
			if (s == statusDiffers || s == statusRefused || s == statusNotSupported) && r.Notes == "" {
				t.Errorf("%s:%d: option %q: the %s cell is %q, so the notes must say how (and what to use instead)",
					migrationDoc, r.Line, r.Option, b.ours, s)
			}
		}
		if !inEither {
			t.Errorf("%s:%d: option %q is an option of neither amazon-ebs nor amazon-instance; remove the row (document our own options on the builder's page)",
				migrationDoc, r.Line, r.Option)
		}
	}
}

func TestMigrationTableParse(t *testing.T) {
	const head = "Intro.\n\n" + migrationTableHeader + "\n|---|---|---|---|\n"
	tests := []struct {
		name    string
		src     string
		want    []migrationRow
		wantErr string // a part of the error; "" for none
	}{
		{
			name: "rows up to the end of the table",
			src: head +
				"| `ami_name` | as is | as is | |\n" +
				"| `spot_price` | not supported | not supported | Use `instance_type`. |\n" +
				"| `s3_bucket` | — | differs | Must exist. |\n" +
				"\nAfter the table: | `x` | a | b | c |\n",
			want: []migrationRow{
				{Line: 5, Option: "ami_name", EBS: "as is", Instance: "as is"},
				{Line: 6, Option: "spot_price", EBS: "not supported", Instance: "not supported", Notes: "Use `instance_type`."},
				{Line: 7, Option: "s3_bucket", EBS: "—", Instance: "differs", Notes: "Must exist."},
			},
		},
		{
			name: "escaped pipe and surrounding spaces",
			src:  head + "  |`tags`|differs|refused| a \\| b |  \n",
			want: []migrationRow{{Line: 5, Option: "tags", EBS: "differs", Instance: "refused", Notes: "a | b"}},
		},
		{
			name: "aligned separator",
			src:  "Intro.\n\n" + migrationTableHeader + "\n| :--- | --- | ---: | --- |\n| `tag` | as is | as is | |\n",
			want: []migrationRow{{Line: 5, Option: "tag", EBS: "as is", Instance: "as is"}},
		},
		{
			name: "empty table",
			src:  head,
		},
		{
			name:    "no table",
			src:     "| Option | ebs | instance | Notes |\n|---|---|---|---|\n",
			wantErr: "no table with the header",
		},
		{
			name:    "two tables",
			src:     head + "\n" + migrationTableHeader + "\n|---|---|---|---|\n",
			wantErr: "a second table",
		},
		{
			name:    "no separator",
			src:     migrationTableHeader + "\n| `tag` | as is | as is | |\n",
			wantErr: "separator row",
		},
		{
			name:    "unknown status",
			src:     head + "| `tag` | same | as is | |\n",
			wantErr: `the ami-ebs cell "same" is not a status`,
		},
		{
			name:    "option without backticks",
			src:     head + "| tag | as is | as is | |\n",
			wantErr: "must be the option's name in backticks",
		},
		{
			name:    "too few cells",
			src:     head + "| `tag` | as is | |\n",
			wantErr: "3 cells, want 4",
		},
		{
			name:    "too many cells",
			src:     head + "| `tag` | as is | as is | a | b |\n",
			wantErr: "5 cells, want 4",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMigrationTable(tc.src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rows:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
