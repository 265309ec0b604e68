// Package pgzip compresses and decompresses gzip streams on several cores.
//
// Writer cuts its input into blocks of a fixed size and compresses each on
// its own, without the window of the block before; every block but the last
// ends with a sync flush, so the compressed blocks laid end to end form one
// deflate stream in one gzip member, which any gzip decoder reads.
//
// Reader decodes any gzip stream, one member or several. On a stream made
// by Writer with blocks of BlockSize bytes it finds the block boundaries
// and inflates the blocks in parallel; on any other stream it falls back to
// inflating in order. Both can feed a hash the uncompressed bytes, in
// order, from a goroutine of their own, so that hashing runs beside the
// codec instead of after it.
//
// The package knows nothing of bundles; package bundle uses it for the
// gzip layer of its pipelines.
package pgzip
