// Package ssmtunnel reaches a TCP port of an EC2 instance through AWS
// Systems Manager Session Manager, without any inbound rule or public
// address: Start asks SSM for a port-forwarding session (StartSession with
// the document AWS-StartPortForwardingSession) and runs AWS's
// session-manager-plugin executable, which carries the session and listens
// on a local port of 127.0.0.1. Connections to Tunnel.Addr reach the
// instance's port.
//
// The plugin is started as the AWS CLI starts it, with six arguments: the
// StartSession answer as JSON, the region, "StartSession", the profile, the
// StartSession input as JSON and the SSM endpoint URL. The answer carries
// the session's token, so the arguments are never logged or put in errors.
//
// Tunnel.Close stops the plugin and ends the session with TerminateSession.
// With Options.Ledger set, Start records the session (KindSession) and the
// plugin process (KindPluginProcess) as soon as each exists, with undos
// that end them, so that undoing the ledger in reverse order stops the
// process before it ends the session.
//
// When the answer to StartSession is lost (a transport error after the
// request went out), a session may have been started that this package
// does not know of. It is not looked for: the instance is the caller's, and
// a session ends when its instance is terminated.
//
// The instance needs a running SSM agent and an instance profile that lets
// it register with Systems Manager (for example the managed policy
// AmazonSSMManagedInstanceCore). Until the agent is registered, StartSession
// fails with TargetNotConnected; Start retries it for up to
// StartInput.ConnectTimeout.
package ssmtunnel
