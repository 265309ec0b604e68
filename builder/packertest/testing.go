//go:build unix

package packertest

import (
	"context"
	"strings"
	"testing"
)

// New sets up packer with the plugin installed in a fresh t.TempDir() and
// fails the test when that is not possible.
func New(t testing.TB, opts Options) *Packer {
	t.Helper()
	p, err := Setup(context.Background(), t.TempDir(), opts)
	if err != nil {
		t.Fatalf("packertest: %v", err)
	}
	return p
}

// RunT runs packer and fails the test when packer cannot be started. When
// the test fails, packer's output is logged.
func (p *Packer) RunT(t testing.TB, opts RunOptions) *Result {
	t.Helper()
	res, err := p.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("packertest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("packer %s (exit %d, %s) output:\n%s\ndebug log: %s",
				strings.Join(opts.Args, " "), res.ExitCode, res.Duration.Round(1e6), res.Output(), res.LogPath)
		}
	})
	return res
}

// Build runs `packer build [args] <template>` with template written from
// the string.
func (p *Packer) Build(t testing.TB, template string, args ...string) *Result {
	t.Helper()
	return p.RunT(t, RunOptions{Args: append([]string{"build"}, args...), Template: template})
}

// Validate runs `packer validate [args] <template>`.
func (p *Packer) Validate(t testing.TB, template string, args ...string) *Result {
	t.Helper()
	return p.RunT(t, RunOptions{Args: append([]string{"validate"}, args...), Template: template})
}
