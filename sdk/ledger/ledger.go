package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Kind names the type of a recorded resource.
type Kind string

// Kinds of resources recorded by the SDK. Other packages may define more.
const (
	KindInstance      Kind = "instance"
	KindKeyPair       Kind = "key-pair"
	KindSecurityGroup Kind = "security-group"
	KindImage         Kind = "image"
	KindSnapshot      Kind = "snapshot"
	KindVolume        Kind = "volume"
	KindS3Object      Kind = "s3-object"
	// KindParameter is an SSM parameter value written by a run; its ID is
	// the parameter's name.
	KindParameter Kind = "ssm-parameter"
	// KindLaunchTemplateVersion is a launch template version made by a
	// run; its ID is "lt-…:version".
	KindLaunchTemplateVersion Kind = "launch-template-version"
)

// Resource identifies one created resource.
type Resource struct {
	// Kind is the type of the resource.
	Kind Kind
	// ID is the resource's identifier, such as "i-0123…" or "ami-0123…".
	// For S3 objects it is "bucket/key".
	ID string
	// Region is the AWS region the resource lives in.
	Region string
	// Account is the AWS account the resource lives in when it is not the
	// caller's own (a resource made with another account's credentials).
	Account string
}

// String returns "kind id (region)", or "kind id (account N, region)"
// for a resource of another account.
func (r Resource) String() string {
	where := r.Region
	if r.Account != "" {
		where = strings.TrimSuffix("account "+r.Account+", "+r.Region, ", ")
	}
	if where == "" {
		return fmt.Sprintf("%s %s", r.Kind, r.ID)
	}
	return fmt.Sprintf("%s %s (%s)", r.Kind, r.ID, where)
}

type entry struct {
	res  Resource
	undo func(context.Context) error
}

// Ledger records created resources with the functions that remove them.
// The zero value is ready to use. A Ledger is safe for concurrent use and
// must not be copied after first use.
type Ledger struct {
	mu      sync.Mutex
	entries []entry
}

// Record adds r with the function that removes it. A nil undo records a
// resource that needs no action to undo (it is still listed by Resources).
// Recording a resource already present (same kind, ID and region) replaces
// its undo function but keeps its original position.
func (l *Ledger) Record(r Resource, undo func(context.Context) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.entries {
		if l.entries[i].res == r {
			l.entries[i].undo = undo
			return
		}
	}
	l.entries = append(l.entries, entry{res: r, undo: undo})
}

// ForgetResource removes the entry for r (same kind, ID and region) without
// undoing it: the resource is handed over to the caller and will be kept.
// Entries of the same kind and ID in other regions stay recorded; names such
// as those of key pairs are unique only within a region.
func (l *Ledger) ForgetResource(r Resource) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = slices.DeleteFunc(l.entries, func(e entry) bool { return e.res == r })
}

// Forget removes every entry with the given kind and ID in any region
// without undoing it: the resources are handed over to the caller and will
// be kept. It suits IDs that are unique across regions (instance, image,
// snapshot IDs; S3 bucket/key). For names that are unique only within a
// region, such as key pair names, use ForgetResource: Forget would also drop
// a same-named resource recorded in another region, which Undo would then
// leave behind.
func (l *Ledger) Forget(kind Kind, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = slices.DeleteFunc(l.entries, func(e entry) bool {
		return e.res.Kind == kind && e.res.ID == id
	})
}

// MoveTo moves the entries for which move returns true, with their undo
// functions, from l to the end of dst, in creation order: dst now answers
// for them. Moving into l itself does nothing.
func (l *Ledger) MoveTo(dst *Ledger, move func(Resource) bool) {
	if dst == l {
		return
	}
	l.mu.Lock()
	var moved []entry
	l.entries = slices.DeleteFunc(l.entries, func(e entry) bool {
		if move(e.res) {
			moved = append(moved, e)
			return true
		}
		return false
	})
	l.mu.Unlock()
	for _, e := range moved {
		dst.Record(e.res, e.undo)
	}
}

// Resources returns the recorded resources in creation order.
func (l *Ledger) Resources() []Resource {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Resource, len(l.entries))
	for i, e := range l.entries {
		out[i] = e.res
	}
	return out
}

// Len returns the number of recorded resources.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Undo runs the undo functions in reverse creation order. It tries every
// entry even when some fail or ctx is done (each undo function sees ctx and
// decides for itself), removes the entries that were undone, and returns the
// failures joined with errors.Join, each naming its resource. Entries that
// failed stay recorded, so Undo may be called again.
//
// The lock is not held while undo functions run, so they may record or
// forget entries; entries recorded during Undo are left for a later call.
func (l *Ledger) Undo(ctx context.Context) error {
	l.mu.Lock()
	todo := slices.Clone(l.entries)
	l.mu.Unlock()

	var errs []error
	done := make(map[Resource]bool, len(todo))
	for i := len(todo) - 1; i >= 0; i-- {
		e := todo[i]
		if e.undo != nil {
			if err := e.undo(ctx); err != nil {
				errs = append(errs, fmt.Errorf("undo %s: %w", e.res, err))
				continue
			}
		}
		done[e.res] = true
	}

	l.mu.Lock()
	l.entries = slices.DeleteFunc(l.entries, func(e entry) bool { return done[e.res] })
	l.mu.Unlock()
	return errors.Join(errs...)
}
