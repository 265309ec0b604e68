package bundlestore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// CheckLocationInput names where a bundle is about to be uploaded.
type CheckLocationInput struct {
	// Bucket, Prefix and Name locate the bundle: its manifest is
	// "<prefix>/<name>.manifest.xml". Bucket and Name are required.
	Bucket string
	Prefix string
	Name   string
	// Region is the bucket's region, for messages.
	Region string
	// ReplaceName, when set, is the name of the caller's images that the
	// caller deregisters before it registers its new image (as a build
	// with force_deregister does). A manifest already at the location is
	// then accepted when an image of that name owned by the account
	// ("self") was registered from it: that image goes, and its bundle may
	// be replaced with it. Empty accepts no existing manifest.
	ReplaceName string
}

// CheckLocationOutput is the result of CheckLocation: a location a bundle
// may be uploaded to.
type CheckLocationOutput struct {
	// Exists reports whether a manifest was already at the location.
	Exists bool
	// ReplacedImageID is the image named ReplaceName that was registered
	// from the existing manifest, when Exists.
	ReplacedImageID string
}

// BundleExistsError reports a bundle manifest at the location an upload
// would write to. Uploading there would overwrite the parts and the
// manifest of that bundle and so break every image registered from it.
// Test for it with errors.As.
type BundleExistsError struct {
	// Location is the existing bundle.
	Location Location
	// Region is the bucket's region, when known.
	Region string
	// ReplaceName and Replaced are CheckLocationInput.ReplaceName and the
	// images of that name that were found, none of them registered from
	// this manifest.
	ReplaceName string
	Replaced    []string
	// AtUpload reports that S3 refused to store an upload's manifest
	// (412 Precondition Failed on If-None-Match "*") because another
	// manifest was there, stored after any CheckLocation. It was kept;
	// parts the upload sent under the same names may have replaced that
	// bundle's parts. Err is S3's answer.
	AtUpload bool
	Err      error
}

// Error names the existing bundle and why uploading there is refused.
func (e *BundleExistsError) Error() string {
	if e.AtUpload {
		return fmt.Sprintf("a bundle already exists at %s%s: S3 refused to replace its manifest (412 Precondition Failed); "+
			"that manifest was kept, but parts this upload sent under the same names may have replaced that bundle's parts: %v",
			e.Location, inRegion(e.Region), e.Err)
	}
	s := fmt.Sprintf("a bundle already exists at %s%s; uploading there would overwrite its manifest and parts and break any image registered from it",
		e.Location, inRegion(e.Region))
	switch {
	case e.ReplaceName == "":
	case len(e.Replaced) == 0:
		s += fmt.Sprintf("; no image named %q owned by this account is being replaced", e.ReplaceName)
	default:
		s += fmt.Sprintf("; it is not the bundle of %s, the image named %q being replaced", strings.Join(e.Replaced, ", "), e.ReplaceName)
	}
	return s
}

// Unwrap returns Err, S3's answer when AtUpload.
func (e *BundleExistsError) Unwrap() error { return e.Err }

// CheckLocation checks, before anything is uploaded, that a bundle may be
// uploaded to in's location: no manifest is there yet (one HeadObject of
// the manifest's key), or the manifest there is the bundle of an image
// named in.ReplaceName, owned by the account, that the caller is about to
// deregister (one DescribeImages, only when a manifest exists and
// ReplaceName is set). An existing manifest is a *BundleExistsError. Parts
// without a manifest, as a failed upload can leave, do not count: no image
// can be registered from them. ec2api should be a client for the images'
// region and s3api one for the bucket's region; ec2api may be nil when
// ReplaceName is empty.
//
// Without s3:ListBucket on the bucket, S3 answers a HeadObject of a
// missing key with 403 rather than 404; CheckLocation cannot then tell a
// free location from an unreadable one and returns an error saying so.
func CheckLocation(ctx context.Context, ec2api DescribeImagesAPI, s3api HeadObjectAPI, in *CheckLocationInput, optFns ...func(*Options)) (*CheckLocationOutput, error) {
	if in == nil || in.Bucket == "" || in.Name == "" {
		return nil, errors.New("bundlestore: check location: bucket and bundle name are required")
	}
	if err := checkFilename(in.Name); err != nil {
		return nil, err
	}
	if in.ReplaceName != "" && ec2api == nil {
		return nil, errors.New("bundlestore: check location: an EC2 client is required to look up the images named ReplaceName")
	}
	opts := resolveOptions(optFns)
	loc := Location{Bucket: in.Bucket, Prefix: in.Prefix, Name: in.Name}
	key := loc.ManifestKey()

	_, err := s3api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(in.Bucket), Key: aws.String(key)})
	switch {
	case err == nil:
	case isNotFound(err):
		return &CheckLocationOutput{}, nil
	case isForbidden(err):
		return nil, fmt.Errorf("bundlestore: check whether a bundle exists at %s%s: access denied; "+
			"this needs s3:GetObject on the bucket's objects and s3:ListBucket on the bucket (without it S3 denies access to a key that does not exist): %w",
			loc, inRegion(in.Region), err)
	default:
		return nil, fmt.Errorf("bundlestore: check whether a bundle exists at %s%s: %w", loc, inRegion(in.Region), err)
	}

	exists := &BundleExistsError{Location: loc, Region: in.Region, ReplaceName: in.ReplaceName}
	if in.ReplaceName == "" {
		return nil, exists
	}
	found, err := image.FindByName(ctx, ec2api, &image.FindByNameInput{Name: in.ReplaceName})
	if err != nil {
		return nil, fmt.Errorf("bundlestore: a bundle already exists at %s; look up the images named %q it may belong to: %w", loc, in.ReplaceName, err)
	}
	for _, img := range found.Images {
		id := aws.ToString(img.ImageId)
		if sameManifest(aws.ToString(img.ImageLocation), loc) {
			opts.logf("the bundle at %s is that of %s (%q), which is being replaced", loc, id, in.ReplaceName)
			return &CheckLocationOutput{Exists: true, ReplacedImageID: id}, nil
		}
		exists.Replaced = append(exists.Replaced, id)
	}
	return nil, exists
}

// sameManifest reports whether the image location an image reports names
// the manifest of loc.
func sameManifest(imageLocation string, loc Location) bool {
	got, err := ParseImageLocation(imageLocation)
	return err == nil && got.Bucket == loc.Bucket && got.ManifestKey() == loc.ManifestKey()
}
