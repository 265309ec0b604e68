//go:build unix

// Package packertest runs the real packer binary with this project's plugin,
// for end-to-end tests and the local demo.
//
// [Setup] (or [New] in a test) builds the plugin once per process, installs it
// with `packer plugins install --path` into private PACKER_PLUGIN_PATH,
// PACKER_CONFIG_DIR and HOME directories, and returns a [Packer] whose
// [Packer.Run] executes packer with a template written from a string. Every
// run captures stdout and stderr, writes a PACKER_LOG debug log to a file
// (for secret scans), can send SIGINT when a marker line appears, and is
// bounded by a timeout.
//
// The packer binary is the pinned one in <module root>/bin/packer, built by
// `make bin/packer`. Environment variables that could reach real AWS or the
// user's own packer configuration (AWS_*, PACKER_*, HOME) are not passed on;
// point packer at the emulator with [Options.Env], for example
// awstest.Env(proxy.URL, region).
package packertest
