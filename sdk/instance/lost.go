package instance

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/lost"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// CreateTokenTag is the tag key under which CreateKeyPair and
// CreateSecurityGroup put a random token on what they create. When a create
// call fails, the call may still have taken effect in AWS (the response was
// lost, or the context was cancelled while the request was in flight);
// a resource with the requested name that carries the call's token was made
// by that call, while one without it existed before and is never touched.
const CreateTokenTag = "ami-build:create-token"

// withToken returns tags plus the create token.
func withToken(tags map[string]string, token string) map[string]string {
	m := maps.Clone(tags)
	if m == nil {
		m = map[string]string{}
	}
	m[CreateTokenTag] = token
	return m
}

// hasToken reports whether tags carry the create token.
func hasToken(tags []types.Tag, token string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == CreateTokenTag && aws.ToString(t.Value) == token {
			return true
		}
	}
	return false
}

// marked returns the IDs of those of items that are named name and carry
// token: what a create call with that token made. ref reads an item's
// name, ID and tags.
func marked[T any](items []T, name, token string, ref func(T) (name, id *string, tags []types.Tag)) []string {
	var ids []string
	for _, item := range items {
		n, id, tags := ref(item)
		if aws.ToString(n) == name && hasToken(tags, token) {
			ids = append(ids, aws.ToString(id))
		}
	}
	return ids
}

// lostCreate is a create call of a named resource that failed although it
// may have made the resource, with what recoverLost needs to find and
// remove what it made.
type lostCreate struct {
	// noun names the resource's kind in messages: "security group".
	noun string
	// name is the resource's name; where says where it is, for messages,
	// and region is its region.
	name, where, region string
	// kind is its ledger kind.
	kind ledger.Kind
	// find returns the IDs of the resources of that name that carry the
	// call's token; the first is the one the call made.
	find func(ctx context.Context) ([]string, error)
	// remove deletes the resource when the caller gave up.
	remove func(ctx context.Context, id string) error
	// undo is the ledger undo of the resource id.
	undo func(id string) func(context.Context) error
}

// recoverLost returns the ID of the resource c's failed call (err) made
// anyway, to use as the call's result (lost.Made.Recover). When the call
// made nothing, it returns err; when ctx is done, it deletes what the call
// made (within lost.Context; recorded in o.Ledger when that fails) and
// returns err saying so.
func (o Options) recoverLost(ctx context.Context, c lostCreate, err error) (string, error) {
	record := func(id string) { o.record(c.kind, id, c.region, c.undo(id)) }
	return lost.Made{
		Find: c.find,
		Remove: func(ctx context.Context, id string) error {
			o.logf("%s %s (%q) in %s was created although the call failed; deleting it", c.noun, id, c.name, c.region)
			if derr := c.remove(ctx, id); derr != nil {
				record(id)
				return fmt.Errorf("%s %s was created although the call failed, and could not be deleted: %w", c.noun, id, derr)
			}
			return nil
		},
		Record: record,
		Adopted: func(id string) {
			o.logf("the answer to creating %s %q in %s was lost; using %s, which the call created", c.noun, c.name, c.where, id)
		},
		LookFailed: func(ferr error) error {
			return fmt.Errorf("look for %s %q in %s, which the failed call may have created; delete it by hand if it exists: %w", c.noun, c.name, c.where, ferr)
		},
		RemovedAll: func(callErr error, id string) error {
			return fmt.Errorf("%w (the %s %s it made anyway was deleted)", callErr, c.noun, id)
		},
	}.Recover(ctx, err)
}

// lostLaunch is what a launch whose answer was lost may have started, for
// terminateLost: the instances that filters select and ours accepts.
type lostLaunch struct {
	filters []types.Filter
	ours    func(types.Instance) bool
	// what names the instances looked for ("instances tagged …"), origin
	// says what may have launched them ("the failed fleet may have
	// launched") and by what launched them ("a fleet"), for messages.
	what, origin, by string
}

// terminateLost terminates the instances l selects, waiting as w says for
// up to o.UndoWait; those it cannot terminate go to o.Ledger. When ctx is
// done it looks (twice, see lost.Find) and terminates within lost.Context.
func (o Options) terminateLost(ctx context.Context, api TerminateAPI, l lostLaunch, w WaitOptions) error {
	region := awserr.Region(api, "")
	callerDone := ctx.Err() != nil
	ctx, cancel := lost.Context(ctx)
	defer cancel()
	ids, err := lost.Find(ctx, callerDone, func() ([]string, error) { return instancesMatching(ctx, api, l.filters, l.ours) })
	if err != nil {
		return fmt.Errorf("look for %s in %s, which %s; terminate them by hand if they exist: %w", l.what, region, l.origin, err)
	}
	if len(ids) == 0 {
		return nil
	}
	o.logf("instance %s in %s was launched by %s whose answer was lost; terminating it", strings.Join(ids, ","), region, l.by)
	if err := terminate(ctx, api, ids, o.undoWait(w), o.undoOptions()); err != nil {
		for _, id := range ids {
			o.recordInstance(api, id, region, w)
		}
		return fmt.Errorf("instance %s was launched by %s whose answer was lost and could not be terminated: %w", strings.Join(ids, ","), l.by, err)
	}
	return nil
}

// instancesMatching returns the IDs of the instances that filters select
// and ours accepts.
func instancesMatching(ctx context.Context, api DescribeInstancesAPI, filters []types.Filter, ours func(types.Instance) bool) ([]string, error) {
	var ids []string
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				if ours(i) {
					ids = append(ids, aws.ToString(i.InstanceId))
				}
			}
		}
	}
	return ids, nil
}

// liveStates is the filter of the instances that are not shutting down or
// terminated.
func liveStates() types.Filter {
	return types.Filter{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}}
}
