package instance

import (
	"crypto/rsa"
	"crypto/x509"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// certs are the X.509 material a bundle is made with. None of it ever
// leaves the machine running Packer.
type certs struct {
	UserCert *x509.Certificate
	UserKey  *rsa.PrivateKey
	EC2Cert  *x509.Certificate
	// Generated reports whether UserCert and UserKey were made for this
	// build; GeneratedDir is where they were written ("" when discarded).
	Generated    bool
	GeneratedDir string
	// EC2StandIn reports whether EC2Cert is a generated stand-in.
	EC2StandIn bool
}

// bundled describes the uploaded bundle.
type bundled struct {
	Location bundlestore.Location
	Manifest *bundle.Manifest
}

// State keys of this builder; the shared ones are in package amibuild.
var (
	// stateComm is the communicator communicator.StepConnect connected
	// ("communicator", fixed by Packer).
	stateComm = amibuild.NewKey[packersdk.Communicator]("communicator")
	// stateBucketRegion is the region of s3_bucket, checked by
	// stepCheckBucket.
	stateBucketRegion = amibuild.NewKey[string]("instance_bucket_region")
	// stateCerts is the X.509 material, from stepPrepareCerts.
	stateCerts = amibuild.NewKey[*certs]("instance_certs")
	// stateReplaceBundle is set by stepCheckBundleLocation when the
	// manifest at the bundle location is that of the AMI force_deregister
	// replaces: stepBundleVolume's upload may then replace it.
	stateReplaceBundle = amibuild.NewKey[bool]("instance_replace_bundle")
	// stateBundle is the uploaded bundle, from stepBundleVolume.
	stateBundle = amibuild.NewKey[*bundled]("instance_bundle")
	// stateImageLocation is the manifest location the AMI was registered
	// from, from stepRegisterImage.
	stateImageLocation = amibuild.NewKey[string]("instance_image_location")
)
