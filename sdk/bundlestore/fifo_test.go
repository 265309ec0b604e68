//go:build unix

package bundlestore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// TestUploadPartIsFIFO uploads a bundle whose part is a FIFO with no
// writer: opening it for reading the ordinary way blocks until a writer
// comes, which no context or signal interrupts.
func TestUploadPartIsFIFO(t *testing.T) {
	b := copyBundle(t, sharedBundle(t, threeParts))
	fifo := filepath.Join(b.Dir, b.Manifest.Parts[1].Filename)
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFakeS3("bkt")
	done := make(chan error, 1)
	go func() {
		_, err := Upload(t.Context(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt"})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Upload: %v, want an error saying that %s is not a regular file", err, fifo)
		}
	case <-time.After(time.Minute):
		// Only a guard: let the blocked open return, so that the goroutine
		// ends, and fail.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatal("Upload did not return within a minute with a FIFO as a part")
	}
	if slices.Contains(f.Keys(), "root.img.manifest.xml") {
		t.Error("manifest uploaded although a part could not be read")
	}
}

// A part file far larger than any part of its manifest (here a sparse
// 1 TiB file) is refused after reading one byte more than the largest
// part, not read into memory.
func TestUploadPartTooLarge(t *testing.T) {
	b := copyBundle(t, sharedBundle(t, threeParts))
	big := filepath.Join(b.Dir, b.Manifest.Parts[1].Filename)
	if err := os.Truncate(big, 1<<40); err != nil {
		t.Fatalf("make a sparse 1 TiB part: %v", err)
	}
	f := newFakeS3("bkt")
	_, err := Upload(t.Context(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt"})
	var pe *bundle.PartError
	if !errors.As(err, &pe) || pe.Index != 1 || !strings.Contains(err.Error(), "the largest part the manifest allows") {
		t.Fatalf("Upload: %v, want a PartError for part 1 saying it is too large", err)
	}
	if slices.Contains(f.Keys(), "root.img.manifest.xml") {
		t.Error("manifest uploaded although a part was too large")
	}
}
