//go:build unix

package instance_test

//lint:file-ignore SA1019 the bundle manifest's keys are RSA PKCS #1 v1.5, as Amazon's tools write them

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// testEC2CertFromInstance builds without ec2_cert_path and without
// local_emulator, as an amazon-instance template does: a provisioner
// installs "Amazon's EC2 AMI tools" (a directory with the certificate, at
// the EC2_AMITOOL_HOME of the instance's sessions), and the bundle's key
// must be encrypted for that certificate. Before that, the same build
// without the tools fails before anything is uploaded, naming
// ec2_cert_path.
func testEC2CertFromInstance(t *testing.T, e *e2eEnv) {
	ec2Key, ec2CertPEM := selfSigned(t, "EC2 stand-in on the instance")
	staged := filepath.Join(t.TempDir(), "cert-ec2.pem")
	if err := os.WriteFile(staged, ec2CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(e.toolsHome, "etc", "ec2", "amitools")

	provision, img := e.makeImage("ec2-cert-from-instance")
	keys := filepath.Join(t.TempDir(), "keys")
	const prefix = "builds/ec2-cert"
	tpl := func(install bool) string {
		p := provision
		if install {
			p = append(append([]string(nil), provision...), "mkdir -p "+certDir, "cp "+staged+" "+certDir+"/cert-ec2.pem")
		}
		return e.template(tmpl{
			NoLocalEmulator: true,
			Prefix:          prefix,
			Source:          fmt.Sprintf("  bundle_source = %q\n  x509_generated_dir = %q\n", img, keys),
			Provision:       p,
		})
	}

	// Without the tools on the instance.
	baseline := e.snapshot(t)
	e.proxy.Reset()
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build"}, Template: tpl(false)})
	if res.ExitCode == 0 {
		t.Fatal("the build succeeded without an EC2 certificate")
	}
	for _, want := range []string{"ec2_cert_path", "cert-ec2.pem", "EC2 AMI tools"} {
		if !strings.Contains(res.Output(), want) {
			t.Errorf("the failure does not mention %q:\n%s", want, res.Output())
		}
	}
	if n := len(e.proxy.CallsFor("s3", "PutObject")); n != 0 {
		t.Errorf("%d objects were uploaded before the certificate was known", n)
	}
	if l := e.leaks(t, baseline); !l.Empty() {
		t.Errorf("the failed build left:\n%s", l)
	}
	if err := os.RemoveAll(keys); err != nil {
		t.Fatal(err)
	}

	// With them.
	res = e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl(true)})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	out, err := e.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e2eBucket), Key: aws.String(prefix + "/" + bundle.ManifestName("image"))})
	if err != nil {
		t.Fatalf("get the manifest: %v", err)
	}
	defer out.Body.Close()
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(out.Body); err != nil {
		t.Fatal(err)
	}
	m, err := bundle.ParseManifest(raw.Bytes())
	if err != nil {
		t.Fatalf("parse the manifest: %v", err)
	}
	userKey, err := bundle.LoadPrivateKey(filepath.Join(keys, "x509-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	forEC2, err := rsa.DecryptPKCS1v15(nil, ec2Key, m.EC2EncryptedKey)
	if err != nil {
		t.Fatalf("the bundle key is not encrypted for the certificate on the instance: %v", err)
	}
	forUser, err := rsa.DecryptPKCS1v15(nil, userKey, m.UserEncryptedKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(forEC2, forUser) {
		t.Error("the key encrypted for EC2 differs from the user's")
	}
}

// selfSigned makes an RSA key and a self-signed certificate (PEM).
func selfSigned(t *testing.T, cn string) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
