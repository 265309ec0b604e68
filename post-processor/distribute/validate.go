package distribute

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
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
	c.ctx.Funcs = amiconfig.TemplateFuncs
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

// validate checks everything but the access and polling blocks. Problems
// are listed in the order of the options in the documentation, each on its
// own, so that one Prepare reports all of them.
func (c *Config) validate(now time.Time) []error {
	var errs []error
	add := func(more ...error) { errs = appendErrs(errs, more...) }
	add(c.validateSource()...)
	targets, regionErrs := c.validateRegions()
	add(regionErrs...)
	add(c.checkName("ami_name", c.AMIName))
	add(c.checkDescription("ami_description", c.AMIDescription))
	perms := c.permissions()
	add(amiconfig.SplitErrors(perms.ValidateNamed(amiconfig.PermissionFieldNames("")))...)
	add(c.checkTags("tags", c.Tags)...)
	add(c.checkTags("snapshot_tags", c.SnapshotTags)...)
	add(c.validateEncryption(targets)...)
	if _, err := c.deprecation(now); err != nil {
		add(err)
	}
	if c.DeregistrationProtection.WithCooldown && !c.DeregistrationProtection.Enabled {
		add(errors.New("deregistration_protection.with_cooldown: only valid with enabled = true"))
	}
	if c.CopyConcurrency < 0 || c.CopyConcurrency > MaxCopyConcurrency {
		add(fmt.Errorf("copy_concurrency: %d is out of range; valid is 1 to %d, or 0 for every region at once (the default)", c.CopyConcurrency, MaxCopyConcurrency))
	}
	add(c.validateRetention()...)
	if c.ManifestOutput != "" && strings.HasSuffix(c.ManifestOutput, "/") {
		add(fmt.Errorf("manifest_output: %q names a directory; give a file name such as \"distribute-manifest.json\"", c.ManifestOutput))
	}
	add(c.validatePublish()...)
	add(c.validateRegionOverrides(targets, perms)...)
	add(c.validateEncryptedSharing(targets)...)
	return errs
}

// targetRegions is what validation knows of the target regions, for the
// options that must name one of them.
type targetRegions struct {
	// field is the option the regions were set with: regions, or its
	// alias ami_regions.
	field string
	// list holds the regions as written.
	list []string
	// valid holds the regions of list that are valid region names or not
	// known yet.
	valid map[string]bool
}

// validateSource checks source_ami and source_ami_filter.
func (c *Config) validateSource() []error {
	var errs []error
	if c.SourceAMI != "" && !c.SourceAMIFilter.Empty() {
		errs = append(errs, errors.New("source_ami, source_ami_filter: set one of them, not both"))
	}
	if c.SourceAMI != "" && !amiconfig.Unknown(c.SourceAMI) && !amiconfig.ValidAMIID(c.SourceAMI) {
		errs = append(errs, fmt.Errorf("source_ami: %q is not an AMI ID; expected \"ami-\" and 8 or 17 hex digits", c.SourceAMI))
	}
	return append(errs, c.SourceAMIFilter.Validate()...)
}

// validateRegions checks regions and ami_regions, and returns the target
// regions for the checks of the options that refer to them.
func (c *Config) validateRegions() (targetRegions, []error) {
	var errs []error
	addf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	t := targetRegions{field: "regions", list: c.TargetRegions(), valid: map[string]bool{}}
	if len(c.Regions) > 0 && len(c.AMIRegions) > 0 {
		addf("regions, ami_regions: ami_regions is an alias of regions; set one of them, not both")
	}
	if len(c.AMIRegions) > 0 && len(c.Regions) == 0 {
		t.field = "ami_regions"
	}
	for i, r := range t.list {
		if err := validateRegion(r); err != nil {
			addf("%s[%d]: %v", t.field, i, err)
			continue
		}
		if t.valid[r] {
			addf("%s[%d]: %s is listed more than once", t.field, i, r)
		}
		t.valid[r] = true
	}
	return t, errs
}

// validateEncryption checks encrypt_boot, kms_key_id and
// region_kms_key_ids against each other and the target regions.
func (c *Config) validateEncryption(t targetRegions) []error {
	var errs []error
	addf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
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
		} else if !t.valid[r] {
			addf("%s: %s is not one of %s %q; keys are only used for target regions", field, r, t.field, t.list)
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
	return errs
}

// validateRegionOverrides checks the region_override blocks: each names
// one target region, at most once, and its settings follow the rules of
// the top-level options they replace.
func (c *Config) validateRegionOverrides(t targetRegions, perms distribute.Permissions) []error {
	var errs []error
	overridden := map[string]bool{}
	for i := range c.RegionOverrides {
		o := &c.RegionOverrides[i]
		f := fmt.Sprintf("region_override[%d]", i)
		errs = appendErrs(errs, checkOverrideRegion(f, o.Region, t, overridden))
		overridden[o.Region] = true
		errs = appendErrs(errs, c.checkName(f+".ami_name", o.AMIName), c.checkDescription(f+".ami_description", o.AMIDescription))
		errs = append(errs, c.checkOverrideEncryption(f, o)...)
		errs = append(errs, amiconfig.SplitErrors(o.permissions(perms).ValidateNamed(amiconfig.PermissionFieldNames(f+".")))...)
		errs = append(errs, c.checkTags(f+".tags", o.Tags)...)
		errs = append(errs, c.checkTags(f+".snapshot_tags", o.SnapshotTags)...)
	}
	return errs
}

// checkOverrideRegion checks the region of the region_override block f:
// required, a target region, and not overridden by an earlier block.
func checkOverrideRegion(f, region string, t targetRegions, overridden map[string]bool) error {
	switch {
	case region == "":
		return fmt.Errorf("%s.region: required, one of %s %q", f, t.field, t.list)
	case validateRegion(region) != nil:
		return fmt.Errorf("%s.region: %v", f, validateRegion(region))
	case !t.valid[region]:
		return fmt.Errorf("%s.region: %s is not one of %s %q", f, region, t.field, t.list)
	case overridden[region]:
		return fmt.Errorf("%s.region: %s has more than one region_override block", f, region)
	}
	return nil
}

// checkOverrideEncryption checks the KMS key and encrypt_boot of the
// region_override block f: a well-formed key, set in one place only, and
// no key for a region whose copy is not encrypted.
func (c *Config) checkOverrideEncryption(f string, o *RegionOverride) []error {
	var errs []error
	addf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
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
	return errs
}

// validateEncryptedSharing checks, per target region, the sharing rules
// that depend on encryption: an encrypted copy cannot be public, nor
// shared when the AWS-managed key encrypts it.
func (c *Config) validateEncryptedSharing(t targetRegions) []error {
	var errs []error
	addf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, r := range t.list {
		if validateRegion(r) != nil {
			continue
		}
		s := c.target(r)
		enc := distribute.Encryption{Encrypted: s.encrypted, KMSKeyID: s.kmsKeyID}
		if !enc.Encrypted {
			continue
		}
		if err := distribute.CheckSharing(s.perms, enc); err != nil {
			switch {
			case errors.Is(err, distribute.ErrPublicEncrypted):
				addf("%s (%s): encrypted copies cannot be public; remove \"all\" from ami_groups/snapshot_groups or do not encrypt", s.fieldPrefix+"ami_groups", r)
			case errors.Is(err, distribute.ErrShareDefaultKey):
				addf("%s (%s): encrypt_boot encrypts the copy with the AWS-managed key %s, which cannot be shared with other accounts; set kms_key_id (or region_kms_key_ids) to a customer-managed key, or share with nobody", s.fieldPrefix+"ami_users/ami_org_arns/ami_ou_arns/snapshot_users", r, distribute.DefaultEBSKeyAlias)
			default:
				addf("%s: %v", r, err)
			}
		}
	}
	return errs
}

// appendErrs appends the errors of more that are not nil to errs, for
// checks that return nil when they find nothing.
func appendErrs(errs []error, more ...error) []error {
	for _, err := range more {
		if err != nil {
			errs = append(errs, err)
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

var (
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
	if !amiconfig.ValidAMIName(rendered) {
		return fmt.Errorf("%s: %q is not a valid AMI name; valid are 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _ (clean_resource_name replaces the others)", field, rendered)
	}
	return nil
}

// checkDescription validates an AMI description option, rendered with
// placeholder data like names.
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

// checkTags validates a tags option against EC2's limits, keys and values
// rendered with placeholder data first.
func (c *Config) checkTags(field string, tags map[string]string) []error {
	return amiconfig.CheckTags(field, tags, func(s string) (string, error) { return c.render(s, placeholderData()) })
}

// validateRetention checks keep_releases, keep_days (here and in the
// target accounts) and the retention selector, which must be narrow
// enough that only this image family's AMIs can be removed.
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
	if r.NamePattern != "" && !amiconfig.Matches(namePatternRE, r.NamePattern) {
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

// sortedKeys returns the keys of m in order, so that problems and output
// do not depend on map order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

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

// permissions returns base with the lists the override sets replaced. A
// list set to [] replaces too: it shares with nobody in this region.
func (o *RegionOverride) permissions(base distribute.Permissions) distribute.Permissions {
	p := base
	p.Accounts = overrideList(o.AMIUsers, p.Accounts)
	p.Groups = overrideList(o.AMIGroups, p.Groups)
	p.OrgARNs = overrideList(o.AMIOrgArns, p.OrgARNs)
	p.OUARNs = overrideList(o.AMIOuArns, p.OUARNs)
	p.SnapshotAccounts = overrideList(o.SnapshotUsers, p.SnapshotAccounts)
	p.SnapshotGroups = overrideList(o.SnapshotGroups, p.SnapshotGroups)
	return p
}

// overrideList returns the list of a region_override block when the block
// sets it, else the top-level list.
func overrideList(list, base []string) []string {
	if list != nil {
		return list
	}
	return base
}

// samePermissions reports whether a and b hold the same lists.
func samePermissions(a, b distribute.Permissions) bool {
	return slices.Equal(a.Accounts, b.Accounts) && slices.Equal(a.Groups, b.Groups) &&
		slices.Equal(a.OrgARNs, b.OrgARNs) && slices.Equal(a.OUARNs, b.OUARNs) &&
		slices.Equal(a.SnapshotAccounts, b.SnapshotAccounts) && slices.Equal(a.SnapshotGroups, b.SnapshotGroups)
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
		if !samePermissions(p, t.perms) {
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
// knows it; a value not known yet (amiconfig.Unknown) is accepted.
func validateRegion(r string) error {
	if amiconfig.Unknown(r) {
		return nil
	}
	return distribute.ValidateRegion(r)
}

func validateKMSKeyID(k string) error {
	if amiconfig.Unknown(k) {
		return nil
	}
	return distribute.ValidateKMSKeyID(k)
}
