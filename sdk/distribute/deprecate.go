package distribute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Deprecation says when AMIs become deprecated. The zero value deprecates
// nothing.
type Deprecation struct {
	// At is an absolute deprecation time. It must lie in the future.
	At time.Time `json:"at,omitzero"`
	// After is a deprecation delay from the start of the operation; used
	// when At is zero.
	After time.Duration `json:"after,omitempty"`
	// Optional turns a failure to set the deprecation time into a warning
	// on the region's Result instead of a failure of the region (useful
	// against endpoints that do not implement EnableImageDeprecation).
	Optional bool `json:"optional,omitempty"`
}

// Time returns the deprecation time relative to now, or the zero time when
// d deprecates nothing. The result is truncated to whole seconds.
func (d Deprecation) Time(now time.Time) time.Time {
	switch {
	case !d.At.IsZero():
		return d.At.UTC().Truncate(time.Second)
	case d.After > 0:
		return now.Add(d.After).UTC().Truncate(time.Second)
	}
	return time.Time{}
}

// Validate checks d against now without any AWS call.
func (d Deprecation) Validate(now time.Time) error {
	switch {
	case !d.At.IsZero() && d.After != 0:
		return errors.New("set either a deprecation time or a deprecation delay, not both")
	case d.After < 0:
		return fmt.Errorf("deprecation delay %s is negative", d.After)
	case !d.At.IsZero() && !d.At.After(now):
		return fmt.Errorf("deprecation time %s is not in the future", d.At.UTC().Format(time.RFC3339))
	}
	return nil
}

// DeprecateInput is the input of Deprecate.
type DeprecateInput struct {
	// ImageID is the AMI. Required.
	ImageID string
	// Region is used in messages only.
	Region string
	// At is the deprecation time. Required.
	At time.Time
}

// DeprecateOutput is the result of Deprecate.
type DeprecateOutput struct {
	// DeprecateAt is the time sent to EC2.
	DeprecateAt time.Time
}

// Deprecate sets an AMI's deprecation time with EnableImageDeprecation,
// retrying *.NotFound right after a copy.
func Deprecate(ctx context.Context, api DeprecateAPI, in *DeprecateInput, optFns ...func(*Options)) (*DeprecateOutput, error) {
	o := newOptions(optFns)
	if in == nil || in.ImageID == "" || in.At.IsZero() {
		return nil, errors.New("deprecate: ImageID and At are required")
	}
	at := in.At.UTC().Truncate(time.Second)
	err := o.retryNotFound(ctx, func() error {
		_, err := api.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{
			ImageId:     aws.String(in.ImageID),
			DeprecateAt: aws.Time(at),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("deprecate %s%s at %s: %w", in.ImageID, regionSuffix(in.Region), at.Format(time.RFC3339), err)
	}
	return &DeprecateOutput{DeprecateAt: at}, nil
}

// Protection asks for deregistration protection. The zero value asks for
// none.
type Protection struct {
	// Enabled turns deregistration protection on.
	Enabled bool `json:"enabled,omitempty"`
	// WithCooldown keeps the AMI protected for 24 hours after protection is
	// turned off.
	WithCooldown bool `json:"with_cooldown,omitempty"`
	// Optional turns a failure into a warning on the region's Result.
	Optional bool `json:"optional,omitempty"`
}

// ProtectInput is the input of Protect.
type ProtectInput struct {
	// ImageID is the AMI. Required.
	ImageID string
	// Region is used in messages only.
	Region string
	// WithCooldown: see Protection.WithCooldown.
	WithCooldown bool
}

// ProtectOutput is the result of Protect; it carries nothing yet.
type ProtectOutput struct{}

// Protect turns on deregistration protection for an AMI with
// EnableImageDeregistrationProtection.
func Protect(ctx context.Context, api ProtectAPI, in *ProtectInput, optFns ...func(*Options)) (*ProtectOutput, error) {
	if err := protect(ctx, api, in, optFns...); err != nil {
		return nil, err
	}
	return &ProtectOutput{}, nil
}

func protect(ctx context.Context, api ProtectAPI, in *ProtectInput, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	if in == nil || in.ImageID == "" {
		return errors.New("protect: ImageID is required")
	}
	err := o.retryNotFound(ctx, func() error {
		_, err := api.EnableImageDeregistrationProtection(ctx, &ec2.EnableImageDeregistrationProtectionInput{
			ImageId:      aws.String(in.ImageID),
			WithCooldown: aws.Bool(in.WithCooldown),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("enable deregistration protection of %s%s: %w", in.ImageID, regionSuffix(in.Region), err)
	}
	return nil
}

// UnprotectInput is the input of Unprotect.
type UnprotectInput struct {
	// ImageID is the AMI. Required.
	ImageID string
	// Region is used in messages only.
	Region string
}

// Unprotect turns off deregistration protection for an AMI with
// DisableImageDeregistrationProtection, as the undo of Protect. An AMI
// that no longer exists (*.NotFound) needs no undo and is not an error.
// When protection was turned on with a cooldown, the AMI stays protected
// for the cooldown period all the same. No option changes its behaviour
// today; optFns is there for symmetry with Protect.
func Unprotect(ctx context.Context, api UnprotectAPI, in *UnprotectInput, optFns ...func(*Options)) (*UnprotectOutput, error) {
	if err := unprotect(ctx, api, in); err != nil {
		return nil, err
	}
	return &UnprotectOutput{}, nil
}

// UnprotectOutput is the result of Unprotect; it carries nothing yet.
type UnprotectOutput struct{}

func unprotect(ctx context.Context, api UnprotectAPI, in *UnprotectInput) error {
	if in == nil || in.ImageID == "" {
		return errors.New("unprotect: ImageID is required")
	}
	_, err := api.DisableImageDeregistrationProtection(ctx, &ec2.DisableImageDeregistrationProtectionInput{
		ImageId: aws.String(in.ImageID),
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("disable deregistration protection of %s%s: %w", in.ImageID, regionSuffix(in.Region), err)
	}
	return nil
}
