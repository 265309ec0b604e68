//go:build unix

package bundlestore_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Bundle an image straight into S3, register it, and remove both again.
// The clients here talk to a local emulator; with real AWS they come from
// awscfg.Session.S3(region) and .EC2(region).
func Example() {
	ctx := context.Background()
	const region, bucket = "us-east-1", "example-bundles"
	s3c, ec2c, err := exampleClients(region) // *s3.Client, *ec2.Client
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		fmt.Println("error:", err)
		return
	}

	// Refuse unusable buckets before doing any work.
	if _, err := bundlestore.CheckBucket(ctx, s3c, &bundlestore.CheckBucketInput{Bucket: bucket, Region: region}); err != nil {
		fmt.Println("error:", err)
		return
	}

	// Everything created is recorded, so that a failure can undo it.
	var created ledger.Ledger
	withLedger := func(o *bundlestore.Options) { o.Ledger = &created }

	// Parts are uploaded while the bundler makes the next ones.
	w, err := bundlestore.NewWriter(ctx, s3c, &bundlestore.WriterInput{Bucket: bucket, Prefix: "web", Region: region}, withLedger)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	image := bytes.Repeat([]byte("disk image "), 100000)
	userKey, userCert, ec2Cert, err := exampleKeys()
	if err != nil {
		w.Abort()
		fmt.Println("error:", err)
		return
	}
	out, err := bundle.Bundle(ctx, &bundle.BundleInput{
		Image: bytes.NewReader(image), Size: int64(len(image)),
		Name: "web.img", Architecture: bundle.ArchX86_64, User: "123456789012",
		UserCert: userCert, UserKey: userKey, EC2Cert: ec2Cert,
		Sink: w,
	})
	if err != nil {
		w.Abort()
		fmt.Println("error:", err)
		return
	}
	up, err := w.Finish(ctx, out.ManifestName, out.ManifestBytes)
	if err != nil {
		fmt.Println("error:", created.Undo(ctx))
		return
	}
	fmt.Println("manifest:", up.ImageLocation)

	img, err := bundlestore.Register(ctx, ec2c, &bundlestore.RegisterInput{
		ImageLocation: up.ImageLocation, Region: region,
		Name: "web-2026-11-23", Manifest: out.Manifest,
		RootDeviceName: "/dev/sda1", ENASupport: aws.Bool(true),
	}, withLedger)
	if err != nil {
		fmt.Println("error:", created.Undo(ctx))
		return
	}
	fmt.Println("registered:", img.ImageID != "")

	// Later: deregister the image and delete its bundle. (The emulator
	// does not keep the image's location, so it is given here.)
	gone, err := bundlestore.Deregister(ctx, ec2c, s3c, &bundlestore.DeregisterInput{
		ImageID: img.ImageID, Region: region, ImageLocation: up.ImageLocation,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("deleted:", gone.Bundle.Deleted)
	// Output:
	// manifest: example-bundles/web/web.img.manifest.xml
	// registered: true
	// deleted: [web/web.img.part.0 web/web.img.manifest.xml]
}

// exampleClients returns clients of a local emulator.
func exampleClients(region string) (*s3.Client, *ec2.Client, error) {
	return bundlestore.EmulatorClients(region)
}

// exampleKeys returns a key and certificate standing in for the user's and
// EC2's.
func exampleKeys() (*rsa.PrivateKey, *x509.Certificate, *x509.Certificate, error) {
	return bundlestore.StandInKeys()
}
