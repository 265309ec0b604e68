package pgzip_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"io"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/pgzip"
)

// A round trip: Writer compresses on two goroutines while hashing the
// input, and Reader inflates the stream while hashing the output.
func Example() {
	image := bytes.Repeat([]byte("an image of a disk\n"), 100_000)

	var gz bytes.Buffer
	in := sha1.New()
	w, err := pgzip.NewWriter(context.Background(), &gz, 6, pgzip.BlockSize, 2, in)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	if _, err := w.ReadFrom(bytes.NewReader(image)); err != nil {
		w.Abort(err)
		fmt.Println("error:", err)
		return
	}
	if err := w.Close(); err != nil {
		fmt.Println("error:", err)
		return
	}

	out := sha1.New()
	r := pgzip.NewReader(&gz, out, 2)
	got, err := io.ReadAll(r)
	r.Hashed()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(bytes.Equal(got, image), bytes.Equal(in.Sum(nil), out.Sum(nil)))
	// Output: true true
}
