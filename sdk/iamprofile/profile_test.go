//go:build unix

package iamprofile

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:*"],"Resource":["*"]}]}`

func fast(o *Options) {
	o.RetryDelay = time.Millisecond
	o.RetryMaxDelay = 5 * time.Millisecond
	o.UndoWait = time.Second
}

// failOn fails the first call of op with code, after it took effect when
// lost is true.
func failOn(op, code string, lost bool) func(context.Context, string) (bool, error) {
	done := false
	return func(_ context.Context, got string) (bool, error) {
		if got != op || done {
			return false, nil
		}
		done = true
		return lost, apiErr(code)
	}
}

var (
	createCalls = []string{
		"CreateRole b",
		"PutRolePolicy b,b",
		"CreateInstanceProfile b",
		"AddRoleToInstanceProfile b,b",
		"GetInstanceProfile b",
	}
	undoCalls = []string{
		"RemoveRoleFromInstanceProfile b,b",
		"DeleteInstanceProfile b",
		"DeleteRolePolicy b,b",
		"DeleteRole b",
	}
	allMade = []string{"policy:b/b", "profile:b[b]", "role:b"}
)

func TestCreate(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeIAM)
		// wantErr is part of the error; empty means success.
		wantErr string
		// wantCalls is the whole call log of Create.
		wantCalls []string
		// wantState is what exists after Create.
		wantState []string
	}{
		{
			name:      "all three made",
			wantCalls: createCalls,
			wantState: allMade,
		},
		{
			name:      "IAM shows the role in the profile late",
			setup:     func(f *fakeIAM) { f.hideRole = 2 },
			wantCalls: append(slices.Clone(createCalls), "GetInstanceProfile b", "GetInstanceProfile b"),
			wantState: allMade,
		},
		{
			name:  "role create answer lost: the role with the token is used",
			setup: func(f *fakeIAM) { f.fault = failOn("CreateRole", "ServiceFailure", true) },
			wantCalls: []string{"CreateRole b", "GetRole b", "PutRolePolicy b,b", "CreateInstanceProfile b",
				"AddRoleToInstanceProfile b,b", "GetInstanceProfile b"},
			wantState: allMade,
		},
		{
			name:      "role create failed: nothing made, nothing removed",
			setup:     func(f *fakeIAM) { f.fault = failOn("CreateRole", "AccessDenied", false) },
			wantErr:   "create IAM role \"b\"",
			wantCalls: []string{"CreateRole b", "GetRole b"},
		},
		{
			name: "a role of that name that is not ours is left alone",
			setup: func(f *fakeIAM) {
				f.roles["b"] = []types.Tag{{Key: aws.String("Owner"), Value: aws.String("someone")}}
			},
			wantErr:   "EntityAlreadyExists",
			wantCalls: []string{"CreateRole b", "GetRole b"},
			wantState: []string{"role:b"},
		},
		{
			name:      "policy refused: the role is removed",
			setup:     func(f *fakeIAM) { f.fault = failOn("PutRolePolicy", "MalformedPolicyDocument", false) },
			wantErr:   "MalformedPolicyDocument",
			wantCalls: []string{"CreateRole b", "PutRolePolicy b,b", "DeleteRolePolicy b,b", "DeleteRole b"},
		},
		{
			name:  "profile create answer lost: the profile with the token is used",
			setup: func(f *fakeIAM) { f.fault = failOn("CreateInstanceProfile", "ServiceFailure", true) },
			wantCalls: []string{"CreateRole b", "PutRolePolicy b,b", "CreateInstanceProfile b", "GetInstanceProfile b",
				"AddRoleToInstanceProfile b,b", "GetInstanceProfile b"},
			wantState: allMade,
		},
		{
			name: "a profile of that name that is not ours is left alone",
			setup: func(f *fakeIAM) {
				f.profiles["b"] = &fakeProfile{roles: []string{"theirs"}}
			},
			wantErr: "EntityAlreadyExists",
			wantCalls: []string{"CreateRole b", "PutRolePolicy b,b", "CreateInstanceProfile b", "GetInstanceProfile b",
				"DeleteRolePolicy b,b", "DeleteRole b"},
			wantState: []string{"profile:b[theirs]"},
		},
		{
			name:  "add-role answer lost: the retry's LimitExceeded is success",
			setup: func(f *fakeIAM) { f.fault = failOn("AddRoleToInstanceProfile", "LimitExceeded", true) },
			wantCalls: []string{"CreateRole b", "PutRolePolicy b,b", "CreateInstanceProfile b", "AddRoleToInstanceProfile b,b",
				"GetInstanceProfile b", "GetInstanceProfile b"},
			wantState: allMade,
		},
		{
			name:      "add-role refused: all three removed",
			setup:     func(f *fakeIAM) { f.fault = failOn("AddRoleToInstanceProfile", "AccessDenied", false) },
			wantErr:   "add IAM role \"b\" to instance profile \"b\"",
			wantCalls: append(slices.Clone(createCalls[:4]), undoCalls...),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIAM()
			if tc.setup != nil {
				tc.setup(f)
			}
			var l ledger.Ledger
			out, err := Create(context.Background(), f, &CreateInput{Name: "b", PolicyDocument: doc, Tags: map[string]string{"Build": "x"}},
				fast, func(o *Options) { o.Ledger = &l })
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				if out.ProfileName != "b" || out.RoleName != "b" || out.PolicyName != "b" || out.ProfileARN != profileARN("b") {
					t.Errorf("output = %+v", out)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Create error = %v, want it to contain %q", err, tc.wantErr)
			}
			if got := f.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("calls:\n got %q\nwant %q", got, tc.wantCalls)
			}
			if got := f.state(); !slices.Equal(got, tc.wantState) {
				t.Errorf("state = %q, want %q", got, tc.wantState)
			}
			// The ledger holds exactly what Create made and kept, and
			// undoing it leaves what was there before.
			wantRes := 0
			if tc.wantErr == "" {
				wantRes = 3
			}
			if l.Len() != wantRes {
				t.Errorf("ledger = %v, want %d resources", l.Resources(), wantRes)
			}
			before := len(f.Calls())
			if err := l.Undo(context.Background()); err != nil {
				t.Fatalf("undo: %v", err)
			}
			if tc.wantErr == "" {
				if got := f.Calls()[before:]; !slices.Equal(got, undoCalls) {
					t.Errorf("undo calls = %q, want %q", got, undoCalls)
				}
				if got := f.state(); len(got) != 0 {
					t.Errorf("after undo: %q", got)
				}
			}
		})
	}
}

// TestCreateTagsAndDocument checks what the creates send: the trust policy,
// the document, the path, and the tags with the create token on both the
// role and the profile.
func TestCreateTagsAndDocument(t *testing.T) {
	f := newFakeIAM()
	if _, err := Create(context.Background(), f, &CreateInput{Name: "b", Path: "/builds/", PolicyDocument: doc, Tags: map[string]string{"Build": "x"}}, fast); err != nil {
		t.Fatal(err)
	}
	if got := f.policies["b/b"]; got != doc {
		t.Errorf("inline policy = %s, want %s", got, doc)
	}
	for what, tags := range map[string][]types.Tag{"role": f.roles["b"], "profile": f.profiles["b"].tags} {
		m := map[string]string{}
		for _, tg := range tags {
			m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		if m["Build"] != "x" || len(m[CreateTokenTag]) != 32 {
			t.Errorf("%s tags = %v, want Build and a create token", what, m)
		}
	}
}

func TestCreateCancelledWhileCreatingProfile(t *testing.T) {
	f := newFakeIAM()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The profile is made, but the caller gives up before the answer.
	f.fault = func(_ context.Context, op string) (bool, error) {
		if op == "CreateInstanceProfile" {
			cancel()
			return true, context.Canceled
		}
		return false, nil
	}
	var l ledger.Ledger
	_, err := Create(ctx, f, &CreateInput{Name: "b", PolicyDocument: doc}, fast, func(o *Options) { o.Ledger = &l })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Create error = %v, want context.Canceled", err)
	}
	if got := f.state(); len(got) != 0 {
		t.Errorf("left behind: %q", got)
	}
	if l.Len() != 0 {
		t.Errorf("ledger still holds %v", l.Resources())
	}
	want := []string{"CreateRole b", "PutRolePolicy b,b", "CreateInstanceProfile b", "GetInstanceProfile b",
		"RemoveRoleFromInstanceProfile b,b", "DeleteInstanceProfile b", "DeleteRolePolicy b,b", "DeleteRole b"}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls:\n got %q\nwant %q", got, want)
	}
}

// TestCreateRollbackFailureStaysRecorded checks that what the rollback
// cannot remove stays in the ledger for a later undo.
func TestCreateRollbackFailureStaysRecorded(t *testing.T) {
	f := newFakeIAM()
	f.fault = func(_ context.Context, op string) (bool, error) {
		switch op {
		case "AddRoleToInstanceProfile":
			return false, apiErr("AccessDenied")
		case "DeleteRole":
			return false, apiErr("AccessDenied")
		}
		return false, nil
	}
	var l ledger.Ledger
	_, err := Create(context.Background(), f, &CreateInput{Name: "b", PolicyDocument: doc}, fast, func(o *Options) { o.Ledger = &l })
	if err == nil || !strings.Contains(err.Error(), "delete IAM role \"b\"") {
		t.Fatalf("Create error = %v, want it to name the role it could not delete", err)
	}
	if got := l.Resources(); len(got) != 1 || got[0] != (ledger.Resource{Kind: KindRole, ID: "b"}) {
		t.Errorf("ledger = %v, want only the role", got)
	}
	f.fault = nil
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.state(); len(got) != 0 {
		t.Errorf("left behind: %q", got)
	}
}

func TestCreateBadInput(t *testing.T) {
	for _, in := range []*CreateInput{
		{Name: "b"},
		{Name: "b", PolicyDocument: doc, Path: "builds"},
	} {
		f := newFakeIAM()
		if _, err := Create(context.Background(), f, in, fast); err == nil {
			t.Errorf("Create(%+v) succeeded", in)
		}
		if len(f.Calls()) != 0 {
			t.Errorf("Create(%+v) called IAM: %q", in, f.Calls())
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		fault        error // GetInstanceProfile fails with it
		wantErr      string
		wantNotFound bool // the error wraps ErrNotFound
	}{
		{name: "by name", in: "build"},
		{name: "by ARN", in: "arn:aws:iam::123456789012:instance-profile/team/build"},
		{name: "missing", in: "missing", wantErr: `look up IAM instance profile "missing": the instance profile does not exist`, wantNotFound: true},
		{name: "missing by ARN", in: "arn:aws:iam::123456789012:instance-profile/team/missing", wantErr: "does not exist", wantNotFound: true},
		{name: "lookup fails", in: "build", fault: apiErr("AccessDenied"), wantErr: "AccessDenied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIAM()
			f.profiles["build"] = &fakeProfile{}
			if tc.fault != nil {
				f.fault = func(context.Context, string) (bool, error) { return false, tc.fault }
			}
			out, err := Check(context.Background(), f, &CheckInput{Profile: tc.in})
			if tc.wantErr == "" {
				if err != nil || out == nil || out.ARN != profileARN("build") {
					t.Fatalf("Check(%q) = %+v, %v", tc.in, out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			if got := errors.Is(err, ErrNotFound); got != tc.wantNotFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tc.wantNotFound)
			}
			if out != nil {
				t.Errorf("Check(%q) output = %+v with an error", tc.in, out)
			}
		})
	}
}
