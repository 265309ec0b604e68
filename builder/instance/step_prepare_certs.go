package instance

import (
	"context"
	"crypto/rsa"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"golang.org/x/sync/errgroup"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// stepPrepareCerts loads or generates the X.509 material the bundle is
// made with: the user's certificate and key (x509_cert_path and
// x509_key_path, or a generated pair written to x509_generated_dir), and
// EC2's certificate (ec2_cert_path, or a generated stand-in with
// local_emulator and a loopback EC2 endpoint; otherwise stepFetchEC2Cert
// reads it on the instance). It runs on the machine running Packer only;
// nothing of it goes to the build instance.
//
// State used: amibuild.StateSession, amibuild.StateUI.
// State produced: stateCerts.
type stepPrepareCerts struct {
	// UserCertPEM and UserKey are the user's loaded certificate and key;
	// nil to generate them.
	UserCertPEM []byte
	UserKey     *rsa.PrivateKey
	// GeneratedDir is where generated user files are written; "" discards
	// them.
	GeneratedDir string
	// EC2CertPath is Amazon's EC2 certificate; "" reads it on the instance,
	// or makes a stand-in with LocalEmulator.
	EC2CertPath string
	// LocalEmulator is the local_emulator option, checked again here
	// against the session's EC2 endpoint.
	LocalEmulator bool
}

// generatedValidity is how long a generated certificate is valid: long
// enough to unbundle the image years later.
const generatedValidity = 10 * 365 * 24 * time.Hour

// Run implements multistep.Step. The keys it generates (the user's, and
// the EC2 stand-in's) are generated at the same time: an RSA key takes
// 0.1–0.3 s of one core.
func (s *stepPrepareCerts) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	u := amibuild.UI(state)
	c := &certs{}
	if s.UserKey != nil {
		cert, err := bundle.ParseCertificatePEM(s.UserCertPEM)
		if err != nil {
			return amibuild.Halt(state, u, fmt.Errorf("x509_cert_path: %w", err))
		}
		c.UserCert, c.UserKey = cert, s.UserKey
	}
	if s.EC2CertPath != "" {
		cert, err := bundle.LoadCertificate(s.EC2CertPath)
		if err != nil {
			return amibuild.Halt(state, u, fmt.Errorf("ec2_cert_path: %w", err))
		}
		c.EC2Cert = cert
	}
	// Without ec2_cert_path the certificate comes from Amazon's EC2 AMI
	// tools on the instance once it is provisioned (stepFetchEC2Cert); only
	// with local_emulator and a loopback EC2 endpoint is a stand-in made.
	standIn := false
	if c.EC2Cert == nil && s.LocalEmulator {
		sess, ok := amibuild.StateSession.Get(state)
		standIn = ok && sess != nil && awscfg.LoopbackEndpoint(sess.Endpoints().EC2)
	}

	var g errgroup.Group
	if c.UserKey == nil {
		u.Say("Generating an X.509 key and self-signed certificate for the bundle...")
		g.Go(func() (err error) {
			c.UserCert, c.UserKey, err = generateCert("packer-plugin-ami bundle", generatedValidity)
			c.Generated = err == nil
			return err
		})
	}
	if standIn {
		u.Say("Generating a stand-in EC2 certificate for the local emulator (ec2_cert_path is not set)...")
		g.Go(func() (err error) {
			c.EC2Cert, _, err = generateCert("EC2 stand-in for an emulator", generatedValidity)
			c.EC2StandIn = err == nil
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return amibuild.Halt(state, u, err)
	}
	if c.Generated && s.GeneratedDir != "" {
		keyPath, certPath, err := writeCertFiles(s.GeneratedDir, c.UserCert, c.UserKey)
		if err != nil {
			return amibuild.Halt(state, u, fmt.Errorf("x509_generated_dir: %w", err))
		}
		c.GeneratedDir = s.GeneratedDir
		u.Sayf("Wrote the bundle's key to %s and certificate to %s; keep them to unbundle the image later", keyPath, certPath)
	}
	stateCerts.Put(state, c)
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step. Written key files are kept: the user
// asked for them, and the bundle may already exist.
func (s *stepPrepareCerts) Cleanup(multistep.StateBag) {}
