package ebs

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// stepModifyImage sets the AMI attributes CreateImage cannot set: IMDS
// support (imds_support = "v2.0") and product codes (ami_product_codes).
// ENA and SR-IOV support is set on the instance
// before the image is taken (amibuild.StepModifyInstance). It does nothing
// when no such attribute is configured; stepCreateImage's Cleanup removes
// the AMI if a later step fails.
//
// State used: StateSession, StateUI, StateImageID.
// State produced: none.
type stepModifyImage struct {
	Region       string
	IMDSSupport  string
	ProductCodes []string
}

// Run implements multistep.Step.
func (s *stepModifyImage) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if s.IMDSSupport == "" && len(s.ProductCodes) == 0 {
		return multistep.ActionContinue
	}
	ui := amibuild.UI(state)
	api, err := amibuild.EC2Client(state, s.Region)
	if err != nil {
		return amibuild.Halt(state, ui, err)
	}
	id, ok := amibuild.StateImageID.Get(state)
	if !ok || id == "" {
		return amibuild.Halt(state, ui, fmt.Errorf("internal error: no AMI in the build state"))
	}
	if s.IMDSSupport != "" {
		ui.Sayf("Setting IMDS support of %s to %s...", id, s.IMDSSupport)
		if _, err := image.SetIMDSSupport(ctx, api, &image.SetIMDSSupportInput{ImageID: id, Value: s.IMDSSupport, Region: s.Region}); err != nil {
			return amibuild.Halt(state, ui, fmt.Errorf("imds_support: %w", err))
		}
	}
	if len(s.ProductCodes) > 0 {
		ui.Sayf("Adding product codes to %s...", id)
		if _, err := image.SetProductCodes(ctx, api, &image.SetProductCodesInput{ImageID: id, ProductCodes: s.ProductCodes, Region: s.Region}); err != nil {
			return amibuild.Halt(state, ui, fmt.Errorf("ami_product_codes: %w", err))
		}
	}
	return multistep.ActionContinue
}

// Cleanup implements multistep.Step; the attribute goes with the AMI.
func (s *stepModifyImage) Cleanup(multistep.StateBag) {}
