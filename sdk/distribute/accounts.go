package distribute

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// TargetAccount is another AWS account that gets its own copy of the
// distribution's AMI in some or all of its regions. The source AMI (and its
// snapshots) is shared with the account while the account copies it with
// its own credentials (Options.Accounts), so the account owns its copies
// and keeps them when the source is deregistered; the sharing is revoked
// again once the copies are made.
type TargetAccount struct {
	// AccountID is the 12-digit account. Required; the clients
	// Options.Accounts returns must act in it.
	AccountID string
	// RoleARN is the role of the account that Options.Accounts assumes,
	// like "arn:aws:iam::222222222222:role/ami-publisher". Required; it must
	// belong to AccountID.
	RoleARN string
	// ExternalID is passed to sts:AssumeRole when set. It is redacted when
	// the TargetAccount is printed.
	ExternalID string
	// SessionName names the role session. "" = "ami-distribute".
	SessionName string
	// Regions are the regions of the distribution's output to copy to in
	// the account: the source region and Copy.Targets. nil = every one.
	Regions []string
	// KMSKeyID encrypts the account's copies with this key of the account
	// in every region without an entry in RegionKMSKeyIDs. "" = copies keep
	// the source's encryption (an encrypted source is copied with the
	// account's default EBS key).
	KMSKeyID string
	// RegionKMSKeyIDs are the account's keys per region.
	RegionKMSKeyIDs map[string]string
	// Parameters and LaunchTemplates are published in the account with the
	// account's copies, once every copy succeeded (see Publish).
	Parameters      []Parameter
	LaunchTemplates []LaunchTemplate
}

// String describes the account without its external ID.
func (a TargetAccount) String() string {
	ext := ""
	if a.ExternalID != "" {
		ext = " ExternalID:<redacted>"
	}
	return fmt.Sprintf("distribute.TargetAccount{AccountID:%s RoleARN:%s%s Regions:%v}", a.AccountID, a.RoleARN, ext, a.Regions)
}

// GoString is String.
func (a TargetAccount) GoString() string { return a.String() }

// Format prints String for every verb, so the external ID never reaches a
// log line.
func (a TargetAccount) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, a.String()) }

// AccountClients are the clients of one TargetAccount.
type AccountClients struct {
	// AccountID is the account the clients act in, as STS reports it
	// (sts:GetCallerIdentity). Required: a distribution refuses clients of
	// another account than the TargetAccount's.
	AccountID string
	// EC2 returns the account's EC2 client of a region. Required.
	EC2 ClientFunc
	// SSM returns the account's SSM client of a region. Required when the
	// account has Parameters.
	SSM SSMClientFunc
}

// AccountFunc returns the clients of a TargetAccount, typically by
// assuming its RoleARN (awscfg.Session.Assume). It is called once per
// account and run, before any change.
type AccountFunc func(ctx context.Context, a TargetAccount) (*AccountClients, error)

// validate checks the account without any AWS call; field prefixes every
// problem, regions are the regions of the output.
func (a *TargetAccount) validate(field string, regions []string) []error {
	var errs []error
	addf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(field+format, args...)) }
	if err := ValidateAccountID(a.AccountID); err != nil {
		addf(".AccountID: %v", err)
	}
	if a.RoleARN == "" {
		addf(".RoleARN: required, the role to assume in the account, like arn:aws:iam::%s:role/ami-publisher", a.AccountID)
	} else if acct := awscfg.RoleAccount(a.RoleARN); acct != "" && acct != a.AccountID {
		addf(".RoleARN: %q is a role of account %s, not of %s", a.RoleARN, acct, a.AccountID)
	}
	for _, fe := range awscfg.FieldErrors(awscfg.AssumeRole{RoleARN: a.RoleARN, ExternalID: a.ExternalID, SessionName: a.SessionName}.Validate()) {
		if !(fe.Field == "RoleARN" && a.RoleARN == "") {
			addf(".%s: %s", fe.Field, fe.Problem)
		}
	}
	seen := map[string]bool{}
	for i, r := range a.Regions {
		switch {
		case !slices.Contains(regions, r):
			addf(".Regions[%d]: %s is not a region of the output %q", i, r, regions)
		case seen[r]:
			addf(".Regions[%d]: %s is listed more than once", i, r)
		}
		seen[r] = true
	}
	if a.KMSKeyID != "" {
		if err := ValidateKMSKeyID(a.KMSKeyID); err != nil {
			addf(".KMSKeyID: %v", err)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(a.RegionKMSKeyIDs)) {
		if !slices.Contains(a.regions(regions), r) {
			addf(".RegionKMSKeyIDs[%q]: %s is not a region the account is copied to", r, r)
		}
		if err := ValidateKMSKeyID(a.RegionKMSKeyIDs[r]); err != nil {
			addf(".RegionKMSKeyIDs[%q]: %v", r, err)
		}
	}
	return errs
}

// regions returns the regions the account is copied to, in the order of
// the output.
func (a *TargetAccount) regions(output []string) []string {
	if a.Regions == nil {
		return output
	}
	var rs []string
	for _, r := range output {
		if slices.Contains(a.Regions, r) {
			rs = append(rs, r)
		}
	}
	return rs
}

// account is one TargetAccount during a distribution.
type account struct {
	t       TargetAccount
	clients *AccountClients
	in      CopyInput // the account's copies
}

// setSSM makes an operation publish with the account's SSM clients instead
// of the caller's (Options.SSM).
func (a *account) setSSM(o *Options) { o.SSM = a.clients.SSM }

// sessionName returns the role session name of a.
func (a TargetAccount) sessionName() string {
	if a.SessionName != "" {
		return a.SessionName
	}
	return "ami-distribute"
}

// prepareAccounts gets every account's clients and runs the pre-flight
// checks of its copies: regions enabled and names free in the account.
// src is the source AMI, names the name of the output's AMI in each region.
func (d *distribution) prepareAccounts(ctx context.Context, src types.Image, names map[string]string, regions []string) error {
	if len(d.in.Accounts) == 0 {
		return nil
	}
	// Sharing the source with the accounts must be allowed for its
	// encryption (a source encrypted with the AWS-managed key is not).
	var ids []string
	for _, a := range d.in.Accounts {
		ids = append(ids, a.AccountID)
	}
	srcAPI := d.clients(d.in.Copy.SourceRegion)
	share := Permissions{Accounts: ids, SnapshotAccounts: ids}
	enc, err := d.o.resolveKey(ctx, srcAPI, d.in.Copy.SourceRegion, snapshotIDs(src), share, EncryptionOf(src))
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if err := CheckSharing(share, enc); err != nil {
		return fmt.Errorf("accounts: the source %s cannot be shared with %v for the copies: %w", d.in.Copy.SourceImageID, ids, err)
	}
	d.srcEnc = enc
	d.accounts = make([]*account, len(d.in.Accounts))
	var g errgroup.Group
	errs := make([]error, len(d.in.Accounts))
	for i, t := range d.in.Accounts {
		g.Go(func() error {
			a, err := d.prepareAccount(ctx, t, src, names, regions)
			d.accounts[i], errs[i] = a, err
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

func (d *distribution) prepareAccount(ctx context.Context, t TargetAccount, src types.Image, names map[string]string, regions []string) (*account, error) {
	t.SessionName = t.sessionName()
	cl, err := d.o.Accounts(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("account %s: get clients (assume %s): %w", t.AccountID, t.RoleARN, err)
	}
	switch {
	case cl == nil || cl.EC2 == nil:
		return nil, fmt.Errorf("account %s: Options.Accounts returned no EC2 clients", t.AccountID)
	case cl.AccountID != t.AccountID:
		return nil, fmt.Errorf("account %s: the role %s acts in account %q, not in %s; check role_arn", t.AccountID, t.RoleARN, cl.AccountID, t.AccountID)
	case len(t.Parameters) > 0 && cl.SSM == nil:
		return nil, fmt.Errorf("account %s: parameters to write but Options.Accounts returned no SSM clients", t.AccountID)
	}
	a := &account{t: t, clients: cl}
	a.in = CopyInput{
		SourceImageID: d.in.Copy.SourceImageID, SourceRegion: d.in.Copy.SourceRegion,
		Encrypted:   d.in.Copy.Encrypted,
		Deprecation: d.in.Copy.Deprecation, Concurrency: d.in.Copy.Concurrency,
		SnapshotCopyMinutes: d.in.Copy.SnapshotCopyMinutes,
		RunID:               d.copyIn.RunID, Source: &src, SkipRegionCheck: d.in.Copy.SkipRegionCheck,
	}
	for _, r := range t.regions(regions) {
		tags, snapTags := d.tagsIn(r)
		a.in.Targets = append(a.in.Targets, Target{
			Region: r, Name: names[r], Description: aws.ToString(src.Description),
			KMSKeyID: cmp.Or(t.RegionKMSKeyIDs[r], t.KMSKeyID),
			Tags:     tags, SnapshotTags: snapTags,
		})
	}
	if _, err := Preflight(ctx, cl.EC2, &a.in, d.setInner); err != nil {
		return nil, fmt.Errorf("account %s: pre-flight: %w", t.AccountID, err)
	}
	a.in.Preflighted = true
	return a, nil
}

// tagsIn returns the tags of the caller's AMI in region, which the
// accounts' copies there get too: a target's own tags over Copy.Tags, or
// an input's tags.
func (d *distribution) tagsIn(region string) (tags, snapTags map[string]string) {
	for _, t := range d.in.Copy.Targets {
		if t.Region == region {
			return merge(d.in.Copy.Tags, t.Tags), merge(d.in.Copy.SnapshotTags, t.SnapshotTags)
		}
	}
	for _, im := range d.in.Inputs {
		if im.Region == region && (im.Tags != nil || im.SnapshotTags != nil) {
			return im.Tags, im.SnapshotTags
		}
	}
	return d.in.Copy.Tags, d.in.Copy.SnapshotTags
}

// copyToAccounts shares the source with the accounts that are not yet
// allowed to use it, lets every account copy it (all accounts at once,
// each at most Copy.Concurrency regions at a time), and revokes the
// sharing it added, whatever the outcome. Copies are recorded in the
// distribution's ledger; a failing account removes its own copies.
func (d *distribution) copyToAccounts(ctx context.Context) (Results, error) {
	if len(d.accounts) == 0 {
		return nil, nil
	}
	revoke, err := d.shareWithAccounts(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]Results, len(d.accounts))
	errs := make([]error, len(d.accounts))
	var g errgroup.Group
	for i, a := range d.accounts {
		g.Go(func() error {
			d.o.logf("copying %s into account %s (%d regions)", d.in.Copy.SourceImageID, a.t.AccountID, len(a.in.Targets))
			out, err := Copy(ctx, a.clients.EC2, &a.in, d.setInner)
			if out != nil {
				for _, r := range out.Results {
					r.Account = a.t.AccountID
					results[i] = append(results[i], r)
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("account %s: %w", a.t.AccountID, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	var all Results
	for _, rs := range results {
		all = append(all, rs...)
	}
	err = errors.Join(errs...)
	if rerr := revoke(); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return all, err
}

// shareWithAccounts grants the accounts without it launch permission on the
// source and create-volume permission on its snapshots. The returned
// function revokes exactly what was granted (with a fresh context); it is
// also recorded in the ledger, so that a rollback revokes it if the
// function was not called.
func (d *distribution) shareWithAccounts(ctx context.Context) (func() error, error) {
	src, region := d.in.Copy.SourceImageID, d.in.Copy.SourceRegion
	api := d.clients(region)
	img := d.copyIn.Source
	snaps := snapshotIDs(*img)
	launch, err := launchUsers(ctx, api, src)
	if err != nil {
		return nil, fmt.Errorf("accounts: read the launch permissions of %s in %s: %w", src, region, err)
	}
	add := Permissions{}
	for _, a := range d.accounts {
		if !launch[a.t.AccountID] {
			add.Accounts = append(add.Accounts, a.t.AccountID)
		}
	}
	// A snapshot already shared with an account is left as it is.
	perSnap := map[string][]string{}
	for _, s := range snaps {
		users, err := snapshotUsers(ctx, api, s)
		if err != nil {
			return nil, fmt.Errorf("accounts: read the create-volume permissions of %s (of %s) in %s: %w", s, src, region, err)
		}
		for _, a := range d.accounts {
			if !users[a.t.AccountID] {
				perSnap[s] = append(perSnap[s], a.t.AccountID)
			}
		}
	}
	var once sync.Once
	var rerr error
	res := ledger.Resource{Kind: KindShare, ID: src, Region: region}
	revoke := func(ctx context.Context) error {
		once.Do(func() {
			var errs []error
			if len(add.Accounts) > 0 {
				d.o.logf("revoking the launch permission of %v on %s in %s, added for the copies", add.Accounts, src, region)
				if _, err := Share(ctx, api, &ShareInput{ImageID: src, Region: region, Remove: Permissions{Accounts: add.Accounts}, SnapshotIDs: []string{}, Encryption: &Encryption{}}, d.setInner); err != nil {
					errs = append(errs, err)
				}
			}
			for _, s := range slices.Sorted(maps.Keys(perSnap)) {
				if _, err := Share(ctx, api, &ShareInput{ImageID: src, Region: region, Remove: Permissions{SnapshotAccounts: perSnap[s]}, SnapshotIDs: []string{s}, Encryption: &Encryption{}}, d.setInner); err != nil {
					errs = append(errs, err)
				}
			}
			rerr = errors.Join(errs...)
		})
		return rerr
	}
	d.copies.Record(res, revoke)
	now := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), d.o.CleanupTimeout)
		defer cancel()
		if err := revoke(ctx); err != nil {
			return fmt.Errorf("accounts: revoke the sharing added for the copies: %w", err)
		}
		d.copies.ForgetResource(res)
		return nil
	}
	enc := d.srcEnc // as the pre-flight resolved it
	if !add.Empty() {
		d.o.logf("sharing %s in %s with %v for their copies", src, region, add.Accounts)
		if _, err := Share(ctx, api, &ShareInput{ImageID: src, Region: region, Add: add, SnapshotIDs: []string{}, Encryption: &enc}, d.setInner); err != nil {
			return nil, errors.Join(fmt.Errorf("accounts: share %s: %w", src, err), now())
		}
	}
	for _, s := range slices.Sorted(maps.Keys(perSnap)) {
		if _, err := Share(ctx, api, &ShareInput{ImageID: src, Region: region, Add: Permissions{SnapshotAccounts: perSnap[s]}, SnapshotIDs: []string{s}, Encryption: &enc}, d.setInner); err != nil {
			return nil, errors.Join(fmt.Errorf("accounts: share %s: %w", src, err), now())
		}
	}
	return now, nil
}

// KindShare is the ledger kind of sharing a distribution added to an AMI
// for the copies of target accounts; its undo revokes it.
const KindShare ledger.Kind = "image-share"

// launchUsers returns the accounts with launch permission on an AMI.
func launchUsers(ctx context.Context, api DescribeImageAttributeAPI, id string) (map[string]bool, error) {
	out, err := api.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(id), Attribute: types.ImageAttributeNameLaunchPermission})
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, p := range out.LaunchPermissions {
		if p.UserId != nil {
			m[*p.UserId] = true
		}
	}
	return m, nil
}

// snapshotUsers returns the accounts with create-volume permission on a
// snapshot.
func snapshotUsers(ctx context.Context, api DescribeSnapshotAttributeAPI, id string) (map[string]bool, error) {
	out, err := api.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(id), Attribute: types.SnapshotAttributeNameCreateVolumePermission})
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, p := range out.CreateVolumePermissions {
		if p.UserId != nil {
			m[*p.UserId] = true
		}
	}
	return m, nil
}
