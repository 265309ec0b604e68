package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

func Example() {
	var l ledger.Ledger
	undo := func(r ledger.Resource) func(context.Context) error {
		return func(context.Context) error {
			fmt.Println("removing", r)
			return nil
		}
	}
	for _, r := range []ledger.Resource{
		{Kind: ledger.KindKeyPair, ID: "build-key", Region: "us-east-1"},
		{Kind: ledger.KindInstance, ID: "i-0abc", Region: "us-east-1"},
		{Kind: ledger.KindImage, ID: "ami-0def", Region: "us-east-1"},
	} {
		l.Record(r, undo(r))
	}

	buildErr := errors.New("provisioner failed")
	// The image is the result the caller keeps on success; here the build
	// failed, so everything is undone with a fresh, bounded context.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Undo(ctx); err != nil {
		fmt.Println("cleanup:", err)
	}
	fmt.Println(buildErr, "- left behind:", len(l.Resources()))
	// Output:
	// removing image ami-0def (us-east-1)
	// removing instance i-0abc (us-east-1)
	// removing key-pair build-key (us-east-1)
	// provisioner failed - left behind: 0
}
