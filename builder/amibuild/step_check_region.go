package amibuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
)

// StepCheckRegion checks, before anything is created, that the build region
// exists and is enabled and, unless SkipCredentialValidation is set, that
// the credentials work (STS GetCallerIdentity).
//
// State used: StateSession, StateUI.
// State produced: StateAccountID (unless credential validation is skipped).
type StepCheckRegion struct {
	// Region is the build region.
	Region string
	// SkipCredentialValidation skips the STS call.
	SkipCredentialValidation bool
	// CopyRegions are the regions the AMI is copied to (ami_regions),
	// checked like the build region.
	CopyRegions []string
	// SkipRegionValidation skips the region checks
	// (skip_region_validation).
	SkipRegionValidation bool
}

// Run implements multistep.Step.
func (s *StepCheckRegion) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	u := UI(state)
	sess, err := Session(state)
	if err != nil {
		return Halt(state, u, err)
	}
	if !s.SkipCredentialValidation {
		account, err := sess.AccountID(ctx)
		if err != nil {
			return Halt(state, u, fmt.Errorf("check AWS credentials (set skip_credential_validation to skip): %w", err))
		}
		StateAccountID.Put(state, account)
		u.Sayf("Using AWS account %s in %s", account, s.Region)
	}
	if s.SkipRegionValidation {
		return multistep.ActionContinue
	}
	// One call checks the build region and every copy region.
	_, err = awscfg.CheckRegion(ctx, sess.EC2(s.Region), &awscfg.CheckRegionInput{Region: s.Region, Also: s.CopyRegions})
	var notEnabled *awscfg.RegionError
	switch {
	case errors.As(err, &notEnabled) && notEnabled.Region != s.Region:
		return Halt(state, u, fmt.Errorf("ami_regions: %w (set skip_region_validation to skip this check)", err))
	case errors.As(err, &notEnabled):
		return Halt(state, u, fmt.Errorf("region: %w", err))
	case err != nil:
		return Halt(state, u, fmt.Errorf("region: cannot reach EC2 in %q; check that the region exists and the endpoint is right: %w", s.Region, err))
	}
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the step creates nothing.
func (s *StepCheckRegion) Cleanup(multistep.StateBag) {}
