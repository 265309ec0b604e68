//go:build unix

// Package awstest is a local-AWS test harness for code that talks to EC2,
// S3 and STS. It is usable from any Go test, not only from this project's.
//
// It provides:
//
//   - [Moto]: a moto_server process on a free 127.0.0.1 port ([StartMoto],
//     [NewMoto]). One endpoint serves every service and every region; moto
//     takes the region from the SigV4 credential scope.
//   - [Proxy]: a recording reverse proxy in front of any endpoint
//     ([StartProxy], [NewProxy]). It parses every AWS request into a [Call]
//     (service, action, region, parameters, S3 bucket and key, redacted
//     headers, status) so that tests can assert what was sent, including
//     parameters the emulator ignores. A [FaultFunc] set with
//     [Proxy.SetFault] can answer with AWS-shaped errors, add latency or
//     reset connections ([ErrorFault], [LatencyFault], [ResetFault],
//     [FailFirst], [RandomFaults]).
//     It also makes moto behave as EC2 documents where moto does not, and
//     records what it did in [Call.Emulated]; each emulation can be
//     switched off in [ProxyOptions]:
//     CopyImage's ClientToken and TagSpecifications (copyimage.go);
//     CreateLaunchTemplateVersion's ClientToken, and
//     DeleteLaunchTemplateVersions with its effect on the other launch
//     template calls (launchtemplate.go); CopyImage and DescribeImages of
//     an AMI another account shared with the caller, where moto looks only
//     in the caller's account (crossaccount.go). Each file says what its
//     emulation does and where it stops.
//     With a [TimeModel] in ProxyOptions.Model, instances and AMIs take
//     time to change state as on AWS, where moto makes every state final at
//     once: describe answers show pending, stopping or shutting-down
//     instances and pending AMIs (with their snapshots' progress) until a
//     duration drawn for the transition, reproducibly for a seed and scaled
//     to the wall clock, has passed, and [TimeModel.Events] report when
//     each transition was done, when the client noticed and how often it
//     asked (timemodel.go).
//   - [SSHD]: an OpenSSH server on 127.0.0.1 with generated keys that logs
//     every command it executes ([StartSSHD], [NewSSHD]), for provisioning
//     tests.
//   - [TakeSnapshot] and [ListLeaks]: list what was created in the emulator
//     since a baseline (instances, key pairs, security groups, images,
//     snapshots, volumes, S3 buckets and objects), to prove a run leaked
//     nothing.
//   - [Policy]: an IAM policy document ([LoadPolicy], [ParsePolicy]) checked
//     against recorded calls: [RequiredActions] maps a [Call] to the IAM
//     permissions it needs, [Policy.Check] reports denied calls and actions
//     no call needed, [CheckPolicy] does both in a test.
//   - [Clients], [STSClient], [Env]: SDK clients and subprocess environment
//     pointed at the emulator with static test credentials.
//   - [NextSecond]: waits until the wall clock is in a later whole second,
//     so that an AMI created next has a later CreationDate (EC2 and moto
//     give it in whole seconds) than those created before.
//
// moto_server must be on PATH (pip install 'moto[server]'); the SSH server
// needs /usr/sbin/sshd (apt-get install openssh-server). Missing tools make
// the New* helpers fail the test; they never skip it.
package awstest
