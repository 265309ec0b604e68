//go:build unix

package image

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

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

func TestFind(t *testing.T) {
	tests := []struct {
		name     string
		in       FindInput
		pages    []*ec2.DescribeImagesOutput
		err      error
		wantID   string
		wantErr  error    // errors.Is target
		wantText []string // in the error
		check    func(t *testing.T, reqs []*ec2.DescribeImagesInput)
	}{
		{
			name:   "by id",
			in:     FindInput{ImageIDs: []string{"ami-1"}, Region: "eu-west-1"},
			pages:  []*ec2.DescribeImagesOutput{{Images: []types.Image{img("ami-1", "available", "")}}},
			wantID: "ami-1",
			check: func(t *testing.T, reqs []*ec2.DescribeImagesInput) {
				if reqs[0].MaxResults != nil || len(reqs[0].Filters) != 0 {
					t.Errorf("by-id request has MaxResults %v / filters %v, want neither", reqs[0].MaxResults, reqs[0].Filters)
				}
			},
		},
		{
			name: "most recent across pages",
			in:   FindInput{Filters: map[string][]string{"name": {"base-*"}, "architecture": {"x86_64"}}, Owners: []string{"self"}, MostRecent: true},
			pages: []*ec2.DescribeImagesOutput{
				{Images: []types.Image{img("ami-old", "available", "2024-01-01T00:00:00.000Z"), img("ami-new", "available", "2025-06-01T00:00:00.000Z")}, NextToken: aws.String("p2")},
				{Images: []types.Image{img("ami-mid", "available", "2025-01-01T00:00:00.000Z")}},
			},
			wantID: "ami-new",
			check: func(t *testing.T, reqs []*ec2.DescribeImagesInput) {
				if len(reqs) != 2 || aws.ToString(reqs[1].NextToken) != "p2" {
					t.Fatalf("requests = %d (second token %q), want 2 pages", len(reqs), aws.ToString(reqs[len(reqs)-1].NextToken))
				}
				var names []string
				for _, f := range reqs[0].Filters {
					names = append(names, aws.ToString(f.Name)+"="+strings.Join(f.Values, ","))
				}
				want := []string{"architecture=x86_64", "name=base-*", "state=available"}
				if !slices.Equal(names, want) {
					t.Errorf("filters = %v, want %v", names, want)
				}
				if aws.ToInt32(reqs[0].MaxResults) != 1000 || !slices.Equal(reqs[0].Owners, []string{"self"}) {
					t.Errorf("MaxResults %v owners %v", reqs[0].MaxResults, reqs[0].Owners)
				}
				if reqs[0].IncludeDeprecated != nil {
					t.Errorf("IncludeDeprecated = %v, want unset", *reqs[0].IncludeDeprecated)
				}
			},
		},
		{
			name:   "explicit state filter and deprecated",
			in:     FindInput{Filters: map[string][]string{"state": {"pending"}}, IncludeDeprecated: true},
			pages:  []*ec2.DescribeImagesOutput{{Images: []types.Image{img("ami-p", "pending", "")}}},
			wantID: "ami-p",
			check: func(t *testing.T, reqs []*ec2.DescribeImagesInput) {
				if len(reqs[0].Filters) != 1 || reqs[0].Filters[0].Values[0] != "pending" {
					t.Errorf("filters = %+v, want only the caller's state filter", reqs[0].Filters)
				}
				if !aws.ToBool(reqs[0].IncludeDeprecated) {
					t.Error("IncludeDeprecated not sent")
				}
			},
		},
		{
			name:     "none",
			in:       FindInput{Filters: map[string][]string{"name": {"nothing-*"}}, Owners: []string{"amazon"}, Region: "us-east-2"},
			pages:    []*ec2.DescribeImagesOutput{{}},
			wantErr:  ErrNotFound,
			wantText: []string{"owners amazon", "name=nothing-*", "us-east-2"},
		},
		{
			name: "several without most recent",
			in:   FindInput{Owners: []string{"self"}},
			pages: []*ec2.DescribeImagesOutput{{Images: []types.Image{
				img("ami-1", "available", ""), img("ami-2", "available", ""), img("ami-3", "available", ""),
				img("ami-4", "available", ""), img("ami-5", "available", ""), img("ami-6", "available", ""),
			}}},
			wantErr:  ErrMultiple,
			wantText: []string{"(6: ami-1, ami-2, ami-3, ami-4, ami-5, ...)", "most recent"},
		},
		{
			name:     "no criteria",
			in:       FindInput{MostRecent: true},
			wantText: []string{"give image IDs, filters or owners"},
		},
		{
			name:     "api error",
			in:       FindInput{ImageIDs: []string{"ami-bad"}, Region: "us-east-1"},
			err:      apiErr("InvalidAMIID.Malformed"),
			wantText: []string{"find image [ids ami-bad] in us-east-1", "InvalidAMIID.Malformed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reqs []*ec2.DescribeImagesInput
			f := &fakeEC2{describeImages: func(in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
				reqs = append(reqs, in)
				if tc.err != nil {
					return nil, tc.err
				}
				return tc.pages[len(reqs)-1], nil
			}}
			out, err := Find(context.Background(), f, &tc.in)
			if tc.wantID != "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := aws.ToString(out.Image.ImageId); got != tc.wantID {
					t.Errorf("found %s, want %s", got, tc.wantID)
				}
			} else {
				if err == nil {
					t.Fatalf("Find() found %s, want an error", aws.ToString(out.Image.ImageId))
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v is not %v", err, tc.wantErr)
				}
				if tc.err != nil && awserr.Code(err) != awserr.Code(tc.err) {
					t.Errorf("error %v lost the API code %s", err, awserr.Code(tc.err))
				}
				for _, s := range tc.wantText {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, reqs)
			}
		})
	}
}

func TestFindByName(t *testing.T) {
	tests := []struct {
		name       string
		owners     []string
		answer     []types.Image
		wantOwners []string
		wantIDs    []string
	}{
		{
			name:       "exact names only, oldest first, default owner self",
			answer:     []types.Image{named("ami-2", "app", "2025-02-01T00:00:00Z", "available"), named("ami-x", "app-2", "", "available"), named("ami-1", "app", "2025-01-01T00:00:00Z", "pending")},
			wantOwners: []string{"self"},
			wantIDs:    []string{"ami-1", "ami-2"},
		},
		{
			name:       "deregistered skipped, explicit owners",
			owners:     []string{"123456789012"},
			answer:     []types.Image{named("ami-1", "app", "", "deregistered")},
			wantOwners: []string{"123456789012"},
			wantIDs:    nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req *ec2.DescribeImagesInput
			f := &fakeEC2{describeImages: func(in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
				req = in
				return &ec2.DescribeImagesOutput{Images: tc.answer}, nil
			}}
			got, err := FindByName(context.Background(), f, &FindByNameInput{Name: "app", Owners: tc.owners})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, im := range got.Images {
				ids = append(ids, aws.ToString(im.ImageId))
			}
			if !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("ids = %v, want %v", ids, tc.wantIDs)
			}
			if !slices.Equal(req.Owners, tc.wantOwners) || !aws.ToBool(req.IncludeDeprecated) {
				t.Errorf("request owners %v deprecated %v", req.Owners, req.IncludeDeprecated)
			}
			if len(req.Filters) != 1 || aws.ToString(req.Filters[0].Name) != "name" || req.Filters[0].Values[0] != "app" {
				t.Errorf("filters = %+v, want name=app", req.Filters)
			}
		})
	}
	if _, err := FindByName(context.Background(), &fakeEC2{}, &FindByNameInput{Name: ""}); err == nil {
		t.Error("FindByName with an empty name succeeded")
	}
}

func named(id, name, created string, state types.ImageState) types.Image {
	im := img(id, state, created)
	im.Name = aws.String(name)
	return im
}

func TestWait(t *testing.T) {
	reason := &types.StateReason{Code: aws.String("Client.Failure"), Message: aws.String("snapshot creation failed")}
	failed := img("ami-1", "failed", "")
	failed.StateReason = reason
	tests := []struct {
		name      string
		answers   []func() (*ec2.DescribeImagesOutput, error)
		cancel    bool
		wantCalls int // 0 = don't check
		wantState string
		wantErr   error // errors.Is target on a non-state error, or ErrWaitTimeout
		wantAPI   string
		stateErr  bool
	}{
		{name: "available at once", answers: a(images(img("ami-1", "available", ""))), wantCalls: 1},
		{name: "pending then available", answers: a(images(img("ami-1", "pending", "")), images(img("ami-1", "pending", "")), images(img("ami-1", "available", ""))), wantCalls: 3},
		{name: "not yet visible", answers: a(fails(apiErr("InvalidAMIID.NotFound")), images(), images(img("ami-1", "available", ""))), wantCalls: 3},
		{name: "failed", answers: a(images(failed)), stateErr: true, wantState: "failed", wantCalls: 2},
		{name: "deregistered stops at once", answers: a(images(img("ami-1", "deregistered", ""))), stateErr: true, wantState: "deregistered", wantCalls: 2},
		{name: "timeout", answers: a(images(img("ami-1", "pending", ""))), stateErr: true, wantState: "pending", wantErr: ErrWaitTimeout},
		{name: "disappears after failing", answers: a(images(img("ami-1", "error", "")), fails(apiErr("InvalidAMIID.NotFound"))), stateErr: true, wantState: ""},
		{name: "access denied", answers: a(fails(apiErr("UnauthorizedOperation"))), wantAPI: "UnauthorizedOperation", wantCalls: 1},
		{name: "cancelled", answers: a(images(img("ami-1", "pending", ""))), cancel: true, wantCalls: 1, wantErr: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{describeImages: sequence(tc.answers...)}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wait := quickWait
			if tc.cancel {
				// The first describe cancels; with a minute to wait,
				// only the cancellation can end the wait.
				answer := f.describeImages
				f.describeImages = func(in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
					cancel()
					return answer(in)
				}
				wait.MaxWait = time.Minute
			}
			im, err := Wait(ctx, f, &WaitInput{ImageID: "ami-1", Region: "us-west-2", Wait: wait})
			if tc.wantCalls > 0 && len(f.Calls()) != tc.wantCalls {
				t.Errorf("calls = %v, want %d", f.Calls(), tc.wantCalls)
			}
			if !tc.stateErr && tc.wantErr == nil && tc.wantAPI == "" {
				if err != nil {
					t.Fatal(err)
				}
				if im.Image.State != types.ImageStateAvailable {
					t.Errorf("state = %s", im.Image.State)
				}
				return
			}
			if err == nil {
				t.Fatal("Wait() succeeded, want an error")
			}
			var se *StateError
			if got := errors.As(err, &se); got != tc.stateErr {
				t.Fatalf("errors.As(*StateError) = %v, want %v (err %v)", got, tc.stateErr, err)
			}
			if se != nil {
				if se.State != tc.wantState || se.ImageID != "ami-1" || se.Region != "us-west-2" {
					t.Errorf("state error = %+v, want state %q for ami-1 in us-west-2", se, tc.wantState)
				}
				if tc.name == "failed" && se.Reason != "snapshot creation failed" {
					t.Errorf("reason = %q", se.Reason)
				}
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && errors.Is(err, ErrWaitTimeout) {
				t.Errorf("error %v claims a timeout", err)
			}
			if tc.wantAPI != "" && awserr.Code(err) != tc.wantAPI {
				t.Errorf("error %v lacks API code %s", err, tc.wantAPI)
			}
			if !strings.Contains(err.Error(), "ami-1") {
				t.Errorf("error %q does not name the image", err)
			}
		})
	}
}

func a(fns ...func() (*ec2.DescribeImagesOutput, error)) []func() (*ec2.DescribeImagesOutput, error) {
	return fns
}

func TestStateErrorMessage(t *testing.T) {
	tests := []struct {
		err  StateError
		want string
	}{
		{StateError{ImageID: "ami-1", Region: "us-east-1", State: "failed", Reason: "boom"}, "image ami-1 in us-east-1 is failed: boom"},
		{StateError{ImageID: "ami-1", Region: "us-east-1", State: "pending", Err: ErrWaitTimeout}, "image ami-1 in us-east-1: timed out waiting to become available; it is pending"},
		{StateError{ImageID: "ami-1", Region: "us-east-1", Reason: "the image no longer exists"}, "image ami-1 in us-east-1 is gone: the image no longer exists"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestCreate(t *testing.T) {
	available := img("ami-new", "available", "", "snap-1", "snap-2")
	tests := []struct {
		name       string
		in         CreateInput
		createErr  error
		answers    []func() (*ec2.DescribeImagesOutput, error)
		wantCalls  []string
		wantLedger int
		wantState  bool
		wantText   string
		cancelled  bool
	}{
		{
			name:       "created and available",
			in:         CreateInput{InstanceID: "i-1", Name: "app", Description: "d", NoReboot: true, Wait: quickWait},
			answers:    a(images(img("ami-new", "pending", "")), images(available)),
			wantCalls:  []string{"CreateImage i-1,app", "DescribeImages ami-new", "DescribeImages ami-new"},
			wantLedger: 1,
		},
		{
			name:       "image fails",
			in:         CreateInput{InstanceID: "i-1", Name: "app", Wait: quickWait, Region: "eu-west-1"},
			answers:    a(images(img("ami-new", "failed", ""))),
			wantCalls:  []string{"CreateImage i-1,app", "DescribeImages ami-new", "DescribeImages ami-new"},
			wantLedger: 1,
			wantState:  true,
			wantText:   `create image "app" from i-1 in eu-west-1: image ami-new in eu-west-1 is failed`,
		},
		{
			name:      "create refused, nothing made",
			in:        CreateInput{InstanceID: "i-1", Name: "app"},
			createErr: apiErr("InvalidAMIName.Duplicate"),
			answers:   a(images()),
			wantCalls: []string{"CreateImage i-1,app", "DescribeImages"},
			wantText:  "InvalidAMIName.Duplicate",
		},
		{
			name:      "an image of the name from another instance is not ours",
			in:        CreateInput{InstanceID: "i-1", Name: "app"},
			createErr: apiErr("InvalidAMIName.Duplicate"),
			answers:   a(images(fromInstance(img("ami-old", "available", ""), "app", "i-0"))),
			wantCalls: []string{"CreateImage i-1,app", "DescribeImages"},
			wantText:  "InvalidAMIName.Duplicate",
		},
		{
			name:       "answer lost, retry refused as Duplicate: the image made is used",
			in:         CreateInput{InstanceID: "i-1", Name: "app", Wait: quickWait},
			createErr:  apiErr("InvalidAMIName.Duplicate"),
			answers:    a(images(fromInstance(img("ami-new", "pending", ""), "app", "i-1")), images(available)),
			wantCalls:  []string{"CreateImage i-1,app", "DescribeImages", "DescribeImages ami-new"},
			wantLedger: 1,
		},
		{
			name:      "cancelled while in flight: the image made is deregistered",
			in:        CreateInput{InstanceID: "i-1", Name: "app", Wait: quickWait},
			createErr: context.Canceled,
			cancelled: true,
			answers:   a(images(fromInstance(img("ami-new", "pending", ""), "app", "i-1")), images(available)),
			wantCalls: []string{"CreateImage i-1,app", "DescribeImages", "DescribeImages ami-new", "DeregisterImage ami-new", "DeleteSnapshot snap-1", "DeleteSnapshot snap-2"},
			wantText:  "the image ami-new it made anyway was deregistered",
		},
		{
			name:     "name required",
			in:       CreateInput{InstanceID: "i-1"},
			wantText: "instance ID and name are required",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sent *ec2.CreateImageInput
			f := &fakeEC2{
				createImage: func(in *ec2.CreateImageInput) (*ec2.CreateImageOutput, error) {
					sent = in
					if tc.createErr != nil {
						return nil, tc.createErr
					}
					return &ec2.CreateImageOutput{ImageId: aws.String("ami-new")}, nil
				},
			}
			if tc.answers != nil {
				f.describeImages = sequence(tc.answers...)
			}
			var l ledger.Ledger
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			out, err := Create(ctx, f, &tc.in, func(o *Options) { o.Ledger = &l })
			if !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.Calls(), tc.wantCalls)
			}
			if l.Len() != tc.wantLedger {
				t.Errorf("ledger has %d entries, want %d", l.Len(), tc.wantLedger)
			}
			if tc.wantText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantText) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantText)
				}
				var se *StateError
				if errors.As(err, &se) != tc.wantState {
					t.Errorf("errors.As(*StateError) = %v, want %v", !tc.wantState, tc.wantState)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.ImageID != "ami-new" || !slices.Equal(out.SnapshotIDs, []string{"snap-1", "snap-2"}) {
				t.Errorf("output = %+v", out)
			}
			if aws.ToBool(sent.NoReboot) != tc.in.NoReboot || aws.ToString(sent.Description) != tc.in.Description {
				t.Errorf("request = %+v", sent)
			}
		})
	}
}

// fromInstance sets an image's name and source instance.
func fromInstance(im types.Image, name, instanceID string) types.Image {
	im.Name, im.SourceInstanceId = aws.String(name), aws.String(instanceID)
	return im
}

func TestCreateLedgerUndo(t *testing.T) {
	available := img("ami-new", "available", "", "snap-1")
	f := &fakeEC2{
		createImage: func(*ec2.CreateImageInput) (*ec2.CreateImageOutput, error) {
			return &ec2.CreateImageOutput{ImageId: aws.String("ami-new")}, nil
		},
		describeImages: sequence(images(available)),
	}
	var l ledger.Ledger
	if _, err := Create(context.Background(), f, &CreateInput{InstanceID: "i-1", Name: "app", Region: "us-east-1", Wait: quickWait}, func(o *Options) { o.Ledger = &l }); err != nil {
		t.Fatal(err)
	}
	want := []ledger.Resource{{Kind: ledger.KindImage, ID: "ami-new", Region: "us-east-1"}}
	if got := l.Resources(); !slices.Equal(got, want) {
		t.Fatalf("ledger = %v, want %v", got, want)
	}
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{"CreateImage i-1,app", "DescribeImages ami-new", "DescribeImages ami-new", "DeregisterImage ami-new", "DeleteSnapshot snap-1"}
	if !slices.Equal(f.Calls(), wantCalls) {
		t.Errorf("calls = %q, want %q", f.Calls(), wantCalls)
	}
}

func TestCreateLedgerUndoKeepsGivenSnapshots(t *testing.T) {
	// The image refers to the user's snapshot through an AMI mapping and to
	// one made from a launch mapping's snapshot; removing the image deletes
	// only the snapshot CreateImage made.
	available := img("ami-new", "available", "", "snap-made", "snap-user", "snap-launch")
	f := &fakeEC2{
		createImage: func(*ec2.CreateImageInput) (*ec2.CreateImageOutput, error) {
			return &ec2.CreateImageOutput{ImageId: aws.String("ami-new")}, nil
		},
		describeImages: sequence(images(available)),
	}
	var l ledger.Ledger
	in := &CreateInput{
		InstanceID: "i-1", Name: "app", Region: "us-east-1", Wait: quickWait,
		BlockDeviceMappings: []types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/sdb"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String("snap-user")}},
			{DeviceName: aws.String("/dev/sdc"), VirtualName: aws.String("ephemeral0")},
		},
		KeepSnapshotIDs: []string{"snap-launch"},
	}
	if _, err := Create(context.Background(), f, in, func(o *Options) { o.Ledger = &l }); err != nil {
		t.Fatal(err)
	}
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{"CreateImage i-1,app", "DescribeImages ami-new", "DescribeImages ami-new", "DeregisterImage ami-new", "DeleteSnapshot snap-made"}
	if !slices.Equal(f.Calls(), wantCalls) {
		t.Errorf("calls = %q, want %q", f.Calls(), wantCalls)
	}
}

func TestTag(t *testing.T) {
	withSnaps := img("ami-1", "available", "", "snap-1", "snap-2")
	tests := []struct {
		name      string
		in        TagInput
		answers   []func() (*ec2.DescribeImagesOutput, error)
		tagErrs   []error // successive CreateTags results
		wantCalls []string
		wantErr   string
	}{
		{
			name:    "image and snapshots, snapshot tags override",
			in:      TagInput{ImageID: "ami-1", Tags: map[string]string{"Name": "app", "team": "x"}, SnapshotTags: map[string]string{"Name": "app-disk"}},
			answers: a(images(withSnaps)),
			wantCalls: []string{
				"DescribeImages ami-1",
				"CreateTags ami-1,Name=app,team=x",
				"CreateTags snap-1,snap-2,Name=app-disk,team=x",
			},
		},
		{
			name:    "eventual consistency",
			in:      TagInput{ImageID: "ami-1", Tags: map[string]string{"k": "v"}},
			answers: a(fails(apiErr("InvalidAMIID.NotFound")), images(), images(withSnaps)),
			tagErrs: []error{apiErr("InvalidAMIID.NotFound"), apiErr("InvalidSnapshot.NotFound"), nil},
			wantCalls: []string{
				"DescribeImages ami-1", "DescribeImages ami-1", "DescribeImages ami-1",
				"CreateTags ami-1,snap-1,snap-2,k=v", "CreateTags ami-1,snap-1,snap-2,k=v", "CreateTags ami-1,snap-1,snap-2,k=v",
			},
		},
		{
			name:    "eventual consistency, snapshot tags",
			in:      TagInput{ImageID: "ami-1", Tags: map[string]string{"k": "v"}, SnapshotTags: map[string]string{"s": "1"}},
			answers: a(images(withSnaps)),
			tagErrs: []error{apiErr("InvalidAMIID.NotFound"), nil, apiErr("InvalidSnapshot.NotFound"), nil},
			wantCalls: []string{
				"DescribeImages ami-1",
				"CreateTags ami-1,k=v", "CreateTags ami-1,k=v",
				"CreateTags snap-1,snap-2,k=v,s=1", "CreateTags snap-1,snap-2,k=v,s=1",
			},
		},
		{
			name:      "snapshots known",
			in:        TagInput{ImageID: "ami-1", Tags: map[string]string{"k": "v"}, SnapshotIDs: []string{"snap-9"}},
			wantCalls: []string{"CreateTags ami-1,snap-9,k=v"},
		},
		{
			name:      "snapshots known, snapshot tags",
			in:        TagInput{ImageID: "ami-1", Tags: map[string]string{"k": "v"}, SnapshotTags: map[string]string{"s": "1"}, SnapshotIDs: []string{"snap-9"}},
			wantCalls: []string{"CreateTags ami-1,k=v", "CreateTags snap-9,k=v,s=1"},
		},
		{
			name:      "known to have no snapshots",
			in:        TagInput{ImageID: "ami-1", Tags: map[string]string{"k": "v"}, SnapshotIDs: []string{}},
			wantCalls: []string{"CreateTags ami-1,k=v"},
		},
		{
			name:      "instance store image",
			in:        TagInput{ImageID: "ami-1", Tags: map[string]string{"k": "v"}},
			answers:   a(images(img("ami-1", "available", ""))),
			wantCalls: []string{"DescribeImages ami-1", "CreateTags ami-1,k=v"},
		},
		{
			name:      "snapshot tags only",
			in:        TagInput{ImageID: "ami-1", SnapshotTags: map[string]string{"s": "1"}},
			answers:   a(images(withSnaps)),
			wantCalls: []string{"DescribeImages ami-1", "CreateTags snap-1,snap-2,s=1"},
		},
		{
			name: "nothing to do",
			in:   TagInput{ImageID: "ami-1"},
		},
		{
			name:      "gives up",
			in:        TagInput{ImageID: "ami-1", Region: "ap-south-1", Tags: map[string]string{"k": "v"}},
			answers:   a(fails(apiErr("InvalidAMIID.NotFound"))),
			wantCalls: slices.Repeat([]string{"DescribeImages ami-1"}, 3),
			wantErr:   "tag image ami-1 in ap-south-1: describe: ",
		},
		{
			name:      "not retried",
			in:        TagInput{ImageID: "ami-1", Tags: map[string]string{"aws:x": "v"}},
			answers:   a(images(withSnaps)),
			tagErrs:   []error{apiErr("InvalidParameterValue")},
			wantCalls: []string{"DescribeImages ami-1", "CreateTags ami-1,snap-1,snap-2,aws:x=v"},
			wantErr:   "InvalidParameterValue",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{}
			if tc.answers != nil {
				f.describeImages = sequence(tc.answers...)
			}
			n := 0
			f.createTags = func(*ec2.CreateTagsInput) (*ec2.CreateTagsOutput, error) {
				defer func() { n++ }()
				if n < len(tc.tagErrs) && tc.tagErrs[n] != nil {
					return nil, tc.tagErrs[n]
				}
				return &ec2.CreateTagsOutput{}, nil
			}
			_, err := Tag(context.Background(), f, &tc.in, fast, func(o *Options) { o.RetryAttempts = 3 })
			if !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.Calls(), tc.wantCalls)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDeregister(t *testing.T) {
	tests := []struct {
		name        string
		in          DeregisterInput
		answers     []func() (*ec2.DescribeImagesOutput, error)
		deregErr    error
		snapErrs    map[string][]error
		wantCalls   []string
		wantDeleted []string
		wantErr     string
	}{
		{
			name:        "with snapshots",
			in:          DeregisterInput{ImageID: "ami-1", DeleteSnapshots: true},
			answers:     a(images(img("ami-1", "available", "", "snap-1", "snap-2"))),
			wantCalls:   []string{"DescribeImages ami-1", "DeregisterImage ami-1", "DeleteSnapshot snap-1", "DeleteSnapshot snap-2"},
			wantDeleted: []string{"snap-1", "snap-2"},
		},
		{
			name:        "keeps the snapshots it is told to",
			in:          DeregisterInput{ImageID: "ami-1", DeleteSnapshots: true, KeepSnapshotIDs: []string{"snap-user", "snap-other"}},
			answers:     a(images(img("ami-1", "available", "", "snap-1", "snap-user", "snap-2"))),
			wantCalls:   []string{"DescribeImages ami-1", "DeregisterImage ami-1", "DeleteSnapshot snap-1", "DeleteSnapshot snap-2"},
			wantDeleted: []string{"snap-1", "snap-2"},
		},
		{
			name:      "keep snapshots",
			in:        DeregisterInput{ImageID: "ami-1"},
			wantCalls: []string{"DeregisterImage ami-1"},
		},
		{
			name:      "instance store",
			in:        DeregisterInput{ImageID: "ami-1", DeleteSnapshots: true},
			answers:   a(images(img("ami-1", "available", ""))),
			wantCalls: []string{"DescribeImages ami-1", "DeregisterImage ami-1"},
		},
		{
			name:      "already gone",
			in:        DeregisterInput{ImageID: "ami-1", DeleteSnapshots: true},
			answers:   a(fails(apiErr("InvalidAMIID.NotFound"))),
			wantCalls: []string{"DescribeImages ami-1"},
		},
		{
			name:      "gone between describe and deregister",
			in:        DeregisterInput{ImageID: "ami-1"},
			deregErr:  apiErr("InvalidAMIID.NotFound"),
			wantCalls: []string{"DeregisterImage ami-1"},
		},
		{
			name:      "deregister refused",
			in:        DeregisterInput{ImageID: "ami-1", Region: "us-east-1"},
			deregErr:  apiErr("UnauthorizedOperation"),
			wantCalls: []string{"DeregisterImage ami-1"},
			wantErr:   "deregister image ami-1 in us-east-1: ",
		},
		{
			name:        "snapshot in use, then gone, then failing",
			in:          DeregisterInput{ImageID: "ami-1", DeleteSnapshots: true, Region: "us-east-1"},
			answers:     a(images(img("ami-1", "available", "", "snap-1", "snap-2", "snap-3"))),
			snapErrs:    map[string][]error{"snap-1": {apiErr("InvalidSnapshot.InUse"), nil}, "snap-2": {apiErr("InvalidSnapshot.NotFound")}, "snap-3": {apiErr("UnauthorizedOperation")}},
			wantCalls:   []string{"DescribeImages ami-1", "DeregisterImage ami-1", "DeleteSnapshot snap-1", "DeleteSnapshot snap-1", "DeleteSnapshot snap-2", "DeleteSnapshot snap-3"},
			wantDeleted: []string{"snap-1", "snap-2"},
			wantErr:     "delete snapshot snap-3 of image ami-1 in us-east-1: ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{
				deregisterImage: func(*ec2.DeregisterImageInput) (*ec2.DeregisterImageOutput, error) {
					return &ec2.DeregisterImageOutput{}, tc.deregErr
				},
				deleteSnapshot: func(in *ec2.DeleteSnapshotInput) (*ec2.DeleteSnapshotOutput, error) {
					id := aws.ToString(in.SnapshotId)
					errs := tc.snapErrs[id]
					if len(errs) == 0 {
						return &ec2.DeleteSnapshotOutput{}, nil
					}
					err := errs[0]
					tc.snapErrs[id] = errs[1:]
					return &ec2.DeleteSnapshotOutput{}, err
				},
			}
			if tc.answers != nil {
				f.describeImages = sequence(tc.answers...)
			}
			out, err := Deregister(context.Background(), f, &tc.in, fast)
			if !slices.Equal(f.Calls(), tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.Calls(), tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if out != nil && !slices.Equal(out.DeletedSnapshotIDs, tc.wantDeleted) {
				t.Errorf("deleted = %v, want %v", out.DeletedSnapshotIDs, tc.wantDeleted)
			}
		})
	}
}

func TestSnapshotIDs(t *testing.T) {
	im := img("ami-1", "available", "", "snap-1", "snap-2", "snap-1")
	im.BlockDeviceMappings = append(im.BlockDeviceMappings, types.BlockDeviceMapping{DeviceName: aws.String("/dev/sdz"), VirtualName: aws.String("ephemeral0")})
	if got := SnapshotIDs(im); !slices.Equal(got, []string{"snap-1", "snap-2"}) {
		t.Errorf("SnapshotIDs = %v", got)
	}
	if got := SnapshotIDs(types.Image{}); got != nil {
		t.Errorf("SnapshotIDs(empty) = %v", got)
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	o := newOptions([]func(*Options){func(o *Options) { o.RetryDelay = time.Hour }})
	calls := 0
	err := o.retry(ctx, []string{"X"}, func() error {
		calls++
		cancel() // the run is cancelled while the first attempt is answered
		return apiErr("X")
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("retry = %v after %d calls, want cancellation after 1", err, calls)
	}
}
