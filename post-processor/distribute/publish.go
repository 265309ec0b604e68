package distribute

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// planPublish adds the parameters, launch templates and target accounts to
// din, with every name rendered for its region and account.
func (r *run) planPublish(ctx context.Context, din *distribute.DistributeInput) error {
	c := r.c
	if len(c.SSMParameters) == 0 && len(c.LaunchTemplates) == 0 && len(c.TargetAccounts) == 0 {
		return nil
	}
	regions, names := r.outputNames(din)
	own := ""
	if mentionsAccount(c.SSMParameters) {
		var err error
		if own, err = r.sess.AccountID(ctx); err != nil {
			return fmt.Errorf("ssm_parameters: the account for {{ .Account }}: %w", err)
		}
	}
	var err error
	if din.Parameters, err = r.parameters("ssm_parameters", c.SSMParameters, regions, names, own); err != nil {
		return err
	}
	din.LaunchTemplates = launchTemplates(c.LaunchTemplates)
	for i, a := range c.TargetAccounts {
		field := fmt.Sprintf("target_accounts[%d]", i)
		t := distribute.TargetAccount{
			AccountID: a.AccountID, RoleARN: a.RoleARN, ExternalID: a.ExternalID.Reveal(), SessionName: a.SessionName,
			Regions: a.Regions, KMSKeyID: a.KMSKeyID, RegionKMSKeyIDs: a.RegionKMSKeyIDs,
			LaunchTemplates: launchTemplates(a.LaunchTemplates),
		}
		accountRegions := regions
		if len(a.Regions) > 0 {
			accountRegions = a.Regions
		}
		if t.Parameters, err = r.parameters(field+".ssm_parameters", a.SSMParameters, accountRegions, names, a.AccountID); err != nil {
			return err
		}
		din.Accounts = append(din.Accounts, t)
	}
	return nil
}

// outputNames returns the regions of the output (the inputs', then the
// targets') and the name of the AMI in each.
func (r *run) outputNames(din *distribute.DistributeInput) ([]string, map[string]string) {
	names := map[string]string{}
	var regions []string
	for _, im := range din.Inputs {
		regions = append(regions, im.Region)
		names[im.Region] = aws.ToString(r.sourceImg.Name)
	}
	for _, t := range din.Copy.Targets {
		if !slices.Contains(regions, t.Region) {
			regions = append(regions, t.Region)
		}
		names[t.Region] = cmp.Or(t.Name, aws.ToString(r.sourceImg.Name))
	}
	return regions, names
}

func mentionsAccount(ps []SSMParameterConfig) bool {
	for _, p := range ps {
		if strings.Contains(p.Name, ".Account") {
			return true
		}
		for k, v := range p.Tags {
			if strings.Contains(k+v, ".Account") {
				return true
			}
		}
	}
	return false
}

// parameters renders the parameters of one account: one per parameter
// block and region.
func (r *run) parameters(field string, ps []SSMParameterConfig, regions []string, names map[string]string, account string) ([]distribute.Parameter, error) {
	c := r.c
	var out []distribute.Parameter
	for i, p := range ps {
		f := fmt.Sprintf("%s[%d]", field, i)
		in := regions
		if len(p.Regions) > 0 {
			in = p.Regions
		}
		for _, region := range in {
			data := newTemplateData(r.sourceImg, r.source.Region, region)
			data.Name, data.Account = names[region], account
			name, err := c.render(p.Name, data)
			if err != nil {
				return nil, fmt.Errorf("%s.name for %s: %w", f, region, err)
			}
			tags, err := c.renderTags(f+".tags", p.Tags, data)
			if err != nil {
				return nil, err
			}
			out = append(out, distribute.Parameter{Name: name, Region: region, Description: p.Description, Tags: tags})
		}
	}
	return out, nil
}

func launchTemplates(lts []LaunchTemplateConfig) []distribute.LaunchTemplate {
	var out []distribute.LaunchTemplate
	for _, lt := range lts {
		out = append(out, distribute.LaunchTemplate{
			Region: lt.Region, ID: lt.ID, Name: lt.Name, SourceVersion: lt.SourceVersion, SetDefault: lt.SetDefaultVersion,
		})
	}
	return out
}

// accountClients assumes the role of a target account with the
// post-processor's credentials and reports the account it acts in.
func (r *run) accountClients(ctx context.Context, t distribute.TargetAccount) (*distribute.AccountClients, error) {
	sess, err := r.sess.Assume(awscfg.AssumeRole{RoleARN: t.RoleARN, ExternalID: t.ExternalID, SessionName: t.SessionName})
	if err != nil {
		return nil, err
	}
	id, err := sess.AccountID(ctx)
	if err != nil {
		return nil, fmt.Errorf("assume %s: %w", t.RoleARN, err)
	}
	r.mu.Lock()
	r.accounts[t.AccountID] = sess
	r.mu.Unlock()
	return &distribute.AccountClients{
		AccountID: id,
		EC2:       distribute.PerRegion(sess.EC2),
		SSM:       func(region string) distribute.SSMAPI { return sess.SSM(region) },
	}, nil
}

// undoMessage says what undoing a recorded resource does.
func undoMessage(res ledger.Resource) string {
	where := res.Region
	if res.Account != "" {
		where = "account " + res.Account + ", " + res.Region
	}
	switch res.Kind {
	case ledger.KindImage:
		return fmt.Sprintf("deregistering %s in %s with its snapshots", res.ID, where)
	case ledger.KindParameter:
		return fmt.Sprintf("putting back the previous value of parameter %s in %s", res.ID, where)
	case ledger.KindLaunchTemplateVersion:
		return fmt.Sprintf("removing launch template version %s in %s", res.ID, where)
	case distribute.KindShare:
		return fmt.Sprintf("revoking the sharing of %s in %s added for the target accounts", res.ID, where)
	}
	return fmt.Sprintf("undoing %s", res)
}

// validatePublish checks ssm_parameters, launch_templates and
// target_accounts without any AWS call.
func (c *Config) validatePublish() []error {
	var errs []error
	errs = append(errs, c.checkParameters("ssm_parameters", c.SSMParameters)...)
	errs = append(errs, checkLaunchTemplates("launch_templates", c.LaunchTemplates)...)
	seen := map[string]bool{}
	for i, a := range c.TargetAccounts {
		f := fmt.Sprintf("target_accounts[%d]", i)
		addf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(f+format, args...)) }
		if err := distribute.ValidateAccountID(a.AccountID); err != nil {
			addf(".account_id: %v", err)
		} else if seen[a.AccountID] {
			addf(".account_id: %s has more than one target_accounts block", a.AccountID)
		}
		seen[a.AccountID] = true
		if a.RoleARN == "" {
			addf(".role_arn: required, the role to assume in the account, like arn:aws:iam::%s:role/ami-publisher", cmp.Or(a.AccountID, "222222222222"))
		} else if acct := awscfg.RoleAccount(a.RoleARN); acct != "" && a.AccountID != "" && acct != a.AccountID {
			addf(".role_arn: %q is a role of account %s, not of account_id %s", a.RoleARN, acct, a.AccountID)
		}
		ar := awscfg.AssumeRole{RoleARN: a.RoleARN, ExternalID: a.ExternalID.Reveal(), SessionName: a.SessionName}
		for _, fe := range awscfg.FieldErrors(ar.Validate()) {
			if !(fe.Field == "RoleARN" && a.RoleARN == "") {
				addf(".%s: %s", assumeRoleFields[fe.Field], fe.Problem)
			}
		}
		for j, r := range a.Regions {
			if err := validateRegion(r); err != nil {
				addf(".regions[%d]: %v", j, err)
			}
		}
		if a.KMSKeyID != "" {
			if err := validateKMSKeyID(a.KMSKeyID); err != nil {
				addf(".kms_key_id: %v", err)
			}
		}
		for _, r := range sortedKeys(a.RegionKMSKeyIDs) {
			if err := validateRegion(r); err != nil {
				addf(".region_kms_key_ids[%q]: %v", r, err)
			}
			if err := validateKMSKeyID(a.RegionKMSKeyIDs[r]); err != nil {
				addf(".region_kms_key_ids[%q]: %v", r, err)
			}
		}
		errs = append(errs, c.checkParameters(f+".ssm_parameters", a.SSMParameters)...)
		errs = append(errs, checkLaunchTemplates(f+".launch_templates", a.LaunchTemplates)...)
	}
	return errs
}

// assumeRoleFields names the fields of awscfg.AssumeRole as
// target_accounts does.
var assumeRoleFields = map[string]string{
	"RoleARN": "role_arn", "ExternalID": "external_id", "SessionName": "session_name", "Duration": "duration",
}

// checkParameters checks parameter blocks; names are rendered with
// placeholder data first.
func (c *Config) checkParameters(field string, ps []SSMParameterConfig) []error {
	var errs []error
	for i, p := range ps {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch name, err := c.render(p.Name, parameterPlaceholderData()); {
		case p.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: required, such as \"/golden/web/latest\"", f))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.name: not a valid template: %w", f, err))
		default:
			if err := distribute.ValidateParameterName(name); err != nil {
				errs = append(errs, fmt.Errorf("%s.name: %w", f, err))
			}
		}
		for j, r := range p.Regions {
			if err := validateRegion(r); err != nil {
				errs = append(errs, fmt.Errorf("%s.regions[%d]: %v", f, j, err))
			}
		}
		if len(p.Description) > 1024 {
			errs = append(errs, fmt.Errorf("%s.description: %d characters; valid is up to 1024", f, len(p.Description)))
		}
		errs = append(errs, c.checkTags(f+".tags", p.Tags)...)
	}
	return errs
}

// checkLaunchTemplates checks launch template blocks.
func checkLaunchTemplates(field string, lts []LaunchTemplateConfig) []error {
	var errs []error
	for i, lt := range lts {
		f := fmt.Sprintf("%s[%d]", field, i)
		addf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(f+format, args...)) }
		switch {
		case lt.ID == "" && lt.Name == "":
			addf(": set id (lt-...) or name")
		case lt.ID != "" && lt.Name != "":
			addf(".id, .name: set one of them, not both")
		case lt.ID != "":
			if err := distribute.ValidateLaunchTemplateID(lt.ID); err != nil {
				addf(".id: %v", err)
			}
			if lt.Region == "" {
				addf(".region: required with id, since a launch template ID belongs to one region")
			}
		case lt.Name != "":
			if err := distribute.ValidateLaunchTemplateName(lt.Name); err != nil {
				addf(".name: %v", err)
			}
		}
		if lt.Region != "" {
			if err := validateRegion(lt.Region); err != nil {
				addf(".region: %v", err)
			}
		}
		if err := distribute.ValidateSourceVersion(lt.SourceVersion); err != nil {
			addf(".source_version: %v", err)
		}
	}
	return errs
}

// inAccount returns "account N," for another account's resource.
func inAccount(account string) string {
	if account == "" {
		return ""
	}
	return "account " + account + ","
}
