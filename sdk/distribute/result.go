package distribute

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is the outcome for one region.
type Status string

// Statuses of a Result.
const (
	// StatusAvailable: the AMI exists and every requested change was made.
	StatusAvailable Status = "available"
	// StatusFailed: the region failed; Err says why.
	StatusFailed Status = "failed"
	// StatusCancelled: the region was stopped because another region failed
	// or the context ended.
	StatusCancelled Status = "cancelled"
	// StatusRemoved: the copy was made and then removed again by the
	// cleanup after a failure.
	StatusRemoved Status = "removed"
	// StatusNotStarted: nothing was done in the region.
	StatusNotStarted Status = "not-started"
	// StatusUnknown: a CopyImage call was interrupted and cleanup could not
	// find out whether it made a copy; Err (an *UnknownCopyError) names the
	// region, the name and the tag to check.
	StatusUnknown Status = "unknown"
)

// Result is the outcome of Copy in one region.
type Result struct {
	// Account is the account that owns the AMI when it is a copy made in a
	// TargetAccount; "" for the caller's own account.
	Account string `json:"account,omitempty"`
	// Region is the region of the AMI.
	Region string `json:"region"`
	// ImageID is the AMI in Region ("" if no copy was made).
	ImageID string `json:"image_id,omitempty"`
	// Name is the AMI's name.
	Name string `json:"name,omitempty"`
	// Source is true for the source image (Copy with IncludeSource), which
	// is never copied nor removed.
	Source bool `json:"source,omitempty"`
	// Status is the outcome.
	Status Status `json:"status"`
	// Duration is the time from CopyImage to the copy being available; 0
	// for the source and for copies that never became available.
	// Serialized as "copy_seconds", a number of seconds.
	Duration time.Duration `json:"-"`
	// SnapshotIDs are the AMI's EBS snapshots.
	SnapshotIDs []string `json:"snapshot_ids,omitempty"`
	// Encrypted reports whether the AMI's snapshots are encrypted.
	Encrypted bool `json:"encrypted"`
	// KMSKeyID is the KMS key, as reported by EC2 or as requested; "" with
	// Encrypted means the default EBS key.
	KMSKeyID string `json:"kms_key_id,omitempty"`
	// ClientToken is the idempotency token sent with CopyImage.
	ClientToken string `json:"client_token,omitempty"`
	// SharedWith are the permissions granted.
	SharedWith Permissions `json:"shared_with"`
	// DeprecateAt is the deprecation time set, if any.
	DeprecateAt *time.Time `json:"deprecate_at,omitempty"`
	// Protected reports whether deregistration protection was turned on.
	Protected bool `json:"deregistration_protection,omitempty"`
	// Warnings are failures of optional steps.
	Warnings []string `json:"warnings,omitempty"`
	// Err is the region's failure; serialized as "error".
	Err error `json:"-"`
}

// MarshalJSON adds Err as the string field "error" and Duration as the
// number "copy_seconds" (to the millisecond).
func (r Result) MarshalJSON() ([]byte, error) {
	return marshalWithError(r.timed(), r.Err)
}

// timedResult is the JSON form of a Result but for its error.
type timedResult struct {
	plainResult
	CopySeconds float64 `json:"copy_seconds,omitempty"`
}

type plainResult Result

func (r Result) timed() timedResult {
	return timedResult{plainResult(r), r.Duration.Round(time.Millisecond).Seconds()}
}

// UnmarshalJSON reads what MarshalJSON writes; "error" becomes an error
// with that text.
func (r *Result) UnmarshalJSON(b []byte) error {
	var v timedResult
	var err error
	if jerr := unmarshalWithError(b, &v, &err); jerr != nil {
		return jerr
	}
	*r = Result(v.plainResult)
	r.Duration = time.Duration(math.Round(v.CopySeconds * float64(time.Second)))
	r.Err = err
	return nil
}

// Results are the per-region outcomes of Copy, in input order (the source
// first when included).
type Results []Result

// Err joins the errors of every region, or returns nil.
func (rs Results) Err() error {
	var errs []error
	for _, r := range rs {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Region, r.Err))
		}
	}
	return errors.Join(errs...)
}

// ImageIDs maps region to AMI ID for the regions whose AMI is available.
func (rs Results) ImageIDs() map[string]string {
	m := make(map[string]string, len(rs))
	for _, r := range rs {
		if r.Status == StatusAvailable && r.ImageID != "" {
			m[r.Region] = r.ImageID
		}
	}
	return m
}

// WriteTable prints one line per region with aligned columns; an ACCOUNT
// column comes first when a result is in a target account. TOOK is the
// time from CopyImage to the copy being available.
func (rs Results) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	accounts := slices.ContainsFunc(rs, func(r Result) bool { return r.Account != "" })
	if accounts {
		fmt.Fprint(tw, "ACCOUNT\t")
	}
	fmt.Fprintln(tw, "REGION\tIMAGE\tSTATUS\tTOOK\tSNAPSHOTS\tENCRYPTION\tSHARED WITH\tDEPRECATE AT\tNOTE")
	for _, r := range rs {
		if accounts {
			fmt.Fprintf(tw, "%s\t", cmp.Or(r.Account, "this"))
		}
		enc := "no"
		if r.Encrypted {
			enc = "default key"
			if r.KMSKeyID != "" {
				enc = r.KMSKeyID
			}
		}
		dep := "-"
		if r.DeprecateAt != nil {
			dep = r.DeprecateAt.UTC().Format(time.RFC3339)
		}
		note := strings.Join(r.Warnings, "; ")
		if r.Err != nil {
			note = firstLine(r.Err.Error())
		}
		if r.Source && note == "" {
			note = "source"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Region, dash(r.ImageID), r.Status, took(r.Duration), dash(strings.Join(r.SnapshotIDs, ",")),
			enc, dash(r.SharedWith.String()), dep, dash(note))
	}
	return tw.Flush()
}

// WritePublishTable prints one line per parameter and launch template
// version, with the account ("this" for the caller's), region, what was
// written and what became of it.
func WritePublishTable(w io.Writer, params []ParameterResult, lts []LaunchTemplateResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tREGION\tWHAT\tIMAGE\tSTATUS\tBEFORE\tNOTE")
	for _, p := range params {
		before := "(created)"
		if !p.Created {
			before = dash(p.Previous)
		}
		note := fmt.Sprintf("version %d", p.Version)
		if p.Err != nil {
			note = firstLine(p.Err.Error())
		}
		fmt.Fprintf(tw, "%s\t%s\tparameter %s\t%s\t%s\t%s\t%s\n", cmp.Or(p.Account, "this"), p.Region, p.Name, p.ImageID, p.Status, before, note)
	}
	for _, lt := range lts {
		note := fmt.Sprintf("version %d from %d", lt.Version, lt.SourceVersion)
		if lt.Default {
			note += ", default"
		}
		if lt.Err != nil {
			note = firstLine(lt.Err.Error())
		}
		fmt.Fprintf(tw, "%s\t%s\tlaunch template %s\t%s\t%s\tdefault %d\t%s\n", cmp.Or(lt.Account, "this"), lt.Region,
			cmp.Or(lt.Name, lt.ID), lt.ImageID, lt.Status, lt.PreviousDefault, note)
	}
	return tw.Flush()
}

// String returns the table of WriteTable.
func (rs Results) String() string {
	var b strings.Builder
	_ = rs.WriteTable(&b)
	return b.String()
}

// String lists whom p grants, such as "accounts=123456789012
// groups=all snapshot-accounts=123456789012"; "" when it grants nobody.
func (p Permissions) String() string {
	var parts []string
	add := func(label string, v []string) {
		if len(v) > 0 {
			parts = append(parts, label+"="+strings.Join(v, ","))
		}
	}
	add("accounts", p.Accounts)
	add("groups", p.Groups)
	add("orgs", p.OrgARNs)
	add("ous", p.OUARNs)
	add("snapshot-accounts", p.SnapshotAccounts)
	add("snapshot-groups", p.SnapshotGroups)
	return strings.Join(parts, " ")
}

// took formats a copy's duration for the table: whole seconds, or
// milliseconds below a second; "-" when there is none.
func took(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
