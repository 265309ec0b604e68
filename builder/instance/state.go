package instance

import (
	"crypto/rsa"
	"crypto/x509"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// stateKey is a typed state bag key of this builder, in the manner of
// amibuild.Key (whose fields other packages cannot set): Put and Get check
// the value's type, so no step asserts a type on a raw state value.
type stateKey[T any] struct{ name string }

// Put stores v under the key.
func (k stateKey[T]) Put(state multistep.StateBag, v T) { state.Put(k.name, v) }

// Get returns the value under the key and whether it is present with the
// right type.
func (k stateKey[T]) Get(state multistep.StateBag) (T, bool) {
	v, ok := state.GetOk(k.name)
	if !ok {
		var zero T
		return zero, false
	}
	t, ok := v.(T)
	return t, ok
}

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
	// stateBucketRegion is the region of s3_bucket, checked by
	// stepCheckBucket.
	stateBucketRegion = stateKey[string]{"instance_bucket_region"}
	// stateCerts is the X.509 material, from stepPrepareCerts.
	stateCerts = stateKey[*certs]{"instance_certs"}
	// stateBundle is the uploaded bundle, from stepBundleVolume.
	stateBundle = stateKey[*bundled]{"instance_bundle"}
	// stateImageLocation is the manifest location the AMI was registered
	// from, from stepRegisterImage.
	stateImageLocation = stateKey[string]{"instance_image_location"}
)
