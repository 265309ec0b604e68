//go:build unix

package awstest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Policy is the Allow statements of an IAM identity policy document, for
// checking recorded calls against a documented least-privilege policy.
// Only Effect, Action and Resource are interpreted; conditions are not.
type Policy struct {
	Statements []Statement
}

// Statement is one Allow statement of a [Policy].
type Statement struct {
	Sid string
	// Actions and Resources are the statement's patterns; IAM wildcards
	// (* and ?) are honoured, actions case-insensitively.
	Actions   []string
	Resources []string
}

// Requirement is one IAM action on one resource ARN. Resource is "*" for
// services whose actions are not scoped to resources here (EC2, STS).
type Requirement struct {
	Action, Resource string
}

// String gives "ec2:RunInstances on *".
func (r Requirement) String() string { return r.Action + " on " + r.Resource }

// LoadPolicy reads an IAM policy file; see [ParsePolicy].
func LoadPolicy(path string, placeholders map[string]string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParsePolicy(b, placeholders)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy parses an IAM policy document after replacing each key of
// placeholders in its text with the value (e.g. "ACCOUNT_ID" with the test
// account; longer keys first). Every statement must have Effect "Allow";
// Action and Resource may each be a string or a list.
func ParsePolicy(doc []byte, placeholders map[string]string) (*Policy, error) {
	keys := make([]string, 0, len(placeholders))
	for k := range placeholders {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	s := string(doc)
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, placeholders[k])
	}
	var raw struct {
		Statement []struct {
			Sid      string
			Effect   string
			Action   json.RawMessage
			Resource json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("parse IAM policy: %w", err)
	}
	p := &Policy{}
	for i, st := range raw.Statement {
		name := st.Sid
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		if st.Effect != "Allow" {
			return nil, fmt.Errorf("statement %s: effect %q, want Allow", name, st.Effect)
		}
		actions, err := stringList(st.Action)
		if err != nil {
			return nil, fmt.Errorf("statement %s: Action: %w", name, err)
		}
		resources, err := stringList(st.Resource)
		if err != nil {
			return nil, fmt.Errorf("statement %s: Resource: %w", name, err)
		}
		p.Statements = append(p.Statements, Statement{Sid: name, Actions: actions, Resources: resources})
	}
	return p, nil
}

// stringList decodes an IAM string-or-list value.
func stringList(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%s is neither a string nor a list of strings", raw)
	}
	return list, nil
}

// globMatch matches IAM wildcards case-insensitively: * any run of
// characters, ? one.
func globMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile("(?i)" + re).MatchString(s)
}

// Allowing returns the action patterns of p that grant r, in statement
// order; none means r is denied.
func (p *Policy) Allowing(r Requirement) []string {
	var by []string
	for _, st := range p.Statements {
		if !slices.ContainsFunc(st.Resources, func(res string) bool { return globMatch(res, r.Resource) }) {
			continue
		}
		for _, a := range st.Actions {
			if globMatch(a, r.Action) {
				by = append(by, a)
			}
		}
	}
	return by
}

// Allows reports whether p grants r.
func (p *Policy) Allows(r Requirement) bool { return len(p.Allowing(r)) > 0 }

// kmsCopyActions are what the caller of an encrypted CopyImage needs on
// the KMS key (EC2 uses the key on the caller's behalf).
var kmsCopyActions = []string{"CreateGrant", "Decrypt", "DescribeKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo"}

// RequiredActions returns the IAM permissions a recorded call needs:
//
//   - sts:GetCallerIdentity needs none;
//   - an EC2 action needs ec2:<Action> on "*", plus ec2:CreateTags when it
//     tags on create (TagSpecification parameters), plus the KMS actions of
//     the EBS encryption documentation on the key for an encrypted CopyImage
//     (KmsKeyId must then be a key ARN);
//   - kms:DescribeKey needs that action on the key's ARN (any key of the
//     account in the call's region when the key is named by alias or ID);
//   - an IAM role or instance profile action needs iam:<Action> on the
//     role's or profile's ARN (path "/" unless the call names one), plus
//     iam:TagRole or iam:TagInstanceProfile when it tags on create, and
//     AddRoleToInstanceProfile iam:PassRole on the role;
//   - S3 object and bucket operations need their IAM actions on the bucket
//     or object ARN (s3:ListBucket for HeadBucket and listings,
//     s3:GetObject for HeadObject, s3:PutObjectAcl when a canned ACL is
//     sent, s3:GetObject on the source of a CopyObject, ...);
//   - ssm:StartSession needs the action on the target instance's ARN and on
//     the session document's ARN (SSM-SessionManagerRunShell when none is
//     named), ssm:TerminateSession on the session's ARN.
//
// It returns an error for a call it has no mapping for.
func RequiredActions(c Call) ([]Requirement, error) {
	if required := serviceRequirements[c.Service]; required != nil {
		return required(c)
	}
	return nil, noMapping(c)
}

// serviceRequirements maps a service to the function that gives the IAM
// permissions of its calls (see [RequiredActions]).
var serviceRequirements = map[string]func(Call) ([]Requirement, error){
	"sts": stsRequirements,
	"ec2": ec2Requirements,
	"kms": kmsRequirements,
	"iam": iamRequirements,
	"ssm": ssmRequirements,
	"s3":  s3Requirements,
}

// noMapping is the error for a call RequiredActions cannot map.
func noMapping(c Call) error {
	return fmt.Errorf("no IAM mapping for %s:%s", c.Service, c.Action)
}

// stsRequirements maps the STS calls: GetCallerIdentity needs no
// permission at all.
func stsRequirements(c Call) ([]Requirement, error) {
	switch c.Action {
	case "GetCallerIdentity":
		return nil, nil
	case "AssumeRole":
		return []Requirement{{"sts:AssumeRole", c.Params.Get("RoleArn")}}, nil
	}
	return nil, noMapping(c)
}

// ec2Requirements maps any EC2 call to its own action, plus tagging on
// create and the KMS permissions of an encrypted CopyImage.
func ec2Requirements(c Call) ([]Requirement, error) {
	rs := []Requirement{{"ec2:" + c.Action, "*"}}
	for k := range c.Params {
		if strings.HasPrefix(k, "TagSpecification") {
			rs = append(rs, Requirement{"ec2:CreateTags", "*"})
			break
		}
	}
	if c.Action == "CopyImage" && c.Params.Get("Encrypted") == "true" {
		key := c.Params.Get("KmsKeyId")
		if !strings.HasPrefix(key, "arn:aws:kms:") {
			return nil, fmt.Errorf("CopyImage in %s: KmsKeyId %q; only key ARNs are mapped to KMS permissions", c.Region, key)
		}
		for _, a := range kmsCopyActions {
			rs = append(rs, Requirement{"kms:" + a, key})
		}
	}
	return rs, nil
}

// kmsRequirements maps KMS DescribeKey.
func kmsRequirements(c Call) ([]Requirement, error) {
	if c.Action != "DescribeKey" {
		return nil, noMapping(c)
	}
	// IAM authorizes on the key's ARN; a key named by alias or ID is some
	// key of the account in the call's region.
	key := c.Params.Get("KeyId")
	if !strings.HasPrefix(key, "arn:aws:kms:") || !strings.Contains(key, ":key/") {
		key = "arn:aws:kms:" + c.Region + ":" + TestAccountID + ":key/*"
	}
	return []Requirement{{"kms:DescribeKey", key}}, nil
}

// ssmRequirements maps the Session Manager and Parameter Store calls.
func ssmRequirements(c Call) ([]Requirement, error) {
	switch c.Action {
	case "StartSession":
		doc := cmp.Or(c.Params.Get("DocumentName"), "SSM-SessionManagerRunShell")
		return []Requirement{
			{"ssm:StartSession", "arn:aws:ec2:" + c.Region + ":" + TestAccountID + ":instance/" + c.Params.Get("Target")},
			{"ssm:StartSession", "arn:aws:ssm:" + c.Region + "::document/" + doc},
		}, nil
	case "TerminateSession":
		return []Requirement{{"ssm:TerminateSession", "arn:aws:ssm:" + c.Region + ":" + TestAccountID + ":session/" + c.Params.Get("SessionId")}}, nil
	case "GetParameter", "PutParameter", "DeleteParameter":
		account := cmp.Or(c.Account, TestAccountID)
		param := "arn:aws:ssm:" + c.Region + ":" + account + ":parameter/" + strings.TrimPrefix(c.Params.Get("Name"), "/")
		rs := []Requirement{{"ssm:" + c.Action, param}}
		if c.Action == "PutParameter" && strings.Contains(string(c.JSON), `"Tags"`) {
			// Tags on creation need the tagging permission too.
			rs = append(rs, Requirement{"ssm:AddTagsToResource", param})
		}
		return rs, nil
	}
	return nil, noMapping(c)
}

// s3Requirements maps the S3 bucket and object calls to their IAM actions
// on the bucket's or object's ARN.
func s3Requirements(c Call) ([]Requirement, error) {
	bucket := "arn:aws:s3:::" + c.Bucket
	object := bucket + "/" + c.Key
	acl := func(rs []Requirement) []Requirement {
		if c.Header.Get("X-Amz-Acl") != "" {
			rs = append(rs, Requirement{"s3:PutObjectAcl", object})
		}
		return rs
	}
	switch c.Action {
	case "GetBucketLocation", "GetBucketOwnershipControls":
		return []Requirement{{"s3:" + c.Action, bucket}}, nil
	case "GetBucketEncryption":
		return []Requirement{{"s3:GetEncryptionConfiguration", bucket}}, nil
	case "HeadBucket", "ListObjects", "ListObjectsV2":
		return []Requirement{{"s3:ListBucket", bucket}}, nil
	case "GetObject", "HeadObject":
		return []Requirement{{"s3:GetObject", object}}, nil
	case "PutObject":
		return acl([]Requirement{{"s3:PutObject", object}}), nil
	case "CopyObject":
		src, err := url.PathUnescape(strings.TrimPrefix(c.Header.Get("X-Amz-Copy-Source"), "/"))
		if err != nil {
			return nil, fmt.Errorf("CopyObject source %q: %w", c.Header.Get("X-Amz-Copy-Source"), err)
		}
		return acl([]Requirement{{"s3:PutObject", object}, {"s3:GetObject", "arn:aws:s3:::" + src}}), nil
	case "DeleteObject":
		return []Requirement{{"s3:DeleteObject", object}}, nil
	case "DeleteObjects":
		return []Requirement{{"s3:DeleteObject", bucket + "/*"}}, nil
	}
	return nil, noMapping(c)
}

// Denied checks that p grants every permission the calls need (see
// [RequiredActions]). It returns one problem per denied permission or
// unmapped call, in call order, and the set of action patterns of p that
// granted something.
func (p *Policy) Denied(calls []Call) (problems []string, used map[string]bool) {
	used = map[string]bool{}
	for _, c := range calls {
		rs, err := RequiredActions(c)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, r := range rs {
			by := p.Allowing(r)
			if len(by) == 0 {
				problems = append(problems, fmt.Sprintf("%s %s:%s needs %s on %s, which the policy does not allow", c.Region, c.Service, c.Action, r.Action, r.Resource))
			}
			for _, a := range by {
				used[a] = true
			}
		}
	}
	return problems, used
}

// Check checks that p is exactly what the calls need: every permission a
// call needs is granted, and every action pattern of p granted some call's
// permission or is a key of optional, whose value says which code path
// (not exercised by the calls) needs it. A key of optional that is not an
// action of p is a problem too, as is an empty calls. Check returns the
// problems found, nil when there are none.
func (p *Policy) Check(calls []Call, optional map[string]string) []string {
	if len(calls) == 0 {
		return []string{"no AWS call was recorded"}
	}
	problems, used := p.Denied(calls)
	listed := map[string]bool{}
	for _, st := range p.Statements {
		for _, a := range st.Actions {
			listed[a] = true
			if !used[a] && optional[a] == "" {
				problems = append(problems, fmt.Sprintf("policy statement %s allows %s, which no call needed and which is not a known optional action", st.Sid, a))
			}
		}
	}
	var unknown []string
	for a := range optional {
		if !listed[a] {
			unknown = append(unknown, a)
		}
	}
	sort.Strings(unknown)
	for _, a := range unknown {
		problems = append(problems, fmt.Sprintf("optional action %s is not in the policy", a))
	}
	return problems
}

// CheckPolicy loads the policy at path (see [LoadPolicy]) and reports
// every problem [Policy.Check] finds as a test error. It fails the test at
// once when the policy cannot be loaded.
func CheckPolicy(t testing.TB, path string, placeholders map[string]string, calls []Call, optional map[string]string) {
	t.Helper()
	p, err := LoadPolicy(path, placeholders)
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range p.Check(calls, optional) {
		t.Error(problem)
	}
}

// iamRequirements maps the IAM role and instance profile calls.
func iamRequirements(c Call) ([]Requirement, error) {
	arn := func(kind, name string) string {
		path := c.Params.Get("Path")
		if path == "" {
			path = "/"
		}
		return "arn:aws:iam::" + TestAccountID + ":" + kind + path + name
	}
	role := arn("role", c.Params.Get("RoleName"))
	profile := arn("instance-profile", c.Params.Get("InstanceProfileName"))
	tagged := c.Params.Get("Tags.member.1.Key") != ""
	switch c.Action {
	case "CreateRole":
		rs := []Requirement{{"iam:CreateRole", role}}
		if tagged {
			rs = append(rs, Requirement{"iam:TagRole", role})
		}
		return rs, nil
	case "GetRole", "DeleteRole", "PutRolePolicy", "DeleteRolePolicy":
		return []Requirement{{"iam:" + c.Action, role}}, nil
	case "CreateInstanceProfile":
		rs := []Requirement{{"iam:CreateInstanceProfile", profile}}
		if tagged {
			rs = append(rs, Requirement{"iam:TagInstanceProfile", profile})
		}
		return rs, nil
	case "GetInstanceProfile", "DeleteInstanceProfile", "RemoveRoleFromInstanceProfile":
		return []Requirement{{"iam:" + c.Action, profile}}, nil
	case "AddRoleToInstanceProfile":
		return []Requirement{{"iam:AddRoleToInstanceProfile", profile}, {"iam:PassRole", role}}, nil
	}
	return nil, noMapping(c)
}
