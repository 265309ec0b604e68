package bundlestore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/ec2tag"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/lost"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// RegisterInput describes an instance-store image to register from a
// bundle in S3.
type RegisterInput struct {
	// ImageLocation is the manifest's location,
	// "<bucket>/<prefix>/<name>.manifest.xml" (UploadOutput.ImageLocation,
	// Location.ImageLocation). A leading "s3://" is removed. Required.
	ImageLocation string
	// Region is the region the image is registered in, which must be the
	// bucket's; used in messages and ledger records (the client decides
	// where the request goes).
	Region string
	// Name is the AMI name: 3 to 128 letters, digits and ()[] ./-'@_.
	// Required.
	Name string
	// Description is optional.
	Description string
	// Manifest, when set, supplies Architecture, KernelID and RamdiskID
	// where those are empty.
	Manifest *bundle.Manifest
	// Architecture is "i386", "x86_64" or "arm64". Required unless
	// Manifest gives it.
	Architecture string
	// VirtualizationType is "hvm" or "paravirtual". Empty means "hvm".
	VirtualizationType string
	// RootDeviceName is the root device, e.g. "/dev/sda1". Optional.
	RootDeviceName string
	// BlockDeviceMappings are optional (e.g. ephemeral volumes).
	BlockDeviceMappings []types.BlockDeviceMapping
	// KernelID and RamdiskID are optional aki-/ari- ids (paravirtual).
	KernelID  string
	RamdiskID string
	// ENASupport, when set, enables or disables ENA networking.
	ENASupport *bool
	// SriovNetSupport enables enhanced networking with the Intel 82599 VF
	// interface (SriovNetSupport "simple").
	SriovNetSupport bool
	// BootMode is "legacy-bios", "uefi" or "uefi-preferred"; empty leaves
	// EC2's default.
	BootMode string
	// TPMSupport is "v2.0" to enable NitroTPM (needs BootMode "uefi"); empty
	// leaves it off.
	TPMSupport string
	// IMDSSupport is "v2.0" to make instances require IMDSv2; empty leaves
	// EC2's default.
	IMDSSupport string
	// Tags are put on the image at registration.
	Tags map[string]string
}

// RegisterOutput is the result of Register: the registered image.
type RegisterOutput struct {
	ImageID string
	// ImageLocation is the manifest location sent to EC2.
	ImageLocation string
}

// Register registers an instance-store image from a bundle manifest in S3
// (EC2 RegisterImage with ImageLocation) and returns its id. The client
// must be for the bucket's region. With Options.Ledger set, the image is
// recorded with deregistering it as the undo.
//
// A RegisterImage call may take effect although its answer is lost; the
// SDK then retries it, and EC2 answers InvalidAMIName.Duplicate (or, in
// services that allow duplicate names, registers a second image). An image
// owned by the account with exactly Name, registered from this
// ImageLocation and created no earlier than the call started (less
// registerClockSkew) is taken as made by this call (services that do not
// report ImageLocation, such as emulators, are trusted on the name and time):
// an older image of that name and location is never adopted or removed. When the
// call fails, such an image is used as the call's result, or, when ctx is
// done, deregistered; when the call succeeded after retries, any other such
// image is a duplicate and is deregistered.
func Register(ctx context.Context, api RegisterAPI, in *RegisterInput, optFns ...func(*Options)) (*RegisterOutput, error) {
	if in == nil {
		return nil, errors.New("bundlestore: register: no input")
	}
	opts := resolveOptions(optFns)
	req, err := registerRequest(in)
	if err != nil {
		return nil, fmt.Errorf("bundlestore: register %q%s: %w", in.Name, inRegion(in.Region), err)
	}
	loc := aws.ToString(req.ImageLocation)
	since := time.Now().Add(-registerClockSkew)
	var id string
	made := opts.madeImages(api, in.Name, loc, since, in.Region)
	res, err := api.RegisterImage(ctx, req)
	switch {
	case err != nil:
		err = fmt.Errorf("bundlestore: register %q from %s%s: %w", in.Name, loc, inRegion(in.Region), err)
		if id, err = made.Recover(ctx, err); err != nil {
			return nil, err
		}
	default:
		id = aws.ToString(res.ImageId)
		if id == "" {
			return nil, fmt.Errorf("bundlestore: register %q%s: no image id in the response", in.Name, inRegion(in.Region))
		}
		if lost.Retried(res.ResultMetadata) {
			// An attempt whose answer was lost may have registered one too.
			if err := made.RemoveDuplicates(ctx, id); err != nil {
				return nil, fmt.Errorf("bundlestore: register %q%s: remove duplicates made by retries: %w", in.Name, inRegion(in.Region), err)
			}
		}
	}
	opts.record(api, id, in.Region)
	opts.logf("registered %s (%q) from %s", id, in.Name, aws.ToString(req.ImageLocation))
	return &RegisterOutput{ImageID: id, ImageLocation: aws.ToString(req.ImageLocation)}, nil
}

// record puts the image in o.Ledger, if set, with deregistering it as the
// undo.
func (o *Options) record(api DeregisterImageAPI, id, region string) {
	if o.Ledger == nil {
		return
	}
	o.Ledger.Record(ledger.Resource{Kind: ledger.KindImage, ID: id, Region: region}, func(ctx context.Context) error {
		return deregisterImage(ctx, api, id)
	})
}

func deregisterImage(ctx context.Context, api DeregisterImageAPI, id string) error {
	_, err := api.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)})
	if awserr.Code(err) == "InvalidAMIID.NotFound" || awserr.Code(err) == "InvalidAMIID.Unavailable" {
		return nil
	}
	return err
}

// madeImages tells the images a RegisterImage call made from older ones,
// and says how to remove and record them: an image owned by the account
// named exactly name, registered from location (or not reporting one) and
// created no earlier than since. One that cannot be deregistered goes to
// o.Ledger, if set.
func (o *Options) madeImages(api RegisterAPI, name, location string, since time.Time, region string) lost.Made {
	return lost.Made{
		Find: func(ctx context.Context) ([]string, error) { return registeredFrom(ctx, api, name, location, since) },
		Remove: func(ctx context.Context, id string) error {
			o.logf("image %s%s was registered by a call whose answer was lost; deregistering it", id, inRegion(region))
			if err := deregisterImage(ctx, api, id); err != nil {
				o.record(api, id, region)
				return fmt.Errorf("bundlestore: image %s was registered by a call whose answer was lost and could not be deregistered: %w", id, err)
			}
			return nil
		},
		Record: func(id string) { o.record(api, id, region) },
		Adopted: func(id string) {
			o.logf("the answer to registering %q was lost; using %s, which the call registered", name, id)
		},
		LookFailed: func(err error) error {
			return fmt.Errorf("look for an image the failed call may have registered; deregister it by hand if it exists: %w", err)
		},
		RemovedAll: func(callErr error, id string) error {
			return fmt.Errorf("%w (the image %s it registered anyway was deregistered)", callErr, id)
		},
	}
}

// registerClockSkew is how far EC2's clock may be behind this machine's
// when telling an image a RegisterImage call made from an older one.
const registerClockSkew = 2 * time.Minute

// registeredFrom returns the IDs of the images owned by the account named
// exactly name whose ImageLocation is location (or not reported) and whose
// creation time is known and not before since, oldest first.
func registeredFrom(ctx context.Context, api DescribeImagesAPI, name, location string, since time.Time) ([]string, error) {
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:            []string{"self"},
		Filters:           []types.Filter{{Name: aws.String("name"), Values: []string{name}}},
		IncludeDeprecated: aws.Bool(true),
	})
	if awserr.Code(err) == "InvalidAMIID.NotFound" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	imgs := slices.DeleteFunc(out.Images, func(img types.Image) bool {
		l := aws.ToString(img.ImageLocation)
		if aws.ToString(img.Name) != name || img.State == types.ImageStateDeregistered || l != "" && l != location {
			return true
		}
		created, err := time.Parse(time.RFC3339, aws.ToString(img.CreationDate))
		return err != nil || created.Before(since)
	})
	slices.SortFunc(imgs, func(a, b types.Image) int {
		return strings.Compare(aws.ToString(a.CreationDate), aws.ToString(b.CreationDate))
	})
	ids := make([]string, 0, len(imgs))
	for _, img := range imgs {
		ids = append(ids, aws.ToString(img.ImageId))
	}
	return ids, nil
}

// registerRequest validates in and builds the RegisterImage request.
func registerRequest(in *RegisterInput) (*ec2.RegisterImageInput, error) {
	loc, err := ParseImageLocation(in.ImageLocation)
	if err != nil {
		return nil, err
	}
	if err := ValidateImageName(in.Name); err != nil {
		return nil, err
	}
	arch, kernel, ramdisk := in.Architecture, in.KernelID, in.RamdiskID
	if m := in.Manifest; m != nil {
		arch = cmp.Or(arch, m.Architecture)
		kernel = cmp.Or(kernel, m.KernelID)
		ramdisk = cmp.Or(ramdisk, m.RamdiskID)
	}
	switch arch {
	case bundle.ArchI386, bundle.ArchX86_64, bundle.ArchARM64:
	case "":
		return nil, errors.New("architecture is required (i386, x86_64 or arm64)")
	default:
		return nil, fmt.Errorf("architecture %q is not i386, x86_64 or arm64", arch)
	}
	virt := cmp.Or(in.VirtualizationType, "hvm")
	if virt != "hvm" && virt != "paravirtual" {
		return nil, fmt.Errorf("virtualization type %q is not hvm or paravirtual", virt)
	}
	switch types.BootModeValues(in.BootMode) {
	case "", types.BootModeValuesLegacyBios, types.BootModeValuesUefi, types.BootModeValuesUefiPreferred:
	default:
		return nil, fmt.Errorf("boot mode %q is not legacy-bios, uefi or uefi-preferred", in.BootMode)
	}
	switch in.TPMSupport {
	case "":
	case string(types.TpmSupportValuesV20):
		if in.BootMode != string(types.BootModeValuesUefi) {
			return nil, fmt.Errorf("TPM support %s needs boot mode uefi, not %q", in.TPMSupport, in.BootMode)
		}
	default:
		return nil, fmt.Errorf("TPM support %q is not v2.0", in.TPMSupport)
	}
	if in.IMDSSupport != "" && in.IMDSSupport != string(types.ImdsSupportValuesV20) {
		return nil, fmt.Errorf("IMDS support %q is not v2.0", in.IMDSSupport)
	}

	req := &ec2.RegisterImageInput{
		Name:                aws.String(in.Name),
		ImageLocation:       aws.String(loc.ImageLocation()),
		Architecture:        types.ArchitectureValues(arch),
		VirtualizationType:  aws.String(virt),
		BlockDeviceMappings: in.BlockDeviceMappings,
		EnaSupport:          in.ENASupport,
		BootMode:            types.BootModeValues(in.BootMode),
		TpmSupport:          types.TpmSupportValues(in.TPMSupport),
		ImdsSupport:         types.ImdsSupportValues(in.IMDSSupport),
	}
	if in.Description != "" {
		req.Description = aws.String(in.Description)
	}
	if in.RootDeviceName != "" {
		req.RootDeviceName = aws.String(in.RootDeviceName)
	}
	if kernel != "" {
		req.KernelId = aws.String(kernel)
	}
	if ramdisk != "" {
		req.RamdiskId = aws.String(ramdisk)
	}
	if in.SriovNetSupport {
		req.SriovNetSupport = aws.String("simple")
	}
	req.TagSpecifications = ec2tag.Spec(types.ResourceTypeImage, in.Tags)
	return req, nil
}

// ValidateImageName checks an AMI name against EC2's rules: 3 to 128
// characters, each a letter, digit, space or one of ()[]./-'@_.
func ValidateImageName(name string) error {
	if n := len(name); n < 3 || n > 128 {
		return fmt.Errorf("image name %q must be 3 to 128 characters long", name)
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ' ', c == '(', c == ')', c == '[', c == ']', c == '.', c == '/', c == '-', c == '\'', c == '@', c == '_':
		default:
			return fmt.Errorf("image name %q contains %q; allowed are letters, digits, spaces and ()[]./-'@_", name, c)
		}
	}
	return nil
}

// DeregisterInput names an instance-store image to deregister.
type DeregisterInput struct {
	// ImageID is the image to deregister. Required.
	ImageID string
	// Region is the image's region, for messages.
	Region string
	// KeepBundle leaves the bundle in S3. By default it is deleted after
	// the image is deregistered.
	KeepBundle bool
	// ImageLocation, when set, is the bundle's manifest location to delete,
	// instead of the ImageLocation EC2 reports for the image. When set, an
	// image that no longer exists is not an error: its bundle is still
	// deleted.
	ImageLocation string
}

// DeregisterOutput is the result of Deregister: what it removed.
type DeregisterOutput struct {
	// Deregistered reports whether the image was deregistered (false when
	// it no longer existed).
	Deregistered bool
	// ImageLocation is the bundle's manifest location.
	ImageLocation string
	// Bundle describes the deleted bundle; nil with KeepBundle.
	Bundle *DeleteOutput
}

// Deregister deregisters an instance-store image and deletes its bundle:
// it reads the image's ImageLocation (DescribeImages), checks that it names
// a bundle manifest, deregisters the image, then deletes the manifest and
// the parts it lists (by prefix and name when the manifest is gone, see
// Delete). ec2api must be a client for the image's region and s3api one
// that can reach the bucket; s3api may be nil with KeepBundle.
func Deregister(ctx context.Context, ec2api DeregisterAPI, s3api DeleteAPI, in *DeregisterInput, optFns ...func(*Options)) (*DeregisterOutput, error) {
	if in == nil || in.ImageID == "" {
		return nil, errors.New("bundlestore: deregister: image id is required")
	}
	if !in.KeepBundle && s3api == nil {
		return nil, errors.New("bundlestore: deregister: an S3 client is required to delete the bundle")
	}
	opts := resolveOptions(optFns)
	where := in.ImageID + inRegion(in.Region)

	exists := true
	location := in.ImageLocation
	res, err := ec2api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{in.ImageID}})
	switch {
	case err == nil && len(res.Images) > 0:
		img := res.Images[0]
		if location == "" {
			if img.RootDeviceType == types.DeviceTypeEbs {
				return nil, fmt.Errorf("bundlestore: deregister %s: it is EBS-backed, not an instance-store image with a bundle", where)
			}
			location = aws.ToString(img.ImageLocation)
		}
	case err == nil || awserr.Code(err) == "InvalidAMIID.NotFound" || awserr.Code(err) == "InvalidAMIID.Unavailable":
		if in.ImageLocation == "" {
			return nil, fmt.Errorf("bundlestore: deregister %s: image not found", where)
		}
		exists = false
	default:
		return nil, fmt.Errorf("bundlestore: deregister %s: describe: %w", where, err)
	}

	var loc Location
	if !in.KeepBundle {
		if loc, err = ParseImageLocation(location); err != nil {
			return nil, fmt.Errorf("bundlestore: deregister %s: cannot tell where its bundle is: %w", where, err)
		}
	}
	out := &DeregisterOutput{ImageLocation: location}
	if exists {
		_, err := ec2api.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(in.ImageID)})
		if err != nil && awserr.Code(err) != "InvalidAMIID.NotFound" && awserr.Code(err) != "InvalidAMIID.Unavailable" {
			return nil, fmt.Errorf("bundlestore: deregister %s: %w", where, err)
		}
		out.Deregistered = err == nil
		if opts.Ledger != nil {
			opts.Ledger.Forget(ledger.KindImage, in.ImageID)
		}
		opts.logf("deregistered %s", where)
	}
	if in.KeepBundle {
		return out, nil
	}
	del, err := Delete(ctx, s3api, &DeleteInput{Bucket: loc.Bucket, Prefix: loc.Prefix, Name: loc.Name, Region: in.Region}, optFns...)
	out.Bundle = del
	if err != nil {
		return out, fmt.Errorf("bundlestore: deregister %s: delete its bundle: %w", where, err)
	}
	return out, nil
}
