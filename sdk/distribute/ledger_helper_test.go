//go:build unix

package distribute

import "github.com/amiforge/packer-plugin-ami/sdk/ledger"

type ledgerT struct{ ledger.Ledger }
