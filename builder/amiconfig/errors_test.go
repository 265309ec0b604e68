package amiconfig

import (
	"errors"
	"testing"
)

func TestSplitErrors(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	if got := SplitErrors(nil); got != nil {
		t.Errorf("SplitErrors(nil) = %v", got)
	}
	if got := SplitErrors(a); len(got) != 1 || got[0] != a {
		t.Errorf("SplitErrors(a) = %v", got)
	}
	if got := SplitErrors(errors.Join(a, b)); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("SplitErrors(join) = %v", got)
	}
}
