package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func res(kind Kind, id string) Resource { return Resource{Kind: kind, ID: id, Region: "us-east-1"} }

func TestUndoOrderAndErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		record    []Resource
		failing   map[string]bool // IDs whose undo fails
		forget    []string
		wantCalls []string
		wantErrs  []string // substrings of the joined error
		wantLeft  []string
	}{
		{
			name:      "empty",
			wantCalls: nil,
		},
		{
			name:      "reverse order",
			record:    []Resource{res(KindKeyPair, "k"), res(KindSecurityGroup, "sg-1"), res(KindInstance, "i-1")},
			wantCalls: []string{"i-1", "sg-1", "k"},
		},
		{
			name:      "tries all and joins errors",
			record:    []Resource{res(KindKeyPair, "k"), res(KindSecurityGroup, "sg-1"), res(KindInstance, "i-1")},
			failing:   map[string]bool{"sg-1": true, "k": true},
			wantCalls: []string{"i-1", "sg-1", "k"},
			wantErrs:  []string{"undo security-group sg-1 (us-east-1): boom", "undo key-pair k (us-east-1): boom"},
			wantLeft:  []string{"k", "sg-1"},
		},
		{
			name:      "forgotten entries are kept",
			record:    []Resource{res(KindInstance, "i-1"), res(KindImage, "ami-1"), res(KindSnapshot, "snap-1")},
			forget:    []string{"ami-1"},
			wantCalls: []string{"snap-1", "i-1"},
		},
		{
			name:      "duplicate record keeps one entry",
			record:    []Resource{res(KindInstance, "i-1"), res(KindInstance, "i-1")},
			wantCalls: []string{"i-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				l     Ledger
				calls []string
			)
			for _, r := range tc.record {
				l.Record(r, func(context.Context) error {
					calls = append(calls, r.ID)
					if tc.failing[r.ID] {
						return errBoom
					}
					return nil
				})
			}
			for _, id := range tc.forget {
				for _, r := range tc.record {
					if r.ID == id {
						l.Forget(r.Kind, id)
					}
				}
			}
			err := l.Undo(context.Background())
			if !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("undo calls = %v, want %v", calls, tc.wantCalls)
			}
			if len(tc.wantErrs) == 0 && err != nil {
				t.Fatalf("Undo() = %v, want nil", err)
			}
			if len(tc.wantErrs) > 0 {
				if err == nil {
					t.Fatal("Undo() = nil, want error")
				}
				if !errors.Is(err, errBoom) {
					t.Errorf("errors.Is(err, errBoom) = false for %v", err)
				}
				for _, s := range tc.wantErrs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
			}
			var left []string
			for _, r := range l.Resources() {
				left = append(left, r.ID)
			}
			if !slices.Equal(left, tc.wantLeft) {
				t.Errorf("left after Undo = %v, want %v", left, tc.wantLeft)
			}
		})
	}
}

func TestUndoRetriesOnlyFailures(t *testing.T) {
	var l Ledger
	attempts := map[string]int{}
	fail := true
	for _, id := range []string{"a", "b"} {
		l.Record(res(KindVolume, id), func(context.Context) error {
			attempts[id]++
			if id == "a" && fail {
				return errors.New("in use")
			}
			return nil
		})
	}
	if err := l.Undo(context.Background()); err == nil {
		t.Fatal("first Undo succeeded, want error")
	}
	fail = false
	if err := l.Undo(context.Background()); err != nil {
		t.Fatalf("second Undo: %v", err)
	}
	if attempts["a"] != 2 || attempts["b"] != 1 {
		t.Errorf("attempts = %v, want a:2 b:1", attempts)
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Len() = %d after successful Undo, want 0", n)
	}
}

func TestUndoPassesContextAndNilUndo(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	var l Ledger
	l.Record(res(KindS3Object, "bucket/key"), nil)
	var got any
	l.Record(res(KindInstance, "i-1"), func(ctx context.Context) error {
		got = ctx.Value(key{})
		return nil
	})
	if err := l.Undo(ctx); err != nil {
		t.Fatal(err)
	}
	if got != "v" {
		t.Errorf("undo saw context value %v, want the caller's context", got)
	}
	if l.Len() != 0 {
		t.Errorf("Len() = %d, want 0", l.Len())
	}
}

func TestUndoMayRecordDuringUndo(t *testing.T) {
	var l Ledger
	l.Record(res(KindInstance, "i-1"), func(context.Context) error {
		l.Record(res(KindVolume, "vol-1"), nil) // must not deadlock
		return nil
	})
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.Resources(); len(got) != 1 || got[0].ID != "vol-1" {
		t.Errorf("Resources() = %v, want only vol-1", got)
	}
}

func TestConcurrentRecord(t *testing.T) {
	var l Ledger
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			l.Record(res(KindSnapshot, fmt.Sprint("snap-", i)), func(context.Context) error { return nil })
		})
	}
	wg.Wait()
	if l.Len() != 50 {
		t.Fatalf("Len() = %d, want 50", l.Len())
	}
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 0 {
		t.Fatalf("Len() = %d after Undo, want 0", l.Len())
	}
}

func TestResourceString(t *testing.T) {
	tests := []struct {
		r    Resource
		want string
	}{
		{Resource{Kind: KindImage, ID: "ami-1", Region: "eu-west-1"}, "image ami-1 (eu-west-1)"},
		{Resource{Kind: KindS3Object, ID: "b/k"}, "s3-object b/k"},
		{Resource{Kind: KindImage, ID: "ami-2", Region: "eu-west-1", Account: "222222222222"}, "image ami-2 (account 222222222222, eu-west-1)"},
	}
	for _, tc := range tests {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

// TestForgetResource checks that forgetting a resource keeps entries of the
// same kind and ID in other regions (key pair names are unique per region
// only), while Forget drops them in every region.
func TestForgetResource(t *testing.T) {
	east := Resource{Kind: KindKeyPair, ID: "packer-key", Region: "us-east-1"}
	west := Resource{Kind: KindKeyPair, ID: "packer-key", Region: "eu-west-1"}
	other := Resource{Kind: KindImage, ID: "packer-key", Region: "us-east-1"}
	tests := []struct {
		name   string
		forget func(l *Ledger)
		want   []Resource
	}{
		{"resource in one region", func(l *Ledger) { l.ForgetResource(east) }, []Resource{west, other}},
		{"resource in the other region", func(l *Ledger) { l.ForgetResource(west) }, []Resource{east, other}},
		{"resource not recorded", func(l *Ledger) { l.ForgetResource(Resource{Kind: KindKeyPair, ID: "packer-key"}) }, []Resource{east, west, other}},
		{"kind and ID in every region", func(l *Ledger) { l.Forget(KindKeyPair, "packer-key") }, []Resource{other}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l Ledger
			for _, r := range []Resource{east, west, other} {
				l.Record(r, nil)
			}
			tc.forget(&l)
			if got := l.Resources(); !slices.Equal(got, tc.want) {
				t.Errorf("Resources() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMoveTo moves some entries with their undo functions: the source no
// longer undoes them, the destination does, after its own, in reverse
// creation order.
func TestMoveTo(t *testing.T) {
	var src, dst Ledger
	var undone []string
	rec := func(l *Ledger, id string, kind Kind) {
		l.Record(Resource{Kind: kind, ID: id, Region: "eu-west-1"}, func(context.Context) error {
			undone = append(undone, id)
			return nil
		})
	}
	rec(&dst, "before", KindImage)
	rec(&src, "ami-1", KindImage)
	rec(&src, "p1", "ssm-parameter")
	rec(&src, "p2", "ssm-parameter")
	src.MoveTo(&dst, func(r Resource) bool { return r.Kind == "ssm-parameter" })
	src.MoveTo(&src, func(Resource) bool { return true })
	if err := src.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(undone, []string{"ami-1"}) {
		t.Fatalf("source undid %v, want [ami-1]", undone)
	}
	undone = nil
	if err := dst.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"p2", "p1", "before"}; !slices.Equal(undone, want) {
		t.Errorf("destination undid %v, want %v", undone, want)
	}
}
