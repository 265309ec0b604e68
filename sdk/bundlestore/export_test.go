//go:build unix

package bundlestore

import (
	"crypto/rsa"
	"crypto/x509"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// EmulatorClients returns clients for the package's shared test emulator.
func EmulatorClients(region string) (*s3.Client, *ec2.Client, error) {
	m, err := startSharedMoto()
	if err != nil {
		return nil, nil, err
	}
	e, s := awstest.Clients(m.Endpoint, region)
	return s, e, nil
}

// StandInKeys returns a test key and certificate standing in for the
// user's and EC2's.
func StandInKeys() (*rsa.PrivateKey, *x509.Certificate, *x509.Certificate, error) {
	if err := makeKeys(); err != nil {
		return nil, nil, nil, err
	}
	return userKey, userCert, userCert, nil
}
