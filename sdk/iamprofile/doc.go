// Package iamprofile makes the temporary IAM instance profile of an image
// build: an IAM role that EC2 may assume, an inline policy on the role from
// a policy document, and an instance profile holding the role. Create makes
// all three and waits until IAM shows the role in the profile; Delete
// removes them again. Check looks up an existing instance profile; a
// missing one is an error wrapping ErrNotFound, usable with errors.Is.
//
// Every function takes a context, a narrow client interface that
// *iam.Client satisfies, an input and optional functional Options, in the
// manner of aws-sdk-go-v2. Zero values mean documented defaults.
//
// When Options.Ledger is set, the role, its inline policy and the instance
// profile are recorded as soon as IAM has made each of them, with an undo
// that removes it. Undoing the ledger in reverse order takes the role out
// of the profile and deletes the profile, then the policy, then the role.
// When Create fails part way, it removes what it made before returning.
//
// Create tags the role and the instance profile at creation with a random
// token (CreateTokenTag). When a create call fails, IAM may still have
// carried it out (a lost answer, or a context cancelled while the request
// was in flight); a role or profile with the name that carries the token
// was made by that call, and one without it belongs to somebody else and
// is never touched.
//
// IAM is eventually consistent: EC2 may refuse a new instance profile for
// some seconds after Create returns. Launch the instance with
// instance.RunInput.IAMProfileWait set, so that the launch is retried
// while EC2 does not know the profile yet.
package iamprofile
