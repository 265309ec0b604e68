// Package opts holds what every SDK package's functional options share.
package opts

// Apply returns the options that fns make of a zero T, in order; nil
// functions are skipped.
func Apply[T any](fns []func(*T)) T {
	var o T
	for _, fn := range fns {
		if fn != nil {
			fn(&o)
		}
	}
	return o
}

// Logf calls logf with format and args when logf is set.
func Logf(logf func(format string, args ...any), format string, args ...any) {
	if logf != nil {
		logf(format, args...)
	}
}
