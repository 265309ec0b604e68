package iamprofile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/lost"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Kinds of the resources Create records in Options.Ledger. The ID of a role
// policy is "role/policy".
const (
	KindRole            ledger.Kind = "iam-role"
	KindRolePolicy      ledger.Kind = "iam-role-policy"
	KindInstanceProfile ledger.Kind = "iam-instance-profile"
)

// CreateTokenTag is the tag key under which Create puts a random token on
// the role and the instance profile it makes, so that after a failed
// create call it can tell what that call made from what existed before.
const CreateTokenTag = "ami-build:create-token"

// EC2TrustPolicy is the trust policy of the roles Create makes: EC2 may
// assume the role on behalf of an instance.
const EC2TrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// DeleteAPI is the client behaviour Delete needs.
type DeleteAPI interface {
	RemoveRoleFromInstanceProfile(ctx context.Context, in *iam.RemoveRoleFromInstanceProfileInput, optFns ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error)
	DeleteInstanceProfile(ctx context.Context, in *iam.DeleteInstanceProfileInput, optFns ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error)
	DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, optFns ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	DeleteRole(ctx context.Context, in *iam.DeleteRoleInput, optFns ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
}

// CheckAPI is the client behaviour Check needs.
type CheckAPI interface {
	GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, optFns ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
}

// CreateAPI is the client behaviour Create needs: the creates, the lookups
// that find what a failed create made, and DeleteAPI for removing it.
type CreateAPI interface {
	CreateRole(ctx context.Context, in *iam.CreateRoleInput, optFns ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	GetRole(ctx context.Context, in *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, optFns ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	CreateInstanceProfile(ctx context.Context, in *iam.CreateInstanceProfileInput, optFns ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	AddRoleToInstanceProfile(ctx context.Context, in *iam.AddRoleToInstanceProfileInput, optFns ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
	CheckAPI
	DeleteAPI
}

var (
	_ CreateAPI = (*iam.Client)(nil)
	_ DeleteAPI = (*iam.Client)(nil)
	_ CheckAPI  = (*iam.Client)(nil)
)

// Options are optional settings shared by the functions of this package.
type Options struct {
	// Ledger, when set, receives every resource Create makes, with its
	// undo.
	Ledger *ledger.Ledger
	// Logf, when set, receives progress messages. It never receives the
	// policy document.
	Logf func(format string, args ...any)
	// RetryDelay is the first delay between the checks of a wait (for the
	// role to show in the profile) and between the attempts at a deletion
	// blocked by IAM's eventual consistency. It doubles up to
	// RetryMaxDelay. Zero means 1s.
	RetryDelay time.Duration
	// RetryMaxDelay caps the delay between checks and attempts. Zero means
	// 5s.
	RetryMaxDelay time.Duration
	// UndoWait bounds how long a deletion retries while IAM still sees the
	// role in use (DeleteConflict). Zero means 1 minute.
	UndoWait time.Duration
}

func newOptions(optFns []func(*Options)) Options {
	o := opts.Apply(optFns)
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = 5 * time.Second
	}
	o.RetryMaxDelay = max(o.RetryMaxDelay, o.RetryDelay)
	if o.UndoWait <= 0 {
		o.UndoWait = time.Minute
	}
	return o
}

func (o Options) logf(format string, args ...any) {
	opts.Logf(o.Logf, format, args...)
}

// undoOptions are the options for calls made by an undo: no ledger.
func (o Options) undoOptions() func(*Options) {
	return func(u *Options) { *u = o; u.Ledger = nil }
}

// CreateInput describes a temporary instance profile.
type CreateInput struct {
	// Name is the name of the role, of its inline policy and of the
	// instance profile. Empty means "ami-build-" and a random suffix. Use
	// a unique name: a role or profile of that name that exists already
	// makes Create fail, and is left alone.
	Name string
	// Path is the IAM path of the role and the profile, such as
	// "/image-builds/". Empty means "/".
	Path string
	// PolicyDocument is the JSON policy document of the role's inline
	// policy: what the instance may do. Required.
	PolicyDocument string
	// Description of the role. Empty means a generic description.
	Description string
	// Tags go on the role and the profile.
	Tags map[string]string
	// MaxWait bounds the wait until IAM shows the role in the profile.
	// Zero means 2 minutes.
	MaxWait time.Duration
}

// CreateOutput is the result of Create.
type CreateOutput struct {
	// ProfileName and ProfileARN name the instance profile; give either to
	// RunInstances.
	ProfileName, ProfileARN string
	// RoleName and RoleARN name the role in the profile.
	RoleName, RoleARN string
	// PolicyName is the name of the role's inline policy.
	PolicyName string
}

// Create makes an IAM role that EC2 may assume (EC2TrustPolicy), puts
// in.PolicyDocument on it as an inline policy, makes an instance profile,
// adds the role to it and waits until IAM shows the role in the profile.
// With Options.Ledger set, each of the three is recorded as soon as it
// exists. When a step fails, what Create made is removed before it returns
// (whatever could not be removed stays recorded in Options.Ledger, and the
// error says so).
func Create(ctx context.Context, api CreateAPI, in *CreateInput, optFns ...func(*Options)) (*CreateOutput, error) {
	o := newOptions(optFns)
	name := in.Name
	if name == "" {
		name = "ami-build-" + randomSuffix(8)
	}
	path := in.Path
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") || !strings.HasSuffix(path, "/") {
		return nil, fmt.Errorf("create instance profile %q: path %q must begin and end with \"/\"", name, in.Path)
	}
	if strings.TrimSpace(in.PolicyDocument) == "" {
		return nil, fmt.Errorf("create instance profile %q: the policy document is empty", name)
	}
	desc := in.Description
	if desc == "" {
		desc = "Temporary role of an image build"
	}
	maxWait := in.MaxWait
	if maxWait <= 0 {
		maxWait = 2 * time.Minute
	}
	token := randomSuffix(16)
	tags := iamTags(in.Tags, token)

	c := &creation{api: api, o: o, name: name}
	out, err := c.run(ctx, path, desc, in.PolicyDocument, tags, token, maxWait)
	if err != nil {
		return nil, c.rollback(ctx, err)
	}
	return out, nil
}

// creation is one run of Create: what it made so far, for the rollback.
type creation struct {
	api  CreateAPI
	o    Options
	name string
	made []made
}

type made struct {
	res  ledger.Resource
	undo func(context.Context) error
}

// record notes a resource Create made, in the caller's ledger too.
func (c *creation) record(kind ledger.Kind, id string, undo func(context.Context) error) {
	r := ledger.Resource{Kind: kind, ID: id}
	c.made = append(c.made, made{r, undo})
	if c.o.Ledger != nil {
		c.o.Ledger.Record(r, undo)
	}
}

// run makes the role, its inline policy and the instance profile, adds the
// role to the profile and waits until IAM shows it there; what it made is
// in c.made for the rollback when it fails.
func (c *creation) run(ctx context.Context, path, desc, doc string, tags []types.Tag, token string, maxWait time.Duration) (*CreateOutput, error) {
	roleARN, err := c.createRole(ctx, path, desc, tags, token)
	if err != nil {
		return nil, err
	}
	if err := c.putPolicy(ctx, doc); err != nil {
		return nil, err
	}
	profileARN, err := c.createProfile(ctx, path, tags, token)
	if err != nil {
		return nil, err
	}
	if err := c.addRole(ctx); err != nil {
		return nil, err
	}
	c.o.logf("waiting until IAM shows role %q in instance profile %q", c.name, c.name)
	if err := c.waitRoleInProfile(ctx, maxWait); err != nil {
		return nil, err
	}
	return &CreateOutput{
		ProfileName: c.name,
		ProfileARN:  profileARN,
		RoleName:    c.name,
		RoleARN:     roleARN,
		PolicyName:  c.name,
	}, nil
}

// part is one of the IAM resources Create makes, as its messages name it
// and the rollback removes it.
type part struct {
	kind ledger.Kind
	// what names the kind in messages, after "IAM" ("instance profile"),
	// and short where a message has named it already ("profile").
	what, short string
	undo        func(context.Context) error
}

// role is the role as a part of the creation.
func (c *creation) role() part {
	undo := c.o.undoOptions()
	return part{KindRole, "role", "role", func(ctx context.Context) error { return deleteRole(ctx, c.api, c.name, undo) }}
}

// profile is the instance profile as a part of the creation.
func (c *creation) profile() part {
	undo := c.o.undoOptions()
	return part{KindInstanceProfile, "instance profile", "profile", func(ctx context.Context) error { return deleteProfile(ctx, c.api, c.name, c.name, undo) }}
}

// createRole makes the role EC2 may assume and returns its ARN.
func (c *creation) createRole(ctx context.Context, path, desc string, tags []types.Tag, token string) (string, error) {
	c.o.logf("creating IAM role %q", c.name)
	out, err := c.api.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(c.name),
		Path:                     aws.String(path),
		AssumeRolePolicyDocument: aws.String(EC2TrustPolicy),
		Description:              aws.String(desc),
		Tags:                     tags,
	})
	var role *types.Role
	if err == nil {
		role = out.Role
	}
	return settle(ctx, c, c.role(), role, err, func(r *types.Role) *string { return r.Arn },
		func() (*types.Role, error) { return findLostRole(ctx, c.api, c.name, token) })
}

// putPolicy puts the inline policy doc on the role.
func (c *creation) putPolicy(ctx context.Context, doc string) error {
	name := c.name
	c.o.logf("putting the inline policy %q on IAM role %q", name, name)
	_, err := c.api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName:       aws.String(name),
		PolicyName:     aws.String(name),
		PolicyDocument: aws.String(doc),
	})
	// A put that failed may have taken effect; the undo deletes the policy
	// if it is there.
	c.record(KindRolePolicy, name+"/"+name, func(ctx context.Context) error { return deleteRolePolicy(ctx, c.api, name, name) })
	if err != nil {
		return fmt.Errorf("put inline policy %q on IAM role %q: %w", name, name, err)
	}
	return nil
}

// createProfile makes the instance profile and returns its ARN.
func (c *creation) createProfile(ctx context.Context, path string, tags []types.Tag, token string) (string, error) {
	c.o.logf("creating IAM instance profile %q", c.name)
	out, err := c.api.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{
		InstanceProfileName: aws.String(c.name),
		Path:                aws.String(path),
		Tags:                tags,
	})
	var p *types.InstanceProfile
	if err == nil {
		p = out.InstanceProfile
	}
	return settle(ctx, c, c.profile(), p, err, func(p *types.InstanceProfile) *string { return p.Arn },
		func() (*types.InstanceProfile, error) { return findLostProfile(ctx, c.api, c.name, token) })
}

// settle takes the answer to a create call of pt, the resource got (nil
// when the answer had none) or the call's error err, records what the call
// made and returns its ARN. When the call failed, find looks for what it
// made anyway: that is recorded for the rollback and, unless ctx is done,
// used as the call's result.
func settle[T any](ctx context.Context, c *creation, pt part, got *T, err error, arn func(*T) *string, find func() (*T, error)) (string, error) {
	if err == nil && got != nil {
		c.record(pt.kind, c.name, pt.undo)
		return aws.ToString(arn(got)), nil
	}
	if err == nil {
		err = fmt.Errorf("no %s in the answer", pt.what)
	}
	err = fmt.Errorf("create IAM %s %q: %w", pt.what, c.name, err)
	found, ferr := find()
	if ferr != nil {
		return "", errors.Join(err, fmt.Errorf("look for IAM %s %q, which the failed call may have created; delete it by hand if it carries the tag %s: %w", pt.what, c.name, CreateTokenTag, ferr))
	}
	if found == nil {
		return "", err
	}
	c.record(pt.kind, c.name, pt.undo)
	if ctx.Err() != nil {
		return "", err
	}
	c.o.logf("the answer to creating IAM %s %q was lost; using the %s the call created", pt.what, c.name, pt.short)
	return aws.ToString(arn(found)), nil
}

// addRole adds the role to the instance profile. A retry after a lost
// answer finds the role there already (LimitExceeded: a profile holds one
// role), which counts as success.
func (c *creation) addRole(ctx context.Context) error {
	name := c.name
	c.o.logf("adding IAM role %q to instance profile %q", name, name)
	_, err := c.api.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{
		InstanceProfileName: aws.String(name),
		RoleName:            aws.String(name),
	})
	if err == nil {
		return nil
	}
	err = fmt.Errorf("add IAM role %q to instance profile %q: %w", name, name, err)
	if ctx.Err() != nil || awserr.Code(err) != codeLimitExceeded {
		return err
	}
	p, gerr := getProfile(ctx, c.api, name)
	if gerr != nil || p == nil || !hasRole(p, name) {
		return errors.Join(err, gerr)
	}
	c.o.logf("the answer to adding IAM role %q to instance profile %q was lost; the role is in it", name, name)
	return nil
}

// waitRoleInProfile polls GetInstanceProfile until it lists the role.
func (c *creation) waitRoleInProfile(ctx context.Context, maxWait time.Duration) error {
	deadline := time.Now().Add(maxWait)
	delay := c.o.RetryDelay
	for {
		p, err := getProfile(ctx, c.api, c.name)
		if err != nil {
			return fmt.Errorf("wait for IAM instance profile %q: %w", c.name, err)
		}
		if p != nil && hasRole(p, c.name) {
			return nil
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("wait for IAM instance profile %q: IAM did not show role %q in it within %s", c.name, c.name, maxWait)
		}
		if err := poll.Sleep(ctx, delay); err != nil {
			return fmt.Errorf("wait for IAM instance profile %q: %w", c.name, err)
		}
		delay = min(2*delay, c.o.RetryMaxDelay)
	}
}

// rollback removes what Create made, in reverse order, with a context that
// outlives a cancelled ctx, and forgets what it removed from the caller's
// ledger. It returns cause with any failure to remove.
func (c *creation) rollback(ctx context.Context, cause error) error {
	if len(c.made) == 0 {
		return cause
	}
	ctx, cancel := lost.Context(ctx)
	defer cancel()
	var errs []error
	var removed []string
	for i := len(c.made) - 1; i >= 0; i-- {
		m := c.made[i]
		if err := m.undo(ctx); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", m.res, err))
			continue
		}
		removed = append(removed, m.res.String())
		if c.o.Ledger != nil {
			c.o.Ledger.ForgetResource(m.res)
		}
	}
	if len(errs) > 0 {
		if c.o.Ledger != nil {
			errs = append(errs, errors.New("what was not removed is recorded for a later undo"))
		}
		return errors.Join(cause, errors.Join(errs...))
	}
	c.o.logf("removed %s after the failure", strings.Join(removed, ", "))
	return fmt.Errorf("%w (removed what was made: %s)", cause, strings.Join(removed, ", "))
}

// DeleteInput names what Delete removes. Empty fields are skipped.
type DeleteInput struct {
	// ProfileName is the instance profile; RoleName is taken out of it
	// first.
	ProfileName string
	// RoleName is the role; PolicyName is its inline policy, deleted
	// before the role.
	RoleName, PolicyName string
}

// Delete removes an instance profile, a role and the role's inline policy,
// as Create made them: the role is taken out of the profile, the profile
// deleted, then the policy, then the role. What does not exist (any more)
// is not an error. It tries every part and returns the failures joined.
func Delete(ctx context.Context, api DeleteAPI, in *DeleteInput, optFns ...func(*Options)) (*DeleteOutput, error) {
	if err := remove(ctx, api, in, optFns...); err != nil {
		return nil, err
	}
	return &DeleteOutput{}, nil
}

// DeleteOutput is the result of Delete; it carries nothing yet.
type DeleteOutput struct{}

func remove(ctx context.Context, api DeleteAPI, in *DeleteInput, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	var errs []error
	if in.ProfileName != "" {
		errs = append(errs, deleteProfile(ctx, api, in.ProfileName, in.RoleName, o.undoOptions()))
	}
	if in.RoleName != "" && in.PolicyName != "" {
		errs = append(errs, deleteRolePolicy(ctx, api, in.RoleName, in.PolicyName))
	}
	if in.RoleName != "" {
		errs = append(errs, deleteRole(ctx, api, in.RoleName, o.undoOptions()))
	}
	return errors.Join(errs...)
}

// CheckInput names the instance profile Check looks up.
type CheckInput struct {
	// Profile is the profile's name or ARN. Required.
	Profile string
}

// CheckOutput is the result of Check.
type CheckOutput struct {
	// ARN is the profile's ARN.
	ARN string
}

// ErrNotFound is wrapped by Check's error when the instance profile does
// not exist.
var ErrNotFound = errors.New("the instance profile does not exist")

// Check looks up an existing instance profile by name or ARN and returns
// its ARN. A profile that does not exist is an error naming it that wraps
// ErrNotFound. No option changes its behaviour today; optFns is there for
// the uniform signature.
func Check(ctx context.Context, api CheckAPI, in *CheckInput, optFns ...func(*Options)) (*CheckOutput, error) {
	arn, err := check(ctx, api, in.Profile)
	if err != nil {
		return nil, err
	}
	return &CheckOutput{ARN: arn}, nil
}

func check(ctx context.Context, api CheckAPI, nameOrARN string) (string, error) {
	name := nameOrARN
	if strings.HasPrefix(name, "arn:") {
		// arn:aws:iam::123456789012:instance-profile/path/name
		name = name[strings.LastIndex(name, "/")+1:]
	}
	p, err := getProfile(ctx, api, name)
	if err != nil {
		return "", fmt.Errorf("look up IAM instance profile %q: %w", nameOrARN, err)
	}
	if p == nil {
		return "", fmt.Errorf("look up IAM instance profile %q: %w", nameOrARN, ErrNotFound)
	}
	return aws.ToString(p.Arn), nil
}

// deleteProfile takes role (if set) out of the profile and deletes it.
func deleteProfile(ctx context.Context, api DeleteAPI, profile, role string, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	if role != "" {
		o.logf("removing IAM role %q from instance profile %q", role, profile)
		_, err := api.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
			InstanceProfileName: aws.String(profile),
			RoleName:            aws.String(role),
		})
		if err != nil && awserr.Code(err) != codeNoSuchEntity {
			return fmt.Errorf("remove IAM role %q from instance profile %q: %w", role, profile, err)
		}
	}
	o.logf("deleting IAM instance profile %q", profile)
	return retryConflict(ctx, o, func() error {
		_, err := api.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(profile)})
		if err != nil && awserr.Code(err) != codeNoSuchEntity {
			return fmt.Errorf("delete IAM instance profile %q: %w", profile, err)
		}
		return nil
	})
}

func deleteRolePolicy(ctx context.Context, api DeleteAPI, role, policy string) error {
	_, err := api.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(policy)})
	if err != nil && awserr.Code(err) != codeNoSuchEntity {
		return fmt.Errorf("delete inline policy %q of IAM role %q: %w", policy, role, err)
	}
	return nil
}

func deleteRole(ctx context.Context, api DeleteAPI, role string, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	o.logf("deleting IAM role %q", role)
	return retryConflict(ctx, o, func() error {
		_, err := api.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(role)})
		if err != nil && awserr.Code(err) != codeNoSuchEntity {
			return fmt.Errorf("delete IAM role %q: %w", role, err)
		}
		return nil
	})
}

// retryConflict calls fn again while it fails with DeleteConflict (IAM
// still sees the role in a profile, or a policy on the role, for a moment
// after they were removed), for up to o.UndoWait.
func retryConflict(ctx context.Context, o Options, fn func() error) error {
	deadline := time.Now().Add(o.UndoWait)
	delay := o.RetryDelay
	for {
		err := fn()
		if err == nil || awserr.Code(err) != codeDeleteConflict || time.Now().Add(delay).After(deadline) {
			return err
		}
		o.logf("%v; retrying in %s", err, delay)
		if serr := poll.Sleep(ctx, delay); serr != nil {
			return errors.Join(err, serr)
		}
		delay = min(2*delay, o.RetryMaxDelay)
	}
}

// findLostRole returns the role named name if it carries token, or nil.
func findLostRole(ctx context.Context, api CreateAPI, name, token string) (*types.Role, error) {
	callerDone := ctx.Err() != nil
	ctx, cancel := lost.Context(ctx)
	defer cancel()
	return lost.FindOne(ctx, callerDone, func() (*types.Role, error) {
		out, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if awserr.Code(err) == codeNoSuchEntity {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if out.Role == nil || !hasToken(out.Role.Tags, token) {
			return nil, nil
		}
		return out.Role, nil
	})
}

// findLostProfile returns the instance profile named name if it carries
// token, or nil.
func findLostProfile(ctx context.Context, api CreateAPI, name, token string) (*types.InstanceProfile, error) {
	callerDone := ctx.Err() != nil
	ctx, cancel := lost.Context(ctx)
	defer cancel()
	return lost.FindOne(ctx, callerDone, func() (*types.InstanceProfile, error) {
		p, err := getProfile(ctx, api, name)
		if err != nil || p == nil || !hasToken(p.Tags, token) {
			return nil, err
		}
		return p, nil
	})
}

// getProfile returns the named instance profile, nil when there is none.
func getProfile(ctx context.Context, api CheckAPI, name string) (*types.InstanceProfile, error) {
	out, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if awserr.Code(err) == codeNoSuchEntity {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return out.InstanceProfile, nil
}

func hasRole(p *types.InstanceProfile, role string) bool {
	return slices.ContainsFunc(p.Roles, func(r types.Role) bool { return aws.ToString(r.RoleName) == role })
}

// IAM error codes this package reacts to.
const (
	codeNoSuchEntity   = "NoSuchEntity"
	codeDeleteConflict = "DeleteConflict"
	codeLimitExceeded  = "LimitExceeded"
)

// iamTags converts tags plus the create token, sorted by key.
func iamTags(m map[string]string, token string) []types.Tag {
	all := maps.Clone(m)
	if all == nil {
		all = map[string]string{}
	}
	all[CreateTokenTag] = token
	out := make([]types.Tag, 0, len(all))
	for _, k := range slices.Sorted(maps.Keys(all)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(all[k])})
	}
	return out
}

func hasToken(tags []types.Tag, token string) bool {
	return slices.ContainsFunc(tags, func(t types.Tag) bool {
		return aws.ToString(t.Key) == CreateTokenTag && aws.ToString(t.Value) == token
	})
}

// randomSuffix returns n random bytes as hex.
func randomSuffix(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
