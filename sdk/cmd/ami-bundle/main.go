// Command ami-bundle makes, reads and checks AMI bundles, the format of
// instance-store AMIs. It is a drop-in for the common uses of the Amazon EC2
// AMI tools and accepts their short flags:
//
//	ami-bundle bundle   -i IMAGE -c CERT -k KEY -u ACCOUNT -r ARCH --ec2cert CERT [-d DIR] [-p PREFIX]
//	                    [--kernel AKI] [--ramdisk ARI] [--productcodes CODES] [-B MAPPINGS]
//	ami-bundle unbundle -k KEY -m MANIFEST [-s SRC] [-d DST] [-c CERT] [--force]
//	ami-bundle verify   -k KEY -m MANIFEST -c CERT [-s SRC]
//	ami-bundle upload   -b BUCKET[/PREFIX] -m MANIFEST [--region REGION] [--location REGION]
//	ami-bundle delete   -b BUCKET[/PREFIX] (-m MANIFEST | -p NAME) [--region REGION]
//	ami-bundle register BUCKET/PREFIX/NAME.manifest.xml -n NAME [-d DESCRIPTION] [-a ARCH]
//	                    [--virtualization-type hvm|paravirtual] [--root-device-name DEVICE]
//	                    [-b MAPPING ...] [--kernel AKI] [--ramdisk ARI] [--ena-support]
//	                    [--sriov-net-support simple] [--boot-mode MODE] [--tpm-support v2.0]
//	                    [--imds-support v2.0] [--tag KEY=VALUE ...] [--region REGION]
//
// The AWS commands take credentials from the standard chain and accept
// --profile and --endpoint-url (for emulators).
//
// Flags may be written with one or two dashes. Progress of long operations
// goes to standard error; the files made are listed on standard output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// memoryLimit is the soft memory limit of the command unless GOMEMLIMIT is
// set. Bundling and unbundling keep a few tens of MiB of buffers that are
// recycled, not garbage; without a limit the heap may still grow to twice
// the live heap before a collection, and the peak resident size with it.
const memoryLimit = 48 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile(os.Getenv("AMI_BUNDLE_CPUPROFILE"))
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// startProfile writes a CPU profile to path (if not empty) until the
// returned function is called: AMI_BUNDLE_CPUPROFILE=cpu.out ami-bundle ….
func startProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ami-bundle: cpu profile:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// A command is one subcommand.
type command struct {
	name    string
	short   string // one line for the command list
	args    string // the arguments besides the flags, for the usage line
	summary string
	// flags defines the command's flags on fs and returns the function
	// that runs it once the flags are parsed.
	flags func(fs *flag.FlagSet) func(ctx context.Context, io *stdio, args []string) error
}

type stdio struct {
	stdout, stderr io.Writer
}

var commands = []*command{bundleCommand, unbundleCommand, verifyCommand, uploadCommand, deleteCommand, registerCommand}

// usageError is a mistake in the command line; run prints it with a hint
// and exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// run runs the command line args and returns the exit status: 0 on
// success, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	std := &stdio{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "ami-bundle", version)
		return 0
	}
	var cmd *command
	for _, c := range commands {
		if c.name == args[0] {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "ami-bundle: unknown command %q\n", args[0])
		printUsage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("ami-bundle "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	runCmd := cmd.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: ami-bundle %s\n\n%s\n\nflags:\n", cmd.name+cmd.args+" [flags]", cmd.summary)
		printFlags(fs)
	}
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	err = runCmd(ctx, std, positional)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ami-bundle %s: %v\nRun 'ami-bundle %s -h' for usage.\n", cmd.name, err, cmd.name)
		return 2
	default:
		fmt.Fprintf(stderr, "ami-bundle %s: %v\n", cmd.name, err)
		return 1
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: ami-bundle <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.short)
	}
	fmt.Fprintln(w, "  version   print the version")
	fmt.Fprintln(w, "\nRun 'ami-bundle <command> -h' for the flags of a command.")
}

// printFlags prints the flags once each, short and long aliases together,
// ordered by long name.
func printFlags(fs *flag.FlagSet) {
	type entry struct {
		short, long, arg, usage, def string
	}
	byUsage := map[string]*entry{}
	var order []*entry
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		e, ok := byUsage[f.Usage]
		if !ok {
			e = &entry{arg: arg, usage: usage, def: f.DefValue}
			byUsage[f.Usage] = e
			order = append(order, e)
		}
		if len(f.Name) == 1 {
			e.short = "-" + f.Name
		} else {
			e.long = "--" + f.Name
		}
	})
	sort.SliceStable(order, func(i, j int) bool { return order[i].long < order[j].long })
	for _, e := range order {
		names := e.long
		if e.short != "" {
			names = e.short + ", " + e.long
		}
		if e.arg != "" && e.arg != "value" {
			names += " " + e.arg
		}
		fmt.Fprintf(fs.Output(), "  %s\n    \t%s", names, e.usage)
		if e.def != "" && e.def != "false" {
			fmt.Fprintf(fs.Output(), " (default %q)", e.def)
		}
		fmt.Fprintln(fs.Output())
	}
}

// parseInterspersed parses args on fs allowing arguments between flags
// (register BUCKET/NAME.manifest.xml -n NAME), and returns the arguments.
// Everything after "--" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// stringFlag defines a string flag under a short and a long name ("" for
// none).
func stringFlag(fs *flag.FlagSet, p *string, short, long, def, usage string) {
	for _, n := range []string{short, long} {
		if n != "" {
			fs.StringVar(p, n, def, usage)
		}
	}
}

func intFlag(fs *flag.FlagSet, p *int, short, long string, def int, usage string) {
	for _, n := range []string{short, long} {
		if n != "" {
			fs.IntVar(p, n, def, usage)
		}
	}
}

func boolFlag(fs *flag.FlagSet, p *bool, short, long, usage string) {
	for _, n := range []string{short, long} {
		if n != "" {
			fs.BoolVar(p, n, false, usage)
		}
	}
}

// required returns a usage error naming the first empty flag.
func required(flags ...[2]string) error {
	for _, f := range flags {
		if f[1] == "" {
			return usagef("missing %s", f[0])
		}
	}
	return nil
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}
