//go:build unix

package bundlestore_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// TestRegisterLostResponseOnMoto loses RegisterImage's answer once (the
// SDK retries; moto, unlike EC2, registers a second image of the name) and
// on every attempt: exactly one image is left, the one Register returns
// and records.
func TestRegisterLostResponseOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	proxy := awstest.NewProxy(t, moto.Endpoint, awstest.ProxyOptions{})
	direct, _ := awstest.Clients(moto.Endpoint, "us-east-1")
	c, _ := awstest.Clients(proxy.URL, "us-east-1")
	client := ec2.New(c.Options(), func(o *ec2.Options) { o.RetryMaxAttempts = 3 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lost := &awstest.Fault{Forward: true, Code: "InternalError", Status: http.StatusInternalServerError}
	for _, tc := range []struct {
		name  string
		fault awstest.FaultFunc
	}{
		{"lost once", awstest.FailFirst(1, "ec2", "RegisterImage", lost)},
		{"always lost", awstest.FailAlways("ec2", "RegisterImage", lost)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Reset()
			proxy.SetFault(tc.fault)
			defer proxy.SetFault(nil)
			name := "lost-" + time.Now().Format("150405.000000")
			var l ledger.Ledger
			out, err := bundlestore.Register(ctx, client, &bundlestore.RegisterInput{
				ImageLocation: "bkt/lost/root.img.manifest.xml", Region: "us-east-1", Name: name, Architecture: "x86_64",
			}, func(o *bundlestore.Options) { o.Ledger = &l })
			if err != nil {
				t.Fatalf("Register after lost answers: %v", err)
			}
			if n := len(proxy.CallsFor("ec2", "RegisterImage")); n < 2 {
				t.Fatalf("%d RegisterImage calls; the fault did not apply", n)
			}
			imgs, err := direct.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
				Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs.Images) != 1 || aws.ToString(imgs.Images[0].ImageId) != out.ImageID || l.Len() != 1 {
				t.Errorf("%d images named %s (want only %s); ledger %v", len(imgs.Images), name, out.ImageID, l.Resources())
			}
			if err := l.Undo(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
