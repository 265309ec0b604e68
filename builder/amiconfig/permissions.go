package amiconfig

import "github.com/amiforge/packer-plugin-ami/sdk/distribute"

// PermissionFieldNames names the fields of distribute.Permissions after
// the sharing options (ami_users, ami_groups, …), each with prefix, so
// that a sharing problem names the option to change.
func PermissionFieldNames(prefix string) distribute.FieldNames {
	return distribute.FieldNames{
		Accounts:         prefix + "ami_users",
		Groups:           prefix + "ami_groups",
		OrgARNs:          prefix + "ami_org_arns",
		OUARNs:           prefix + "ami_ou_arns",
		SnapshotAccounts: prefix + "snapshot_users",
		SnapshotGroups:   prefix + "snapshot_groups",
	}
}
