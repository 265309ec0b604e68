//go:build unix

package awstest

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// sharedMoto serves the tests of this package that only need some moto;
// each such test uses its own region so that they cannot see each other's
// resources.
var sharedMoto *Moto

func TestMain(m *testing.M) {
	f := false
	mt, err := StartMoto(context.Background(), MotoOptions{LoadDefaultAMIs: &f})
	if err != nil {
		fmt.Fprintln(os.Stderr, "awstest tests:", err)
		os.Exit(1)
	}
	sharedMoto = mt
	code := m.Run()
	if err := mt.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "awstest tests: stop moto:", err)
		code = 1
	}
	os.Exit(code)
}

func itoa(i int) string { return fmt.Sprint(i) }
