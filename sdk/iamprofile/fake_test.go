//go:build unix

package iamprofile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// fakeIAM keeps roles, inline policies and instance profiles in memory and
// logs every call as "Operation arg,arg". A fault hook may fail a call
// before it takes effect, or after (a lost answer).
type fakeIAM struct {
	mu       sync.Mutex
	calls    []string
	roles    map[string][]types.Tag
	policies map[string]string // "role/policy" -> document
	profiles map[string]*fakeProfile
	// fault, when set, is asked before each call: a non-nil err fails the
	// call, after it took effect when apply is true.
	fault func(ctx context.Context, op string) (apply bool, err error)
	// hideRole makes GetInstanceProfile omit the roles for this many calls
	// (IAM's eventual consistency).
	hideRole int
}

type fakeProfile struct {
	tags  []types.Tag
	roles []string
}

var _ CreateAPI = (*fakeIAM)(nil)

func newFakeIAM() *fakeIAM {
	return &fakeIAM{roles: map[string][]types.Tag{}, policies: map[string]string{}, profiles: map[string]*fakeProfile{}}
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "fake " + code}
}

func (f *fakeIAM) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// do logs the call, consults the fault hook and applies fn unless the
// fault says not to. fn runs with f.mu held.
func (f *fakeIAM) do(ctx context.Context, op string, args []string, fn func() error) error {
	f.mu.Lock()
	f.calls = append(f.calls, strings.TrimSpace(op+" "+strings.Join(args, ",")))
	f.mu.Unlock()
	apply, ferr := true, error(nil)
	if f.fault != nil {
		if a, err := f.fault(ctx, op); err != nil {
			apply, ferr = a, err
		}
	}
	if ferr == nil {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if apply {
		f.mu.Lock()
		err := fn()
		f.mu.Unlock()
		if ferr == nil {
			return err
		}
	}
	return ferr
}

func (f *fakeIAM) CreateRole(ctx context.Context, in *iam.CreateRoleInput, _ ...func(*iam.Options)) (*iam.CreateRoleOutput, error) {
	name := aws.ToString(in.RoleName)
	err := f.do(ctx, "CreateRole", []string{name}, func() error {
		if _, ok := f.roles[name]; ok {
			return apiErr("EntityAlreadyExists")
		}
		f.roles[name] = in.Tags
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &iam.CreateRoleOutput{Role: &types.Role{RoleName: in.RoleName, Arn: aws.String("arn:aws:iam::123456789012:role" + aws.ToString(in.Path) + name)}}, nil
}

func (f *fakeIAM) GetRole(ctx context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	name := aws.ToString(in.RoleName)
	var out *iam.GetRoleOutput
	err := f.do(ctx, "GetRole", []string{name}, func() error {
		tags, ok := f.roles[name]
		if !ok {
			return apiErr("NoSuchEntity")
		}
		out = &iam.GetRoleOutput{Role: &types.Role{RoleName: in.RoleName, Tags: tags, Arn: aws.String("arn:aws:iam::123456789012:role/" + name)}}
		return nil
	})
	return out, err
}

func (f *fakeIAM) PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, _ ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	role, name := aws.ToString(in.RoleName), aws.ToString(in.PolicyName)
	err := f.do(ctx, "PutRolePolicy", []string{role, name}, func() error {
		if _, ok := f.roles[role]; !ok {
			return apiErr("NoSuchEntity")
		}
		f.policies[role+"/"+name] = aws.ToString(in.PolicyDocument)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &iam.PutRolePolicyOutput{}, nil
}

func (f *fakeIAM) CreateInstanceProfile(ctx context.Context, in *iam.CreateInstanceProfileInput, _ ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error) {
	name := aws.ToString(in.InstanceProfileName)
	err := f.do(ctx, "CreateInstanceProfile", []string{name}, func() error {
		if _, ok := f.profiles[name]; ok {
			return apiErr("EntityAlreadyExists")
		}
		f.profiles[name] = &fakeProfile{tags: in.Tags}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &iam.CreateInstanceProfileOutput{InstanceProfile: &types.InstanceProfile{InstanceProfileName: in.InstanceProfileName, Arn: aws.String(profileARN(name))}}, nil
}

func profileARN(name string) string { return "arn:aws:iam::123456789012:instance-profile/" + name }

func (f *fakeIAM) GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, _ ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	name := aws.ToString(in.InstanceProfileName)
	var out *iam.GetInstanceProfileOutput
	err := f.do(ctx, "GetInstanceProfile", []string{name}, func() error {
		p, ok := f.profiles[name]
		if !ok {
			return apiErr("NoSuchEntity")
		}
		ip := &types.InstanceProfile{InstanceProfileName: in.InstanceProfileName, Arn: aws.String(profileARN(name)), Tags: p.tags}
		if f.hideRole > 0 {
			f.hideRole--
		} else {
			for _, r := range p.roles {
				ip.Roles = append(ip.Roles, types.Role{RoleName: aws.String(r)})
			}
		}
		out = &iam.GetInstanceProfileOutput{InstanceProfile: ip}
		return nil
	})
	return out, err
}

func (f *fakeIAM) AddRoleToInstanceProfile(ctx context.Context, in *iam.AddRoleToInstanceProfileInput, _ ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error) {
	profile, role := aws.ToString(in.InstanceProfileName), aws.ToString(in.RoleName)
	err := f.do(ctx, "AddRoleToInstanceProfile", []string{profile, role}, func() error {
		p, ok := f.profiles[profile]
		if !ok {
			return apiErr("NoSuchEntity")
		}
		if len(p.roles) > 0 {
			return apiErr("LimitExceeded")
		}
		p.roles = append(p.roles, role)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &iam.AddRoleToInstanceProfileOutput{}, nil
}

func (f *fakeIAM) RemoveRoleFromInstanceProfile(ctx context.Context, in *iam.RemoveRoleFromInstanceProfileInput, _ ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error) {
	profile, role := aws.ToString(in.InstanceProfileName), aws.ToString(in.RoleName)
	err := f.do(ctx, "RemoveRoleFromInstanceProfile", []string{profile, role}, func() error {
		p, ok := f.profiles[profile]
		if !ok || !slices.Contains(p.roles, role) {
			return apiErr("NoSuchEntity")
		}
		p.roles = slices.DeleteFunc(p.roles, func(r string) bool { return r == role })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &iam.RemoveRoleFromInstanceProfileOutput{}, nil
}

func (f *fakeIAM) DeleteInstanceProfile(ctx context.Context, in *iam.DeleteInstanceProfileInput, _ ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error) {
	name := aws.ToString(in.InstanceProfileName)
	err := f.do(ctx, "DeleteInstanceProfile", []string{name}, func() error {
		p, ok := f.profiles[name]
		if !ok {
			return apiErr("NoSuchEntity")
		}
		if len(p.roles) > 0 {
			return apiErr("DeleteConflict")
		}
		delete(f.profiles, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &iam.DeleteInstanceProfileOutput{}, nil
}

func (f *fakeIAM) DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, _ ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error) {
	key := aws.ToString(in.RoleName) + "/" + aws.ToString(in.PolicyName)
	err := f.do(ctx, "DeleteRolePolicy", []string{aws.ToString(in.RoleName), aws.ToString(in.PolicyName)}, func() error {
		if _, ok := f.policies[key]; !ok {
			return apiErr("NoSuchEntity")
		}
		delete(f.policies, key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &iam.DeleteRolePolicyOutput{}, nil
}

func (f *fakeIAM) DeleteRole(ctx context.Context, in *iam.DeleteRoleInput, _ ...func(*iam.Options)) (*iam.DeleteRoleOutput, error) {
	name := aws.ToString(in.RoleName)
	err := f.do(ctx, "DeleteRole", []string{name}, func() error {
		if _, ok := f.roles[name]; !ok {
			return apiErr("NoSuchEntity")
		}
		for k := range f.policies {
			if strings.HasPrefix(k, name+"/") {
				return apiErr("DeleteConflict")
			}
		}
		for _, p := range f.profiles {
			if slices.Contains(p.roles, name) {
				return apiErr("DeleteConflict")
			}
		}
		delete(f.roles, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &iam.DeleteRoleOutput{}, nil
}

// state describes what exists, for assertions: "role:x", "policy:x/x",
// "profile:x[roles]".
func (f *fakeIAM) state() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for r := range f.roles {
		out = append(out, "role:"+r)
	}
	for p := range f.policies {
		out = append(out, "policy:"+p)
	}
	for n, p := range f.profiles {
		out = append(out, fmt.Sprintf("profile:%s%v", n, p.roles))
	}
	slices.Sort(out)
	return out
}
