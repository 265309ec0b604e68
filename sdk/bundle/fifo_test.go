//go:build unix

package bundle

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPartIsFIFO runs Verify and Unbundle over a bundle whose part is a
// FIFO with no writer: opening it for reading the ordinary way blocks until
// a writer comes, which no context or signal interrupts.
func TestPartIsFIFO(t *testing.T) {
	k := loadKeys(t)
	v := vectors[0]
	raw := readFile(t, v.manifestPath())
	m, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func(ctx context.Context, in *UnbundleInput) error
	}{
		{"verify", func(ctx context.Context, in *UnbundleInput) error {
			_, err := Verify(ctx, in)
			return err
		}},
		{"unbundle", func(ctx context.Context, in *UnbundleInput) error {
			_, err := Unbundle(ctx, in, io.Discard)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, m.Parts[0].Filename)
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			in := &UnbundleInput{Manifest: raw, Source: Dir(dir), UserKey: k.userKey, UserCert: k.userCert}
			done := make(chan error, 1)
			go func() { done <- tc.run(t.Context(), in) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("%s: %v, want an error saying that %s is not a regular file", tc.name, err, fifo)
				}
			case <-time.After(time.Minute):
				// Only a guard: let the blocked open return, so that the
				// goroutine ends, and fail.
				if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
				t.Fatalf("%s did not return within a minute with a FIFO as a part", tc.name)
			}
		})
	}
}
