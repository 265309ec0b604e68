package opts

import (
	"fmt"
	"testing"
)

func TestApply(t *testing.T) {
	type options struct{ a, b int }
	got := Apply([]func(*options){
		func(o *options) { o.a = 1 },
		nil,
		func(o *options) { o.b = o.a + 1 },
	})
	if got != (options{1, 2}) {
		t.Errorf("Apply = %+v, want {1 2}", got)
	}
	if got := Apply[options](nil); got != (options{}) {
		t.Errorf("Apply(nil) = %+v, want the zero value", got)
	}
}

func TestLogf(t *testing.T) {
	var lines []string
	Logf(func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }, "%s in %s", "ami-1", "eu-west-1")
	Logf(nil, "dropped %d", 1)
	if len(lines) != 1 || lines[0] != "ami-1 in eu-west-1" {
		t.Errorf("lines = %q", lines)
	}
}
