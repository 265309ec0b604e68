package distribute

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

var (
	accountIDRe = regexp.MustCompile(`^\d{12}$`)
	orgARNRe    = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$`)
	ouARNRe     = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`)
	regionRe    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)

	kmsKeyIDRe    = regexp.MustCompile(`^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
	kmsAliasRe    = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)
	kmsKeyARNRe   = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-\d{1,2}:\d{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
	kmsAliasARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-\d{1,2}:\d{12}:alias/[a-zA-Z0-9/_-]{1,250}$`)
)

// ValidateAccountID reports whether id is an AWS account ID: exactly 12
// digits.
func ValidateAccountID(id string) error {
	if !accountIDRe.MatchString(id) {
		return fmt.Errorf("%q is not an AWS account ID (want 12 digits)", id)
	}
	return nil
}

// ValidateGroup reports whether g is a launch-permission or create-volume
// permission group. The only group AWS knows is "all" (public).
func ValidateGroup(g string) error {
	if g != GroupAll {
		return fmt.Errorf("%q is not a permission group (the only group is %q, meaning public)", g, GroupAll)
	}
	return nil
}

// ValidateOrgARN reports whether arn is an AWS Organizations organization
// ARN such as arn:aws:organizations::123456789012:organization/o-abcdefghij.
func ValidateOrgARN(arn string) error {
	if !orgARNRe.MatchString(arn) {
		return fmt.Errorf("%q is not an organization ARN (want arn:aws:organizations::<12-digit account>:organization/o-<10 to 32 lowercase letters or digits>)", arn)
	}
	return nil
}

// ValidateOUARN reports whether arn is an AWS Organizations organizational
// unit ARN such as
// arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34.
func ValidateOUARN(arn string) error {
	if !ouARNRe.MatchString(arn) {
		return fmt.Errorf("%q is not an organizational unit ARN (want arn:aws:organizations::<12-digit account>:ou/o-<id>/ou-<4 to 32 chars>-<8 to 32 chars>)", arn)
	}
	return nil
}

// ValidateKMSKeyID reports whether id names a KMS key the way EC2 accepts
// it: a key ID (UUID or mrk-… multi-Region key), a key ARN, an alias
// (alias/name) or an alias ARN.
func ValidateKMSKeyID(id string) error {
	switch {
	case kmsKeyIDRe.MatchString(id), kmsAliasRe.MatchString(id),
		kmsKeyARNRe.MatchString(id), kmsAliasARNRe.MatchString(id):
		if strings.HasPrefix(id, "alias/aws/") && id != DefaultEBSKeyAlias {
			return fmt.Errorf("%q is an AWS-managed key of another service, not usable for EBS", id)
		}
		return nil
	}
	return fmt.Errorf("%q is not a KMS key (want a key ID, key ARN, alias/<name> or alias ARN)", id)
}

// ValidateRegion reports whether name is shaped like an AWS region name
// (us-east-1, eu-central-2, us-gov-west-1, …). Whether the region exists and
// is enabled is checked by Preflight.
func ValidateRegion(name string) error {
	if !regionRe.MatchString(name) {
		return fmt.Errorf("%q is not an AWS region name (like us-east-1)", name)
	}
	return nil
}

// ValidateEach runs check on every value and names each failure after field
// and index, as in `ami_users[2]: "123" is not an AWS account ID …`.
// Failures are joined with errors.Join.
func ValidateEach(field string, values []string, check func(string) error) error {
	var errs []error
	for i, v := range values {
		if err := check(v); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
		}
	}
	return errors.Join(errs...)
}

// FieldNames names the fields of a Permissions value in error messages.
// The zero value uses the Go field names; the post-processor passes its own
// configuration keys.
type FieldNames struct {
	Accounts, Groups, OrgARNs, OUARNs, SnapshotAccounts, SnapshotGroups string
}

// permissionFields names the fields of a Permissions value found at
// prefix in an input, such as "Targets[0].Permissions", so that a message
// points at the exact value.
func permissionFields(prefix string) FieldNames {
	return FieldNames{
		Accounts: prefix + ".Accounts", Groups: prefix + ".Groups", OrgARNs: prefix + ".OrgARNs",
		OUARNs: prefix + ".OUARNs", SnapshotAccounts: prefix + ".SnapshotAccounts", SnapshotGroups: prefix + ".SnapshotGroups",
	}
}

func (f FieldNames) or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Validate checks every value of p without any AWS call and reports all
// problems at once, each naming its field (Go field names).
func (p Permissions) Validate() error { return p.ValidateNamed(FieldNames{}) }

// ValidateNamed is Validate with the field names used in messages.
func (p Permissions) ValidateNamed(n FieldNames) error {
	return errors.Join(
		ValidateEach(n.or(n.Accounts, "Accounts"), p.Accounts, ValidateAccountID),
		ValidateEach(n.or(n.Groups, "Groups"), p.Groups, ValidateGroup),
		ValidateEach(n.or(n.OrgARNs, "OrgARNs"), p.OrgARNs, ValidateOrgARN),
		ValidateEach(n.or(n.OUARNs, "OUARNs"), p.OUARNs, ValidateOUARN),
		ValidateEach(n.or(n.SnapshotAccounts, "SnapshotAccounts"), p.SnapshotAccounts, ValidateAccountID),
		ValidateEach(n.or(n.SnapshotGroups, "SnapshotGroups"), p.SnapshotGroups, ValidateGroup),
	)
}
