package distribute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// cleanup removes every copy made, in every region, with a fresh context.
// A region whose CopyImage call has an unknown outcome is first made
// certain (recoverCopy); what cannot be made certain is reported with
// StatusUnknown and an error naming the region and the name to check.
// Every region is cleaned up whatever happens in the others, and every
// failure is returned.
func (c *copier) cleanup(ctx context.Context, off int) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.CleanupTimeout)
	defer cancel()
	errs := make([][]error, len(c.p.targets))
	var g errgroup.Group
	g.SetLimit(concurrency(c.in.Concurrency, len(c.p.targets)))
	for i, t := range c.p.targets {
		r := &c.results[off+i]
		if r.ImageID == "" && c.outcomes[i] != unknown {
			// Not called, or refused: nothing was made.
			continue
		}
		g.Go(func() error {
			errs[i] = c.cleanupRegion(cctx, t, r)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(slices.Concat(errs...)...)
}

// cleanupRegion removes what the CopyImage call for t made: the copy r
// names or, when the call's outcome is unknown, whatever recoverCopy
// finds. Each failure is also joined to r.Err.
func (c *copier) cleanupRegion(ctx context.Context, t resolvedTarget, r *Result) []error {
	var errs []error
	fail := func(err error) {
		err = fmt.Errorf("cleanup in %s: %w", t.region, err)
		errs = append(errs, err)
		r.Err = errors.Join(r.Err, err)
	}
	api := c.clients(t.region)
	ids := []string{r.ImageID}
	recovered := r.ImageID == ""
	if recovered {
		found, err := c.recoverCopy(ctx, api, t)
		if err != nil {
			r.Status = StatusUnknown
			fail(err)
			return errs
		}
		ids = found
	}
	for _, id := range ids {
		if err := c.removeCopy(ctx, api, t.region, id, r.Protected); err != nil {
			fail(err)
			continue
		}
		if recovered {
			if r.ImageID == "" {
				r.ImageID = id
			}
			r.Warnings = append(r.Warnings, "removed "+id+", made by an interrupted CopyImage call")
		}
		r.Status = StatusRemoved
	}
	return errs
}

// removeCopy deregisters one copy and deletes its snapshots, turning its
// deregistration protection off first when it was turned on, and forgets
// it in Options.Ledger: it no longer needs undoing.
func (c *copier) removeCopy(ctx context.Context, api CopyAPI, region, id string, protected bool) error {
	o := c.o
	if protected {
		if err := unprotect(ctx, api, &UnprotectInput{ImageID: id, Region: region}); err != nil {
			o.logf("cleanup: %v", err)
		}
	}
	if _, _, err := o.deregisterImage(ctx, api, id, region, true); err != nil {
		return err
	}
	o.logf("removed copy %s in %s", id, region)
	if o.Ledger != nil {
		o.Ledger.Forget(ledger.KindImage, id)
	}
	return nil
}

// recoverCopy finds out for certain whether an interrupted CopyImage call
// for t made a copy, and returns its ID (none when it made nothing).
//
// It replays the call with the same ClientToken: EC2 answers a repeated
// token with the image the first call made, or, when the first call never
// reached it, makes the copy now; either way the answer names the one copy
// this call stands for. A refusal of the replay means no copy exists for
// the token. When the replay has no answer either, the region is searched
// for AMIs carrying the call's CopyTokenTag (set when CopyImage makes the
// copy). If that search fails as well the outcome cannot be known and an
// error names the region, the AMI name and the tag to check.
func (c *copier) recoverCopy(ctx context.Context, api CopyAPI, t resolvedTarget) ([]string, error) {
	rctx, cancel := context.WithTimeout(ctx, replayTimeout)
	out, rerr := api.CopyImage(rctx, c.copyInput(t))
	cancel()
	if rerr == nil {
		if id := aws.ToString(out.ImageId); id != "" {
			return []string{id}, nil
		}
	}
	if rerr != nil && !awserr.IsRefusal(rerr) {
		c.o.logf("cleanup: replaying CopyImage in %s: %v", t.region, rerr)
	}
	// Refused, or no answer: look for the tag. A refused replay still gets
	// this look, in case the first request arrived after the replay.
	imgs, err := imagesTagged(ctx, api, CopyTokenTag, t.token)
	if err != nil {
		return nil, &UnknownCopyError{Region: t.region, Name: t.name, ClientToken: t.token, Err: errors.Join(rerr, err)}
	}
	var ids []string
	for _, img := range imgs {
		ids = append(ids, aws.ToString(img.ImageId))
	}
	if len(ids) == 0 && rerr != nil && !awserr.IsRefusal(rerr) {
		// Nothing carries the tag, but the replay did not get an answer:
		// a copy may still be on its way.
		return nil, &UnknownCopyError{Region: t.region, Name: t.name, ClientToken: t.token, Err: rerr}
	}
	return ids, nil
}

// replayTimeout bounds the replay of an interrupted CopyImage in cleanup,
// so that an endpoint that does not answer cannot hold the cleanup of the
// other regions; the tag search follows.
const replayTimeout = 2 * time.Minute

// UnknownCopyError reports a CopyImage call whose outcome Copy could not
// find out during cleanup: a copy may exist in Region under Name, tagged
// CopyTokenTag=ClientToken. Use errors.As.
type UnknownCopyError struct {
	Region, Name, ClientToken string
	Err                       error
}

// Error names the region, the AMI name and the tag to look for.
func (e *UnknownCopyError) Error() string {
	return fmt.Sprintf("could not find out whether CopyImage made a copy in %s; check %s for an AMI named %q tagged %s=%s and deregister it: %v",
		e.Region, e.Region, e.Name, CopyTokenTag, e.ClientToken, e.Err)
}

// Unwrap returns Err, the failures that left the outcome unknown.
func (e *UnknownCopyError) Unwrap() error { return e.Err }

// imagesTagged lists the caller's AMIs carrying tag key=value. The answer
// is checked, not only the filter trusted.
func imagesTagged(ctx context.Context, api DescribeImagesAPI, key, value string) ([]types.Image, error) {
	filters := []types.Filter{{Name: aws.String("tag:" + key), Values: []string{value}}}
	return ownImages(ctx, api, filters, func(img types.Image) bool { return hasTag(img, key, value) })
}
