package amiconfig

// SplitErrors returns the errors joined in err (by errors.Join, as the SDK's
// Validate methods report every problem), so that each is listed on its
// own; nil for nil.
func SplitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
