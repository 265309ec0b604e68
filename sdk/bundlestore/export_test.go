//go:build unix

package bundlestore

import (
	"crypto/rsa"
	"crypto/x509"
	"log"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// EmulatorClients returns clients for the package's shared test emulator.
func EmulatorClients(region string) (*s3.Client, *ec2.Client) {
	m, err := startSharedMoto()
	if err != nil {
		log.Fatal(err)
	}
	e, s := awstest.Clients(m.Endpoint, region)
	return s, e
}

// StandInKeys returns a test key and certificate standing in for the
// user's and EC2's.
func StandInKeys() (*rsa.PrivateKey, *x509.Certificate, *x509.Certificate) {
	if err := makeKeys(); err != nil {
		log.Fatal(err)
	}
	return userKey, userCert, userCert
}
