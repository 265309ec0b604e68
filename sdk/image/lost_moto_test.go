//go:build unix

package image_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// TestCreateLostResponseOnMoto loses CreateImage's answer once (the SDK
// retries; moto, unlike EC2, allows the duplicate name and makes a second
// image) and on every attempt: exactly one image is left, the one Create
// returns and records.
func TestCreateLostResponseOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	proxy := awstest.NewProxy(t, moto.Endpoint, awstest.ProxyOptions{})
	direct, _ := awstest.Clients(moto.Endpoint, region)
	c, _ := awstest.Clients(proxy.URL, region)
	client := ec2.New(c.Options(), func(o *ec2.Options) { o.RetryMaxAttempts = 3 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	instanceID := runSource(t, ctx, direct)
	lost := &awstest.Fault{Forward: true, Code: "InternalError", Status: http.StatusInternalServerError}

	for _, tc := range []struct {
		name  string
		fault awstest.FaultFunc
	}{
		{"lost once", awstest.FailFirst(1, "ec2", "CreateImage", lost)},
		{"always lost", awstest.FailAlways("ec2", "CreateImage", lost)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Reset()
			proxy.SetFault(tc.fault)
			defer proxy.SetFault(nil)
			name := "lost-" + time.Now().Format("150405.000000")
			var l ledger.Ledger
			out, err := image.Create(ctx, client, &image.CreateInput{InstanceID: instanceID, Name: name, Wait: quick},
				func(o *image.Options) { o.Ledger = &l; o.RetryDelay = 10 * time.Millisecond })
			if err != nil {
				t.Fatalf("Create after lost answers: %v", err)
			}
			if n := len(proxy.CallsFor("ec2", "CreateImage")); n < 2 {
				t.Fatalf("%d CreateImage calls; the fault did not apply", n)
			}
			left, err := image.FindByName(ctx, direct, &image.FindByNameInput{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			if len(left.Images) != 1 || *left.Images[0].ImageId != out.ImageID || l.Len() != 1 {
				t.Errorf("images named %s: %d (want only %s); ledger %v", name, len(left.Images), out.ImageID, l.Resources())
			}
			if err := l.Undo(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
