//go:generate packer-sdc mapstructure-to-hcl2 -type TemporaryIAMProfileConfig,PolicyDocument,Statement
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
)

// TemporaryIAMProfileConfig gives the build instance an IAM instance
// profile made for the build, or checks the one named by
// `iam_instance_profile`.
//
// With `temporary_iam_instance_profile_policy_document`, the builder
// creates an IAM role that EC2 may assume, puts the document on it as an
// inline policy, creates an instance profile holding the role (all three
// named `packer-<uuid>` and tagged with `run_tags`), launches the build
// instance with it, and deletes all three when the build ends, whatever
// its outcome (Ctrl-C included). The credentials used need the IAM actions
// of `example/iam/ami-builder-temporary-profile-policy.json`.
type TemporaryIAMProfileConfig struct {
	// Do not check, before launching, that the instance profile named by
	// `iam_instance_profile` exists. By default the builder looks it up
	// with `iam:GetInstanceProfile`, so that a typo fails the build before
	// anything is created; set this when the credentials may not read IAM.
	SkipProfileValidation bool `mapstructure:"skip_profile_validation" required:"false"`
	// An IAM policy document: what the build instance may do with the
	// temporary instance profile the builder creates for it (see above).
	// Not valid together with `iam_instance_profile`.
	//
	// ```hcl
	// temporary_iam_instance_profile_policy_document {
	//   Version = "2012-10-17"
	//   Statement {
	//     Effect   = "Allow"
	//     Action   = ["s3:GetObject"]
	//     Resource = ["arn:aws:s3:::build-artifacts/*"]
	//   }
	// }
	// ```
	//
	// In a JSON template it is the policy document itself, with a list of
	// statements.
	TemporaryIamInstanceProfilePolicyDocument *PolicyDocument `mapstructure:"temporary_iam_instance_profile_policy_document" required:"false"`
}

// PolicyDocument is an IAM policy document. The field names are IAM's.
type PolicyDocument struct {
	// The policy language version: `2012-10-17` (the default) or
	// `2008-10-17`.
	Version string `mapstructure:"Version" required:"false"`
	// The statements of the policy, at least one; repeat the block for
	// more.
	Statement []Statement `mapstructure:"Statement" required:"true"`
}

// Statement is one statement of an IAM policy document.
type Statement struct {
	// `Allow` or `Deny`.
	Effect string `mapstructure:"Effect" required:"true"`
	// The actions the statement covers, such as `s3:GetObject` or
	// `logs:*`.
	Action []string `mapstructure:"Action" required:"true"`
	// The ARNs of the resources the statement covers, or `*`.
	Resource []string `mapstructure:"Resource" required:"true"`
}

// maxInlinePolicySize is IAM's limit on the size of a role's inline
// policies.
const maxInlinePolicySize = 10240

var iamActionRE = regexp.MustCompile(`^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$`)

// prepare checks the document and its combination with iamProfile (the
// iam_instance_profile of the run configuration), and fills in the
// default version.
func (c *TemporaryIAMProfileConfig) prepare(iamProfile string) []error {
	d := c.TemporaryIamInstanceProfilePolicyDocument
	if d == nil {
		return nil
	}
	const field = "temporary_iam_instance_profile_policy_document"
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if iamProfile != "" {
		add("iam_instance_profile, %s: set one of them, not both", field)
	}
	switch d.Version {
	case "":
		d.Version = "2012-10-17"
	case "2012-10-17", "2008-10-17":
	default:
		if !amiconfig.Unknown(d.Version) {
			add("%s.Version: %q is not a policy language version; valid are \"2012-10-17\" and \"2008-10-17\"", field, d.Version)
		}
	}
	if len(d.Statement) == 0 {
		add("%s: needs at least one Statement block", field)
	}
	for i, st := range d.Statement {
		if st.Effect != "Allow" && st.Effect != "Deny" && !amiconfig.Unknown(st.Effect) {
			add("%s.Statement[%d].Effect: %q is invalid; valid are \"Allow\" and \"Deny\"", field, i, st.Effect)
		}
		if len(st.Action) == 0 {
			add("%s.Statement[%d].Action: required, for example [\"s3:GetObject\"]", field, i)
		}
		for _, a := range st.Action {
			if !amiconfig.Matches(iamActionRE, a) {
				add("%s.Statement[%d].Action: %q is not an IAM action like \"s3:GetObject\" or \"logs:*\"", field, i, a)
			}
		}
		if len(st.Resource) == 0 {
			add("%s.Statement[%d].Resource: required, for example [\"*\"] or resource ARNs", field, i)
		}
		for _, r := range st.Resource {
			if r == "" {
				add("%s.Statement[%d].Resource: a resource is empty", field, i)
			}
		}
	}
	if doc, err := d.JSON(); err == nil && len(doc) > maxInlinePolicySize {
		add("%s: %d characters as JSON; IAM allows at most %d in a role's inline policies", field, len(doc), maxInlinePolicySize)
	}
	return errs
}

// JSON returns the document as IAM takes it.
func (d *PolicyDocument) JSON() (string, error) {
	type statement struct {
		Effect   string
		Action   []string
		Resource []string
	}
	doc := struct {
		Version   string
		Statement []statement
	}{Version: d.Version}
	for _, s := range d.Statement {
		doc.Statement = append(doc.Statement, statement(s))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("encode temporary_iam_instance_profile_policy_document: %w", err)
	}
	return string(b), nil
}
