package distribute

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// preflightPublish runs, before any change, the checks of the target
// accounts (clients, regions, names) and of the parameters and launch
// templates (the SSM clients are there, the templates exist).
func (d *distribution) preflightPublish(ctx context.Context, pre *PreflightOutput) error {
	in := d.in
	if len(in.Accounts) > 0 {
		src := d.copyIn.Source
		if src == nil {
			img, err := describeImage(ctx, d.clients(in.Copy.SourceRegion), in.Copy.SourceImageID)
			if err != nil {
				return fmt.Errorf("accounts: describe the source %s in %s: %w", in.Copy.SourceImageID, in.Copy.SourceRegion, err)
			}
			src = &img
			d.copyIn.Source = src
		}
		if src.State != types.ImageStateAvailable {
			return fmt.Errorf("accounts: %w", &ImageStateError{ImageID: in.Copy.SourceImageID, Region: in.Copy.SourceRegion, State: string(src.State), Reason: "the source must be available"})
		}
		// In the accounts, each region's copy has the name the output's AMI
		// has there.
		names := map[string]string{}
		for _, im := range d.inputs() {
			names[im.Region] = aws.ToString(src.Name)
			if im.Image != nil && aws.ToString(im.Image.Name) != "" {
				names[im.Region] = aws.ToString(im.Image.Name)
			}
		}
		if pre != nil {
			for _, c := range pre.Copies {
				names[c.Region] = c.Name
			}
		}
		if err := d.prepareAccounts(ctx, *src, names, in.outputRegions()); err != nil {
			return fmt.Errorf("pre-flight: %w", err)
		}
	}
	var errs []error
	if _, err := PreflightPublish(ctx, d.clients, d.publishInput(in.Parameters, in.LaunchTemplates, placeholderImages(in.outputRegions()), ""), d.setInner); err != nil {
		errs = append(errs, err)
	}
	for _, a := range d.accounts {
		pin := d.publishInput(a.t.Parameters, a.t.LaunchTemplates, placeholderImages(a.t.regions(in.outputRegions())), a.t.AccountID)
		if _, err := PreflightPublish(ctx, a.clients.EC2, pin, d.setInner, a.setSSM); err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", a.t.AccountID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pre-flight: %w", err)
	}
	return nil
}

func placeholderImages(regions []string) map[string]string {
	m := map[string]string{}
	for _, r := range regions {
		m[r] = "ami-00000000000000000"
	}
	return m
}

func (d *distribution) publishInput(params []Parameter, lts []LaunchTemplate, images map[string]string, account string) *PublishInput {
	return &PublishInput{Images: images, Parameters: params, LaunchTemplates: lts, RunID: d.copyIn.RunID, Account: account}
}

// publish writes the parameters and launch template versions of the
// caller's account, then of each target account. Each Publish undoes its
// own changes when it fails; what succeeded is in the distribution's
// ledger for the rollback.
func (d *distribution) publish(ctx context.Context, accountResults Results) error {
	run := func(clients ClientFunc, in *PublishInput, optFns ...func(*Options)) error {
		if len(in.Parameters) == 0 && len(in.LaunchTemplates) == 0 {
			return nil
		}
		out, err := Publish(ctx, clients, in, append([]func(*Options){d.setInner}, optFns...)...)
		if out != nil {
			d.out.Parameters = append(d.out.Parameters, out.Parameters...)
			d.out.LaunchTemplates = append(d.out.LaunchTemplates, out.LaunchTemplates...)
		}
		return err
	}
	if err := run(d.clients, d.publishInput(d.in.Parameters, d.in.LaunchTemplates, d.out.ImageIDs(), "")); err != nil {
		return err
	}
	for _, a := range d.accounts {
		images := map[string]string{}
		for _, r := range accountResults {
			if r.Account == a.t.AccountID && r.ImageID != "" && r.Status == StatusAvailable {
				images[r.Region] = r.ImageID
			}
		}
		if err := run(a.clients.EC2, d.publishInput(a.t.Parameters, a.t.LaunchTemplates, images, a.t.AccountID), a.setSSM); err != nil {
			return fmt.Errorf("account %s: %w", a.t.AccountID, err)
		}
	}
	return nil
}

// clientsOf returns the EC2 clients of the account of a Result.
func (d *distribution) clientsOf(account string) ClientFunc {
	for _, a := range d.accounts {
		if a.t.AccountID == account {
			return a.clients.EC2
		}
	}
	return d.clients
}

// MarkUndone updates the status of the parameters and launch template
// versions an undo put back: those whose ledger entries (their Resource)
// were recorded before the undo and are gone after it. A parameter the run
// created is then PublishDeleted, another PublishRestored; a launch
// template version PublishRemoved.
func MarkUndone(params []ParameterResult, lts []LaunchTemplateResult, before, after []ledger.Resource) {
	undone := func(r ledger.Resource) bool { return slices.Contains(before, r) && !slices.Contains(after, r) }
	for i := range params {
		p := &params[i]
		if p.Status == PublishWritten && undone(p.Resource()) {
			p.Status = PublishRestored
			if p.Created {
				p.Status = PublishDeleted
			}
		}
	}
	for i := range lts {
		lt := &lts[i]
		if lt.Status == PublishWritten && undone(lt.Resource()) {
			lt.Status, lt.Default = PublishRemoved, false
		}
	}
}
