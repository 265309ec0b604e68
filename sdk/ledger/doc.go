// Package ledger keeps a record of the cloud resources a run has created, so
// that a failed or cancelled run can undo exactly what it made, in reverse
// order, and nothing else.
//
// Every function in the SDK that creates a resource accepts an optional
// *Ledger (through its Options). When one is given, the function records the
// resource together with an undo function as soon as the resource exists. A
// caller that wants to keep a resource (for example the final AMI of a
// successful build) hands it over with ForgetResource, or with Forget for
// IDs unique across regions; everything still recorded when the run fails is
// removed with Undo:
//
//	var l ledger.Ledger
//	out, err := build(ctx, &l) // creates instances, key pairs, images ...
//	if err != nil {
//		// The run's context may already be cancelled: undo with a fresh,
//		// bounded one.
//		undoCtx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
//		defer cancel()
//		return errors.Join(err, l.Undo(undoCtx))
//	}
//	l.Forget(ledger.KindImage, out.ImageID)
//
// Undo works in reverse creation order (an instance is terminated before its
// security group is deleted), tries every entry even when some fail, and
// returns the failures joined with errors.Join. Entries that were undone are
// removed, so a second Undo retries only what failed. Choosing the context
// for Undo is the caller's business; the ledger never invents one.
//
// The zero Ledger is ready to use and safe for concurrent use.
package ledger
