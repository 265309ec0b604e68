// Package instance manages the temporary EC2 resources of an image build:
// a key pair, a security group that lets the builder reach the instance,
// and the instance itself (run, wait until running, stop, set attributes
// such as ENA support, terminate). DescribeSubnet finds the VPC of the
// subnet an instance is launched in; SelectNetwork finds the VPC, subnet and
// zone from IDs or filters, and FindSecurityGroups the groups that match
// filters. PublicIP asks a check-IP service for this machine's public
// address, to admit only it into a temporary security group.
// GetWindowsPassword waits for the Administrator password EC2 keeps for a
// Windows instance and decrypts it with the private key of the instance's
// RSA key pair.
//
// Every operation takes a context, a narrow client interface that
// *ec2.Client satisfies, an input and optional functional Options, in the
// manner of aws-sdk-go-v2. Zero values mean documented defaults. PublicIP
// is the one exception: it asks a check-IP service over HTTP, not EC2, so
// it takes no client interface; PublicIPInput.Client is the HTTP client it
// uses.
//
// When Options.Ledger is set, each resource is recorded as soon as AWS
// returns its ID, with an undo that removes it (terminating an instance
// waits until it is terminated, so that the security group can then be
// deleted). Undoing the ledger in reverse order therefore removes the
// instance before its security group and key pair.
//
// Waiting uses the SDK waiters with an explicit maximum wait. When an
// instance reaches a state it cannot leave, or does not reach the wanted
// state in time, the error is a *StateError with the instance's last state
// and state reason, usable with errors.As.
//
// Private keys and Windows passwords are returned to the caller only; this
// package never logs them or puts them in errors.
package instance
