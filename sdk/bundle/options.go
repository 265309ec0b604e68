package bundle

import "io"

// Options tune the operations of this package. Each operation takes
// optional functions that modify a zero Options; a zero field means the
// documented default, and an operation ignores the fields it does not use.
type Options struct {
	// Concurrency bounds the parts in flight. Bundle hands at most
	// Concurrency parts to the sink at once; memory use is about
	// (Concurrency+1) × 10 MiB. Open, Unbundle, UnbundleToDir and Verify
	// fetch and check Concurrency parts ahead of decryption; memory use is
	// about Concurrency × 10 MiB. Zero means 2.
	Concurrency int
	// CompressionLevel is the gzip level Bundle compresses with, 1
	// (fastest) to 9 (smallest). Zero means 6.
	CompressionLevel int
	// Parallelism is the number of goroutines Bundle compresses 1 MiB
	// blocks of the tar stream with at once. Memory use grows by about
	// 4 MiB per goroutine. Zero means runtime.GOMAXPROCS(0).
	Parallelism int
	// Rand is the source of the AES key and IV Bundle makes. Nil means
	// crypto/rand.
	Rand io.Reader
	// Bundler is written into the manifest Bundle makes. Zero means
	// DefaultBundler.
	Bundler Bundler
	// Progress, if set, is called with the number of image bytes read so
	// far and the image size: by Bundle after each chunk of the image, and
	// by Open, Unbundle, UnbundleToDir and Verify as the image is read
	// from the bundle.
	Progress func(done, total int64)
	// Overwrite lets UnbundleToDir replace a file that already exists at
	// the image's path (a symbolic link there is replaced, not followed).
	// The zero value, false, refuses an existing path with an error that
	// names it and wraps fs.ErrExist, before any part is read. The other
	// operations ignore it.
	Overwrite bool

	// partSize overrides PartSize for Bundle; tests use it to make many
	// parts from little data.
	partSize int
}
