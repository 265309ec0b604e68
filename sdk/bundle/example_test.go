package bundle_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// Bundle a small in-memory image into a directory, then read it back.
func Example() {
	ctx := context.Background()
	userCert, err := bundle.LoadCertificate("testdata/vectors/user-cert.pem")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	userKey, err := bundle.LoadPrivateKey("testdata/vectors/user-key.pem")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	// Real bundles use Amazon's EC2 certificate (cert-ec2.pem).
	ec2Cert, err := bundle.LoadCertificate("testdata/vectors/ec2-cert.pem")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	dir, err := os.MkdirTemp("", "bundle-example")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer os.RemoveAll(dir)

	image := bytes.Repeat([]byte("an image of a root file system\n"), 1<<15)
	out, err := bundle.Bundle(ctx, &bundle.BundleInput{
		Image:        bytes.NewReader(image),
		Size:         int64(len(image)),
		Name:         "root.img",
		Architecture: bundle.ArchX86_64,
		User:         "1234-5678-9012",
		UserCert:     userCert,
		UserKey:      userKey,
		EC2Cert:      ec2Cert,
		Sink:         bundle.Dir(dir),
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	// Parts are stored; the manifest goes last.
	if err := os.WriteFile(filepath.Join(dir, out.ManifestName), out.ManifestBytes, 0o644); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("manifest:", out.ManifestName)
	for _, p := range out.Manifest.Parts {
		fmt.Println("part:", p.Filename)
	}
	fmt.Println("image bytes:", out.Manifest.Size)

	var restored bytes.Buffer
	res, err := bundle.Unbundle(ctx, &bundle.UnbundleInput{
		Manifest: out.ManifestBytes,
		Source:   bundle.Dir(dir),
		UserKey:  userKey,
		UserCert: userCert,
	}, &restored)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("signature verified:", res.SignatureVerified)
	fmt.Println("identical:", bytes.Equal(restored.Bytes(), image))
	// Output:
	// manifest: root.img.manifest.xml
	// part: root.img.part.0
	// image bytes: 1015808
	// signature verified: true
	// identical: true
}
