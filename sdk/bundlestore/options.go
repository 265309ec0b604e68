package bundlestore

import (
	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// DefaultConcurrency is the number of objects transferred at once when
// Options.Concurrency is zero.
const DefaultConcurrency = 4

// Options are the settings shared by the operations of this package. Each
// operation takes optional functions that modify a zero Options.
type Options struct {
	// Concurrency bounds the number of parts uploaded or downloaded at
	// once. Each upload in flight holds one part (10 MiB) in memory. Zero
	// means DefaultConcurrency; values below 1 mean 1.
	Concurrency int

	// DisableResume makes uploads send every part. By default a part whose
	// key already holds an object with the part's MD5 as ETag (an intact
	// copy left by an interrupted upload) is not sent again.
	DisableResume bool

	// Progress, when set, is called after each object transferred or found
	// intact, with the bytes done so far and the total (0 when unknown, as
	// for a streaming Writer without TotalSize). Calls are serialized.
	Progress func(done, total int64)

	// Ledger, when set, records every object uploaded (undo: delete it) and
	// every image registered (undo: deregister it), so that a failed run can
	// remove them. Objects found intact and not sent are not recorded.
	Ledger *ledger.Ledger

	// Logf, when set, receives progress and diagnostic messages.
	Logf func(format string, args ...any)
}

func resolveOptions(optFns []func(*Options)) Options {
	o := opts.Apply(optFns)
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	return o
}

func (o *Options) logf(format string, args ...any) {
	opts.Logf(o.Logf, format, args...)
}
