// Package e2e holds the cross-component end-to-end reliability and
// security tests of the plugin. It has no code of its own beyond this
// comment: everything is in its _test.go files and testdata/.
//
// The tests run the real packer binary with the plugin installed against
// moto behind the recording, fault-injecting proxy of sdk/awstest, with an
// OpenSSH server on 127.0.0.1 standing in for the build instance. They
// prove, for ami-ebs, ami-instance and ami-distribute:
//
//   - fault tolerance: builds succeed through a seeded 10% rate of transient
//     faults (throttling, 500/503, connection resets, eventual-consistency
//     NotFound) and fail with a message naming the action, region and
//     resource when a fault is permanent; every create that takes a client
//     token sends one and retries reuse it;
//   - cleanup: after an interrupt (SIGINT) or a failure at each step,
//     nothing the run created is left in any region or in S3, and
//     pre-existing resources (decoys) are untouched;
//   - input validation: a corpus of invalid templates (testdata/invalid)
//     fails `packer validate` naming the field, without any AWS call;
//   - migration: templates written for HashiCorp's amazon-ebs and
//     amazon-instance builders (testdata/migration) pass `packer validate`
//     once only their builder type is renamed, and those marked for it are
//     built on the emulator with their AWS state checked; templates that
//     use options the builders do not have yet (testdata/migration-pending)
//     fail naming exactly those options;
//   - secrets: no credential, session token or private key reaches packer's
//     output, its debug log or a command run on the instance;
//   - safety rules: force_deregister, retention and artifact Destroy touch
//     only what they should.
//
// `go test` runs a sampled subset of the fault and interrupt matrices (the
// other cases show as skipped); set AMI_E2E_FULL=1 for all of them, and
// AMI_E2E_SEED=<n> to replay the random faults of a failed run (the seed
// is printed when a run fails).
// The numbers (runs, faults injected, leaks found, invalid inputs tried)
// are printed as one summary line at the end.
package e2e
