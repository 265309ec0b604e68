package distribute

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// MaxCopyConcurrency is the largest valid copy_concurrency.
const MaxCopyConcurrency = 16

// interpolateExclude lists the options rendered per region at PostProcess
// time, with the source AMI's data, instead of in Configure.
var interpolateExclude = []string{
	"ami_name",
	"ami_description",
	"tags",
	"snapshot_tags",
	"region_override",
	"ssm_parameters",
	"launch_templates",
	"target_accounts",
}

// Prepare decodes and validates the configuration without any network
// call and reports every problem at once, each naming its option.
func (c *Config) Prepare(raws ...any) error {
	c.ctx.Funcs = amibuild.TemplateFuncs
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         BuilderId,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter:  &interpolate.RenderFilter{Exclude: interpolateExclude},
	}, raws...)
	if err != nil {
		return err
	}
	var errs *packersdk.MultiError
	errs = packersdk.MultiErrorAppend(errs, c.AccessConfig.Prepare()...)
	errs = packersdk.MultiErrorAppend(errs, c.Polling.Prepare()...)
	errs = packersdk.MultiErrorAppend(errs, c.validate(time.Now())...)
	if len(errs.Errors) > 0 {
		return errs
	}
	packersdk.LogSecretFilter.Set(c.AccessKey, c.SecretKey.Reveal(), c.Token.Reveal(), c.AssumeRole.ExternalID.Reveal())
	for _, a := range c.TargetAccounts {
		packersdk.LogSecretFilter.Set(a.ExternalID.Reveal())
	}
	return nil
}

// validate checks everything but the access and polling blocks.
func (c *Config) validate(now time.Time) []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	addf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// joined splits an errors.Join result so that each problem is listed
	// on its own.
	addJoined := func(err error) { errs = append(errs, unjoin(err)...) }

	// Source.
	if c.SourceAMI != "" && !c.SourceAMIFilter.Empty() {
		addf("source_ami, source_ami_filter: set one of them, not both")
	}
	if c.SourceAMI != "" && !amibuild.Unknown(c.SourceAMI) && !amibuild.ValidAMIID(c.SourceAMI) {
		addf("source_ami: %q is not an AMI ID; expected \"ami-\" and 8 or 17 hex digits", c.SourceAMI)
	}
	errs = append(errs, validateFilter(&c.SourceAMIFilter)...)

	// Regions.
	regionsField := "regions"
	if len(c.Regions) > 0 && len(c.AMIRegions) > 0 {
		addf("regions, ami_regions: ami_regions is an alias of regions; set one of them, not both")
	}
	if len(c.AMIRegions) > 0 && len(c.Regions) == 0 {
		regionsField = "ami_regions"
	}
	regions := c.TargetRegions()
	seen := map[string]bool{}
	for i, r := range regions {
		if err := validateRegion(r); err != nil {
			addf("%s[%d]: %v", regionsField, i, err)
			continue
		}
		if seen[r] {
			addf("%s[%d]: %s is listed more than once", regionsField, i, r)
		}
		seen[r] = true
	}

	// Names and descriptions.
	add(c.checkName("ami_name", c.AMIName))
	add(c.checkDescription("ami_description", c.AMIDescription))

	// Sharing.
	perms := c.permissions()
	addJoined(perms.ValidateNamed(permissionFields("")))

	// Tags.
	errs = append(errs, c.checkTags("tags", c.Tags)...)
	errs = append(errs, c.checkTags("snapshot_tags", c.SnapshotTags)...)

	// Encryption.
	if c.EncryptBoot.False() && c.KMSKeyID != "" {
		addf("encrypt_boot, kms_key_id: encrypt_boot is false but kms_key_id is set; remove kms_key_id or set encrypt_boot = true")
	}
	if c.KMSKeyID != "" {
		if err := validateKMSKeyID(c.KMSKeyID); err != nil {
			addf("kms_key_id: %v", err)
		}
	}
	for _, r := range sortedKeys(c.RegionKMSKeyIDs) {
		key := c.RegionKMSKeyIDs[r]
		field := fmt.Sprintf("region_kms_key_ids[%q]", r)
		if err := validateRegion(r); err != nil {
			addf("%s: %v", field, err)
		} else if !seen[r] {
			addf("%s: %s is not one of %s %q; keys are only used for target regions", field, r, regionsField, regions)
		}
		if key == "" {
			addf("%s: the key is empty", field)
		} else if err := validateKMSKeyID(key); err != nil {
			addf("%s: %v", field, err)
		}
		if c.EncryptBoot.False() {
			addf("encrypt_boot, %s: encrypt_boot is false but a KMS key is set for %s", field, r)
		}
	}

	// Deprecation and protection.
	if _, err := c.deprecation(now); err != nil {
		add(err)
	}
	if c.DeregistrationProtection.WithCooldown && !c.DeregistrationProtection.Enabled {
		addf("deregistration_protection.with_cooldown: only valid with enabled = true")
	}

	// Concurrency.
	if c.CopyConcurrency < 0 || c.CopyConcurrency > MaxCopyConcurrency {
		addf("copy_concurrency: %d is out of range; valid is 1 to %d, or 0 for every region at once (the default)", c.CopyConcurrency, MaxCopyConcurrency)
	}

	// Retention.
	errs = append(errs, c.validateRetention()...)

	// Manifest.
	if c.ManifestOutput != "" && strings.HasSuffix(c.ManifestOutput, "/") {
		addf("manifest_output: %q names a directory; give a file name such as \"distribute-manifest.json\"", c.ManifestOutput)
	}

	// Parameters, launch templates, target accounts.
	errs = append(errs, c.validatePublish()...)

	// Region overrides.
	overridden := map[string]bool{}
	for i, o := range c.RegionOverrides {
		f := fmt.Sprintf("region_override[%d]", i)
		switch {
		case o.Region == "":
			addf("%s.region: required, one of %s %q", f, regionsField, regions)
		case validateRegion(o.Region) != nil:
			addf("%s.region: %v", f, validateRegion(o.Region))
		case !seen[o.Region]:
			addf("%s.region: %s is not one of %s %q", f, o.Region, regionsField, regions)
		case overridden[o.Region]:
			addf("%s.region: %s has more than one region_override block", f, o.Region)
		}
		overridden[o.Region] = true
		add(c.checkName(f+".ami_name", o.AMIName))
		add(c.checkDescription(f+".ami_description", o.AMIDescription))
		if o.KMSKeyID != "" {
			if err := validateKMSKeyID(o.KMSKeyID); err != nil {
				addf("%s.kms_key_id: %v", f, err)
			}
			if _, ok := c.RegionKMSKeyIDs[o.Region]; ok {
				addf("%s.kms_key_id, region_kms_key_ids: both set a key for %s; set it in one place", f, o.Region)
			}
		}
		enc := o.EncryptBoot
		if enc == config.TriUnset {
			enc = c.EncryptBoot
		}
		if enc.False() && (o.EncryptBoot.False() || o.KMSKeyID != "") {
			if key := c.kmsKeyFor(o.Region); key != "" {
				addf("%s.encrypt_boot: encrypt_boot is false but the KMS key %q applies to %s; remove the key or set encrypt_boot = true", f, key, o.Region)
			}
		}
		addJoined(o.permissions(perms).ValidateNamed(permissionFields(f + ".")))
		errs = append(errs, c.checkTags(f+".tags", o.Tags)...)
		errs = append(errs, c.checkTags(f+".snapshot_tags", o.SnapshotTags)...)
	}

	// Sharing rules that depend on encryption, per target region.
	for _, r := range regions {
		if validateRegion(r) != nil {
			continue
		}
		t := c.target(r)
		enc := distribute.Encryption{Encrypted: t.encrypted, KMSKeyID: t.kmsKeyID}
		if !enc.Encrypted {
			continue
		}
		if err := distribute.CheckSharing(t.perms, enc); err != nil {
			switch {
			case errors.Is(err, distribute.ErrPublicEncrypted):
				addf("%s (%s): encrypted copies cannot be public; remove \"all\" from ami_groups/snapshot_groups or do not encrypt", t.fieldPrefix+"ami_groups", r)
			case errors.Is(err, distribute.ErrShareDefaultKey):
				addf("%s (%s): encrypt_boot encrypts the copy with the AWS-managed key %s, which cannot be shared with other accounts; set kms_key_id (or region_kms_key_ids) to a customer-managed key, or share with nobody", t.fieldPrefix+"ami_users/ami_org_arns/ami_ou_arns/snapshot_users", r, distribute.DefaultEBSKeyAlias)
			default:
				addf("%s: %v", r, err)
			}
		}
	}

	return errs
}

// nothingToDo reports whether the configuration asks for nothing: no
// copy, no change to the input AMIs and no retention. That is common in
// development builds whose lists come from variables defaulting to [];
// PostProcess then passes the artifact through, as the builders of
// HashiCorp's plugin do with empty sharing and copy options.
func (c *Config) nothingToDo() bool {
	changesInputs := c.shareSource() && (!c.permissions().Empty() || len(c.Tags) > 0 || len(c.SnapshotTags) > 0 ||
		c.DeprecateAt != "" || c.DeprecateAfter != "" || c.DeregistrationProtection.Enabled)
	publishes := len(c.SSMParameters) > 0 || len(c.LaunchTemplates) > 0 || len(c.TargetAccounts) > 0
	return len(c.TargetRegions()) == 0 && !changesInputs && !c.anyRetention() && !publishes
}

// validateFilter checks source_ami_filter the way the builders do.
func validateFilter(f *amibuild.SourceAMIFilter) []error {
	if f.Empty() {
		return nil
	}
	var errs []error
	if len(f.Filters) == 0 && len(f.Owners) == 0 {
		errs = append(errs, errors.New("source_ami_filter: set filters, owners or both; an empty filter would match any public image"))
	}
	for _, k := range sortedKeys(f.Filters) {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, errors.New("source_ami_filter.filters: a filter name is empty"))
		}
		if f.Filters[k] == "" {
			errs = append(errs, fmt.Errorf("source_ami_filter.filters: the value of %q is empty", k))
		}
	}
	for i, o := range f.Owners {
		if !amibuild.Matches(ownerRE, o) {
			errs = append(errs, fmt.Errorf("source_ami_filter.owners[%d]: %q is invalid; valid are 12-digit account IDs, \"self\", \"amazon\" and \"aws-marketplace\"", i, o))
		}
	}
	return errs
}

var (
	ownerRE       = regexp.MustCompile(`^([0-9]{12}|self|amazon|aws-marketplace|aws-backup-vault)$`)
	namePatternRE = regexp.MustCompile(`^[A-Za-z0-9()\[\] ./\-'@_*?]{1,128}$`)
	daysRE        = regexp.MustCompile(`^([0-9]+)d$`)
)

// checkName validates an AMI name option; templates are rendered with
// placeholder data first.
func (c *Config) checkName(field, name string) error {
	if name == "" {
		return nil
	}
	rendered, err := c.render(name, placeholderData())
	if err != nil {
		return fmt.Errorf("%s: not a valid template: %w", field, err)
	}
	if !amibuild.ValidAMIName(rendered) {
		return fmt.Errorf("%s: %q is not a valid AMI name; valid are 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _ (clean_resource_name replaces the others)", field, rendered)
	}
	return nil
}

func (c *Config) checkDescription(field, d string) error {
	if d == "" {
		return nil
	}
	rendered, err := c.render(d, placeholderData())
	if err != nil {
		return fmt.Errorf("%s: not a valid template: %w", field, err)
	}
	if len(rendered) > 255 {
		return fmt.Errorf("%s: %d characters; valid is up to 255", field, len(rendered))
	}
	return nil
}

func (c *Config) checkTags(field string, tags map[string]string) []error {
	var errs []error
	if len(tags) > 50 {
		errs = append(errs, fmt.Errorf("%s: %d tags; EC2 allows at most 50 per resource", field, len(tags)))
	}
	for _, k := range sortedKeys(tags) {
		rk, err := c.render(k, placeholderData())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: tag key %q is not a valid template: %w", field, k, err))
			continue
		}
		switch {
		case strings.TrimSpace(rk) == "":
			errs = append(errs, fmt.Errorf("%s: a tag key is empty", field))
		case strings.HasPrefix(strings.ToLower(rk), "aws:"):
			errs = append(errs, fmt.Errorf("%s: tag key %q uses the reserved prefix \"aws:\"", field, k))
		case len(rk) > 128:
			errs = append(errs, fmt.Errorf("%s: tag key %q is longer than 128 characters", field, k))
		}
		rv, err := c.render(tags[k], placeholderData())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: the value of tag %q is not a valid template: %w", field, k, err))
			continue
		}
		if len(rv) > 256 {
			errs = append(errs, fmt.Errorf("%s: the value of tag %q is longer than 256 characters", field, k))
		}
	}
	return errs
}

func (c *Config) validateRetention() []error {
	var errs []error
	if c.KeepReleases < 0 {
		errs = append(errs, fmt.Errorf("keep_releases: %d is negative; use 0 to turn the rule off or the number of releases to keep (at least 1)", c.KeepReleases))
	}
	if c.KeepDays < 0 {
		errs = append(errs, fmt.Errorf("keep_days: %d is negative; use 0 to turn the rule off or a number of days", c.KeepDays))
	}
	for i, a := range c.TargetAccounts {
		if a.KeepReleases < 0 {
			errs = append(errs, fmt.Errorf("target_accounts[%d].keep_releases: %d is negative; use 0 to turn the rule off or the number of releases to keep (at least 1)", i, a.KeepReleases))
		}
		if a.KeepDays < 0 {
			errs = append(errs, fmt.Errorf("target_accounts[%d].keep_days: %d is negative; use 0 to turn the rule off or a number of days", i, a.KeepDays))
		}
	}
	r := c.Retention
	set := r.NamePattern != "" || len(r.Tags) > 0 || r.KeepSnapshots
	on := c.anyRetention()
	switch {
	case on && r.NamePattern == "" && len(r.Tags) == 0:
		errs = append(errs, errors.New("retention: keep_releases/keep_days need a selector; set retention.name_pattern, retention.tags or both, so that only this image family's AMIs can be removed"))
	case set && !on:
		errs = append(errs, errors.New("retention: set keep_releases or keep_days (at least 1) for retention to do anything"))
	}
	if r.NamePattern != "" && !amibuild.Matches(namePatternRE, r.NamePattern) {
		errs = append(errs, fmt.Errorf("retention.name_pattern: %q is invalid; valid are AMI name characters and the wildcards * and ?", r.NamePattern))
	}
	if r.NamePattern != "" && strings.Trim(r.NamePattern, "*?") == "" {
		errs = append(errs, fmt.Errorf("retention.name_pattern: %q matches every AMI; name the image family, for example \"web-*\"", r.NamePattern))
	}
	for _, k := range sortedKeys(r.Tags) {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, errors.New("retention.tags: a tag key is empty"))
		}
	}
	return errs
}

// deprecation parses deprecate_at and deprecate_after.
func (c *Config) deprecation(now time.Time) (distribute.Deprecation, error) {
	var d distribute.Deprecation
	if c.DeprecateAt != "" && c.DeprecateAfter != "" {
		return d, errors.New("deprecate_at, deprecate_after: set one of them, not both")
	}
	if c.DeprecateAt != "" {
		at, err := time.Parse(time.RFC3339, c.DeprecateAt)
		if err != nil {
			return d, fmt.Errorf("deprecate_at: %q is not an RFC 3339 time; expected like \"2026-12-31T00:00:00Z\"", c.DeprecateAt)
		}
		if !at.After(now) {
			return d, fmt.Errorf("deprecate_at: %s is not in the future", c.DeprecateAt)
		}
		d.At = at
	}
	if c.DeprecateAfter != "" {
		after, err := parseDuration(c.DeprecateAfter)
		if err != nil {
			return d, fmt.Errorf("deprecate_after: %q is not a duration; expected a Go duration like \"2160h\" or a number of days like \"90d\"", c.DeprecateAfter)
		}
		if after <= 0 {
			return d, fmt.Errorf("deprecate_after: %q is not positive", c.DeprecateAfter)
		}
		d.After = after
	}
	return d, nil
}

// parseDuration accepts Go durations and whole days ("90d").
func parseDuration(s string) (time.Duration, error) {
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("%q: too many days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// permissionFields names Permissions fields after the options.
func permissionFields(prefix string) distribute.FieldNames {
	return distribute.FieldNames{
		Accounts:         prefix + "ami_users",
		Groups:           prefix + "ami_groups",
		OrgARNs:          prefix + "ami_org_arns",
		OUARNs:           prefix + "ami_ou_arns",
		SnapshotAccounts: prefix + "snapshot_users",
		SnapshotGroups:   prefix + "snapshot_groups",
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TargetRegions returns `regions`, or `ami_regions` when regions is empty.
func (c *Config) TargetRegions() []string {
	if len(c.Regions) > 0 {
		return c.Regions
	}
	return c.AMIRegions
}

func (c *Config) shareSource() bool { return !c.ShareSource.False() }

func (c *Config) retentionEnabled() bool { return c.KeepReleases > 0 || c.KeepDays > 0 }

// anyRetention reports whether retention runs in this account or in any
// target account.
func (c *Config) anyRetention() bool {
	if c.retentionEnabled() {
		return true
	}
	for _, a := range c.TargetAccounts {
		if a.KeepReleases > 0 || a.KeepDays > 0 {
			return true
		}
	}
	return false
}

// permissions returns the top-level sharing options.
func (c *Config) permissions() distribute.Permissions {
	return distribute.Permissions{
		Accounts:         c.AMIUsers,
		Groups:           c.AMIGroups,
		OrgARNs:          c.AMIOrgArns,
		OUARNs:           c.AMIOuArns,
		SnapshotAccounts: c.SnapshotUsers,
		SnapshotGroups:   c.SnapshotGroups,
	}
}

// permissions returns base with the lists the override sets replaced.
func (o *RegionOverride) permissions(base distribute.Permissions) distribute.Permissions {
	p := base
	if o.AMIUsers != nil {
		p.Accounts = o.AMIUsers
	}
	if o.AMIGroups != nil {
		p.Groups = o.AMIGroups
	}
	if o.AMIOrgArns != nil {
		p.OrgARNs = o.AMIOrgArns
	}
	if o.AMIOuArns != nil {
		p.OUARNs = o.AMIOuArns
	}
	if o.SnapshotUsers != nil {
		p.SnapshotAccounts = o.SnapshotUsers
	}
	if o.SnapshotGroups != nil {
		p.SnapshotGroups = o.SnapshotGroups
	}
	return p
}

// override returns the region_override block for region, or nil.
func (c *Config) override(region string) *RegionOverride {
	for i := range c.RegionOverrides {
		if c.RegionOverrides[i].Region == region {
			return &c.RegionOverrides[i]
		}
	}
	return nil
}

// targetSettings is the unrendered configuration of one target region.
type targetSettings struct {
	region            string
	name, description string // templates
	encrypted         bool
	encryptedSet      bool
	kmsKeyID          string
	copyImageTags     bool
	perms             distribute.Permissions
	tags, snapTags    map[string]string // templates, override's only
	fieldPrefix       string            // "region_override[i]." when the permissions come from an override
}

// kmsKeyFor returns the KMS key configured for a target region, or "".
func (c *Config) kmsKeyFor(region string) string {
	if o := c.override(region); o != nil && o.KMSKeyID != "" {
		return o.KMSKeyID
	}
	if k, ok := c.RegionKMSKeyIDs[region]; ok {
		return k
	}
	return c.KMSKeyID
}

// target resolves the settings of one target region.
func (c *Config) target(region string) targetSettings {
	t := targetSettings{
		region:        region,
		encrypted:     c.EncryptBoot.True(),
		encryptedSet:  c.EncryptBoot != config.TriUnset,
		kmsKeyID:      c.KMSKeyID,
		copyImageTags: c.CopyImageTags,
		perms:         c.permissions(),
	}
	if k, ok := c.RegionKMSKeyIDs[region]; ok {
		t.kmsKeyID = k
	}
	for i := range c.RegionOverrides {
		o := &c.RegionOverrides[i]
		if o.Region != region {
			continue
		}
		t.name, t.description = o.AMIName, o.AMIDescription
		if o.EncryptBoot != config.TriUnset {
			t.encrypted, t.encryptedSet = o.EncryptBoot.True(), true
		}
		if o.KMSKeyID != "" {
			t.kmsKeyID = o.KMSKeyID
		}
		if o.CopyImageTags != config.TriUnset {
			t.copyImageTags = o.CopyImageTags.True()
		}
		p := o.permissions(t.perms)
		if !slices.Equal(p.Accounts, t.perms.Accounts) || !slices.Equal(p.Groups, t.perms.Groups) ||
			!slices.Equal(p.OrgARNs, t.perms.OrgARNs) || !slices.Equal(p.OUARNs, t.perms.OUARNs) ||
			!slices.Equal(p.SnapshotAccounts, t.perms.SnapshotAccounts) || !slices.Equal(p.SnapshotGroups, t.perms.SnapshotGroups) {
			t.fieldPrefix = fmt.Sprintf("region_override[%d].", i)
		}
		t.perms = p
		t.tags, t.snapTags = o.Tags, o.SnapshotTags
	}
	if t.kmsKeyID != "" {
		t.encrypted = true
	}
	return t
}

// validateRegion and validateKMSKeyID check a value's form once Packer
// knows it; a value not known yet (amibuild.Unknown) is accepted.
func validateRegion(r string) error {
	if amibuild.Unknown(r) {
		return nil
	}
	return distribute.ValidateRegion(r)
}

func validateKMSKeyID(k string) error {
	if amibuild.Unknown(k) {
		return nil
	}
	return distribute.ValidateKMSKeyID(k)
}
