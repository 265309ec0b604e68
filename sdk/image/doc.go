// Package image finds, creates, waits for, tags and deregisters Amazon
// Machine Images, and sets the attributes CreateImage cannot set
// (SetIMDSSupport).
//
// Every operation takes a context, a narrow client interface that
// *ec2.Client satisfies, an input struct and optional functional Options,
// in the manner of aws-sdk-go-v2. Zero values in inputs and options mean
// documented defaults.
//
// Waiting has an explicit maximum wait. The first check is made at once,
// later ones every DefaultPollDelay (10 seconds) unless WaitOptions set
// other delays; WaitOptions.Progress reports each check of a pending image
// with its snapshots' progress. Once a minute the wait reads that progress
// anyway, and moves one check later to the moment the snapshots should be
// done, so that the image is noticed sooner without more checks. When an
// image fails, disappears or does not become available in time, the error
// is a *StateError carrying the image's last state and state reason:
//
//	out, err := image.Wait(ctx, client, &image.WaitInput{ImageID: id, Wait: image.WaitOptions{MaxWait: 30 * time.Minute}})
//	var se *image.StateError
//	if errors.As(err, &se) {
//		log.Printf("image %s is %s: %s", se.ImageID, se.State, se.Reason)
//	}
//
// When Options.Ledger is set, Create records the new image (its undo
// deregisters it and deletes its snapshots), so a failed run can remove it.
package image
