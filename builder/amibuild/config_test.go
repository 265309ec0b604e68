//go:build unix

package amibuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// testConfig combines the shared blocks the way the builders do.
type testConfig struct {
	common.PackerConfig    `mapstructure:",squash"`
	amiconfig.AccessConfig `mapstructure:",squash"`
	RunConfig              `mapstructure:",squash"`
	AMIConfig              `mapstructure:",squash"`
	Polling                amiconfig.PollingConfig `mapstructure:"aws_polling"`

	ctx interpolate.Context
}

// prepare decodes raws like the builders' Prepare and returns every error.
func (c *testConfig) prepare(raws ...any) []error {
	if err := amiconfig.DecodeConfig("", c, &c.ctx, raws...); err != nil {
		return []error{err}
	}
	var errs []error
	errs = append(errs, c.AccessConfig.Prepare()...)
	errs = append(errs, c.RunConfig.Prepare(&c.ctx)...)
	errs = append(errs, c.AMIConfig.Prepare(&c.ctx)...)
	errs = append(errs, c.Polling.Prepare()...)
	return errs
}

// validRaw returns a minimal valid configuration.
func validRaw() map[string]any {
	return map[string]any{
		"region":        "us-east-1",
		"source_ami":    "ami-0123456789abcdef0",
		"instance_type": "t3.micro",
		"ami_name":      "test-{{timestamp}}",
		"ssh_username":  "admin",
	}
}

func prepareRaw(t *testing.T, raw map[string]any) (*testConfig, []error) {
	t.Helper()
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	var c testConfig
	errs := c.prepare(raw)
	return &c, errs
}

func joinErrs(errs []error) string {
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func TestConfigInvalid(t *testing.T) {
	dir := t.TempDir()
	userDataFile := filepath.Join(dir, "user-data.sh")
	if err := os.WriteFile(userDataFile, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bigUserData := filepath.Join(dir, "big.sh")
	if err := os.WriteFile(bigUserData, make([]byte, 17*1024), 0o600); err != nil {
		t.Fatal(err)
	}
	bdm := func(m map[string]any) []map[string]any { return []map[string]any{m} }

	tests := []struct {
		name string
		set  map[string]any // keys to set; a nil value deletes the key
		want []string       // substrings the errors must contain
	}{
		// Access.
		{"region missing", map[string]any{"region": nil}, []string{"region: required"}},
		{"region upper case", map[string]any{"region": "US-EAST-1"}, []string{"region: \"US-EAST-1\" is not a region name"}},
		{"region no number", map[string]any{"region": "us-east"}, []string{"region: \"us-east\""}},
		{"region is an AZ", map[string]any{"region": "us-east-1a"}, []string{"region: \"us-east-1a\""}},
		{"access key without secret", map[string]any{"access_key": "AKIA"}, []string{"access_key, secret_key: set both"}},
		{"secret without access key", map[string]any{"secret_key": "s"}, []string{"access_key, secret_key: set both"}},
		{"token without keys", map[string]any{"token": "t"}, []string{"token: only valid together"}},
		{"keys and profile", map[string]any{"access_key": "a", "secret_key": "s", "profile": "p"}, []string{"access_key, profile"}},
		{"assume role without arn", map[string]any{"assume_role": map[string]any{"external_id": "x1"}}, []string{"assume_role.role_arn: required"}},
		{"assume role bad arn", map[string]any{"assume_role": map[string]any{"role_arn": "arn:aws:iam::123:role/x"}}, []string{"assume_role.role_arn: \"arn:aws:iam::123:role/x\" is not a role ARN"}},
		{"assume role short duration", map[string]any{"assume_role": map[string]any{"role_arn": "arn:aws:iam::123456789012:role/x", "duration": "5m"}}, []string{"assume_role.duration: 5m0s is out of range; valid is 15m to 12h"}},
		{"assume role bad session name", map[string]any{"assume_role": map[string]any{"role_arn": "arn:aws:iam::123456789012:role/x", "session_name": "a b"}}, []string{"assume_role.session_name"}},
		{"assume role bad external id", map[string]any{"assume_role": map[string]any{"role_arn": "arn:aws:iam::123456789012:role/x", "external_id": "a b"}}, []string{"assume_role.external_id"}},
		{"negative max_retries", map[string]any{"max_retries": -1}, []string{"max_retries: -1 is negative"}},
		{"unknown retry_mode", map[string]any{"retry_mode": "legacy"}, []string{"retry_mode: \"legacy\" is unknown; valid are \"standard\" and \"adaptive\""}},
		{"ec2 endpoint without scheme", map[string]any{"custom_endpoint_ec2": "127.0.0.1:5000"}, []string{"custom_endpoint_ec2:"}},
		{"s3 endpoint ftp", map[string]any{"custom_endpoint_s3": "ftp://x"}, []string{"custom_endpoint_s3: \"ftp://x\" must start with http:// or https://"}},
		{"sts endpoint no host", map[string]any{"custom_endpoint_sts": "http://"}, []string{"custom_endpoint_sts: \"http://\" has no host"}},

		// Source image.
		{"no source", map[string]any{"source_ami": nil}, []string{"source_ami: required, or set source_ami_filter"}},
		{"source ami and filter", map[string]any{"source_ami_filter": map[string]any{"owners": []string{"self"}}}, []string{"source_ami, source_ami_filter: set one of them, not both"}},
		{"source ami malformed", map[string]any{"source_ami": "ami-xyz"}, []string{"source_ami: \"ami-xyz\" is not an AMI ID"}},
		{"source ami wrong prefix", map[string]any{"source_ami": "i-0123456789abcdef0"}, []string{"source_ami: \"i-0123456789abcdef0\""}},
		{"filter without filters or owners", map[string]any{"source_ami": nil, "source_ami_filter": map[string]any{"most_recent": true}}, []string{"source_ami_filter: set filters, owners or both"}},
		{"filter empty value", map[string]any{"source_ami": nil, "source_ami_filter": map[string]any{"filters": map[string]string{"name": ""}, "owners": []string{"self"}}}, []string{"source_ami_filter.filters: the value of \"name\" is empty"}},
		{"filter bad owner", map[string]any{"source_ami": nil, "source_ami_filter": map[string]any{"owners": []string{"somebody"}}}, []string{"source_ami_filter.owners[0]: \"somebody\" is invalid"}},

		// Placement.
		{"instance type missing", map[string]any{"instance_type": nil}, []string{"instance_type: required"}},
		{"instance type malformed", map[string]any{"instance_type": "large"}, []string{"instance_type: \"large\" is not an instance type"}},
		{"availability zone is a region", map[string]any{"availability_zone": "us-east-1"}, []string{"availability_zone: \"us-east-1\""}},
		{"subnet malformed", map[string]any{"subnet_id": "subnet-12"}, []string{"subnet_id: \"subnet-12\" is not a subnet ID"}},
		{"vpc malformed", map[string]any{"vpc_id": "vpc-zzzzzzzz"}, []string{"vpc_id: \"vpc-zzzzzzzz\" is not a VPC ID"}},
		{"security group malformed", map[string]any{"security_group_ids": []string{"sg-0123456789abcdef0", "default"}}, []string{"security_group_ids[1]: \"default\" is not a security group ID"}},
		{"cidr malformed", map[string]any{"temporary_security_group_source_cidrs": []string{"10.0.0.0/8", "10.0.0.300/32"}}, []string{"temporary_security_group_source_cidrs[1]: \"10.0.0.300/32\" is not a CIDR block"}},
		{"cidr without prefix", map[string]any{"temporary_security_group_source_cidrs": []string{"10.1.2.3"}}, []string{"temporary_security_group_source_cidrs[0]: \"10.1.2.3\" is not a CIDR block"}},
		{"cidr host bits", map[string]any{"temporary_security_group_source_cidrs": []string{"10.1.2.3/8"}}, []string{"temporary_security_group_source_cidrs[0]: \"10.1.2.3/8\" has host bits set; did you mean \"10.0.0.0/8\""}},
		{"cidrs with security groups", map[string]any{"security_group_ids": []string{"sg-0123456789abcdef0"}, "temporary_security_group_source_cidrs": []string{"10.0.0.0/8"}}, []string{"temporary_security_group_source_cidrs: only used for the temporary security group"}},
		{"iam profile malformed", map[string]any{"iam_instance_profile": "has space"}, []string{"iam_instance_profile: \"has space\""}},

		// User data.
		{"user data and file", map[string]any{"user_data": "x", "user_data_file": userDataFile}, []string{"user_data, user_data_file: set one of them, not both"}},
		{"user data file missing", map[string]any{"user_data_file": filepath.Join(dir, "nope")}, []string{"user_data_file: cannot read"}},
		{"user data file is a directory", map[string]any{"user_data_file": dir}, []string{"user_data_file: \"" + dir + "\" is a directory"}},
		{"user data file too big", map[string]any{"user_data_file": bigUserData}, []string{"user_data_file:", "limited to 16 KiB"}},

		// Communicator.
		{"unknown ssh_interface", map[string]any{"ssh_interface": "ipv6"}, []string{"ssh_interface: \"ipv6\" is unknown; valid are public_ip, private_ip, public_dns, private_dns and session_manager"}},
		{"public ip without public address", map[string]any{"ssh_interface": "public_ip", "associate_public_ip_address": false}, []string{"ssh_interface: public_ip is not reachable"}},
		{"temporary key type dsa", map[string]any{"temporary_key_pair_type": "dsa"}, []string{"temporary_key_pair_type: \"dsa\" is not supported by EC2 key pairs"}},
		{"keypair without private key", map[string]any{"ssh_keypair_name": "mine"}, []string{"ssh_keypair_name: needs ssh_private_key_file or ssh_agent_auth"}},
		{"ssh username missing", map[string]any{"ssh_username": nil}, []string{"ssh_username"}},
		{"unknown communicator", map[string]any{"communicator": "telnet"}, []string{"communicator: \"telnet\" is unknown; valid are \"ssh\" (the default), \"winrm\" and \"none\""}},

		// Metadata options.
		{"http_endpoint", map[string]any{"metadata_options": map[string]any{"http_endpoint": "on"}}, []string{"metadata_options.http_endpoint: \"on\" is invalid; valid are [\"enabled\" \"disabled\"]"}},
		{"http_tokens", map[string]any{"metadata_options": map[string]any{"http_tokens": "v2"}}, []string{"metadata_options.http_tokens: \"v2\" is invalid"}},
		{"hop limit", map[string]any{"metadata_options": map[string]any{"http_put_response_hop_limit": 65}}, []string{"metadata_options.http_put_response_hop_limit: 65 is out of range; valid is 1 to 64"}},
		{"metadata tags", map[string]any{"metadata_options": map[string]any{"instance_metadata_tags": "yes"}}, []string{"metadata_options.instance_metadata_tags: \"yes\" is invalid"}},

		// Tags.
		{"reserved tag prefix", map[string]any{"tags": map[string]string{"aws:owner": "x"}}, []string{"tags: tag key \"aws:owner\" uses the reserved prefix"}},
		{"empty tag key", map[string]any{"run_tags": map[string]string{" ": "x"}}, []string{"run_tags: a tag key is empty"}},
		{"long tag value", map[string]any{"snapshot_tags": map[string]string{"k": strings.Repeat("v", 257)}}, []string{"snapshot_tags: the value of tag \"k\" is longer than 256 characters"}},
		{"bad tag template", map[string]any{"run_volume_tags": map[string]string{"k": "{{ .SourceAMI "}}, []string{"run_volume_tags"}},
		{"unknown build variable in tag", map[string]any{"tags": map[string]string{"k": "{{ .SourceAMIID }}"}}, []string{"tags: the value of tag \"k\" is not a valid template", "SourceAMIID"}},
		{"unknown build variable in tag key", map[string]any{"run_tags": map[string]string{"{{ .Region }}": "v"}}, []string{"run_tags: tag key \"{{ .Region }}\" is not a valid template"}},
		{"unknown build variable in description", map[string]any{"ami_description": "from {{ .Source }}"}, []string{"ami_description: not a valid template", "Source"}},

		// AMI.
		{"ami name missing", map[string]any{"ami_name": nil}, []string{"ami_name: required"}},
		{"ami name too short", map[string]any{"ami_name": "ab"}, []string{"ami_name: \"ab\" is 2 characters long; valid is 3 to 128"}},
		{"ami name too long", map[string]any{"ami_name": strings.Repeat("a", 129)}, []string{"ami_name:", "is 129 characters long"}},
		{"ami name bad characters", map[string]any{"ami_name": "app:1.0"}, []string{"ami_name: \"app:1.0\" contains characters AMI names may not contain"}},
		{"ami name renders bad characters", map[string]any{"ami_name": "app {{isotime \"15:04\"}}"}, []string{"ami_name:", "contains characters"}},
		{"ami name with a build variable", map[string]any{"ami_name": "app {{ .SourceAMI }}"}, []string{"ami_name: build variables such as {{ .SourceAMI }} are not available in ami_name", "use them in tags or ami_description"}},
		{"ami name with a cleaned build variable", map[string]any{"ami_name": "app {{ clean_resource_name .SourceAMIName }}"}, []string{"ami_name: build variables such as {{ .SourceAMIName }} are not available"}},
		{"ami name with a lowered build variable", map[string]any{"ami_name": "app-{{ lower .BuildRegion }}"}, []string{"ami_name: build variables such as {{ .BuildRegion }} are not available"}},
		{"ami description too long", map[string]any{"ami_description": strings.Repeat("d", 256)}, []string{"ami_description: 256 characters once rendered; valid is up to 255"}},
		{"ami description too long once rendered", map[string]any{"ami_description": strings.Repeat("{{ .SourceAMI }}", 13)}, []string{"ami_description: 273 characters once rendered; valid is up to 255"}},
		{"imds support v1", map[string]any{"imds_support": "v1.0"}, []string{"imds_support: \"v1.0\" is invalid; the only valid value is \"v2.0\""}},
		{"ena support not a bool", map[string]any{"ena_support": "maybe"}, []string{"ena_support"}},

		// Block devices.
		{"bdm without device name", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"volume_size": 10})}, []string{"launch_block_device_mappings[0].device_name: required"}},
		{"bdm bad device name", map[string]any{"ami_block_device_mappings": bdm(map[string]any{"device_name": "sdb!", "volume_size": 10})}, []string{"ami_block_device_mappings[0].device_name: \"sdb!\" is not a device name"}},
		{"bdm duplicate", map[string]any{"ami_block_device_mappings": []map[string]any{{"device_name": "/dev/sdb", "volume_size": 10}, {"device_name": "/dev/sdb", "volume_size": 20}}}, []string{"ami_block_device_mappings[1].device_name: \"/dev/sdb\" is already mapped by ami_block_device_mappings[0]"}},
		{"bdm no_device with size", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "no_device": true, "volume_size": 10})}, []string{"launch_block_device_mappings[0].no_device: a suppressed device takes no other setting"}},
		{"bdm virtual name with ebs", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "virtual_name": "ephemeral0", "volume_type": "gp3"})}, []string{"launch_block_device_mappings[0].virtual_name: an instance store volume takes no EBS setting"}},
		{"bdm bad virtual name", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "virtual_name": "ephemeral24"})}, []string{"launch_block_device_mappings[0].virtual_name: \"ephemeral24\" is invalid"}},
		{"bdm unknown volume type", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "volume_type": "gp4", "volume_size": 8})}, []string{"launch_block_device_mappings[0].volume_type: \"gp4\" is unknown"}},
		{"bdm io1 without iops", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "volume_type": "io1", "volume_size": 8})}, []string{"launch_block_device_mappings[0].iops: required for volume_type \"io1\""}},
		{"bdm iops on gp2", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "volume_type": "gp2", "iops": 3000})}, []string{"launch_block_device_mappings[0].iops: only valid for volume_type io1, io2 and gp3"}},
		{"bdm gp3 iops range", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "volume_type": "gp3", "iops": 100})}, []string{"launch_block_device_mappings[0].iops: 100 is out of range for gp3"}},
		{"bdm throughput on io2", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "volume_type": "io2", "iops": 1000, "throughput": 200})}, []string{"launch_block_device_mappings[0].throughput: only valid for volume_type gp3"}},
		{"bdm gp3 iops above the maximum", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "volume_type": "gp3", "iops": 80001})}, []string{"launch_block_device_mappings[0].iops: 80001 is out of range for gp3; valid is 3000 to 80000"}},
		{"bdm throughput range", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "volume_type": "gp3", "throughput": 2001})}, []string{"launch_block_device_mappings[0].throughput: 2001 MiB/s is out of range; valid is 125 to 2000"}},
		{"bdm kms not a key", map[string]any{"launch_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "encrypted": true, "kms_key_id": "not-a-key", "volume_size": 8})}, []string{"launch_block_device_mappings[0].kms_key_id: ", "not-a-key"}},
		{"bdm kms without encrypted", map[string]any{"ami_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "kms_key_id": "alias/x", "volume_size": 8})}, []string{"ami_block_device_mappings[0].kms_key_id: requires encrypted = true"}},
		{"bdm bad snapshot", map[string]any{"ami_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "snapshot_id": "snap-x"})}, []string{"ami_block_device_mappings[0].snapshot_id: \"snap-x\" is not a snapshot ID"}},
		{"bdm negative size", map[string]any{"ami_block_device_mappings": bdm(map[string]any{"device_name": "/dev/sdb", "volume_size": -1})}, []string{"ami_block_device_mappings[0].volume_size: -1 GiB is out of range"}},

		// Polling.
		{"negative delay", map[string]any{"aws_polling": map[string]any{"delay_seconds": -1}}, []string{"aws_polling.delay_seconds: -1 is negative"}},
		{"negative attempts", map[string]any{"aws_polling": map[string]any{"max_attempts": -5}}, []string{"aws_polling.max_attempts: -5 is negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				if v == nil {
					delete(raw, k)
					continue
				}
				raw[k] = v
			}
			_, errs := prepareRaw(t, raw)
			if len(errs) == 0 {
				t.Fatalf("Prepare accepted the configuration; want an error containing %q", tc.want)
			}
			got := joinErrs(errs)
			t.Logf("errors:\n%s", got)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors do not mention %q; got:\n%s", w, got)
				}
			}
		})
	}
}

// TestConfigReportsEveryProblem checks that several problems are reported
// together rather than one at a time.
func TestConfigReportsEveryProblem(t *testing.T) {
	raw := validRaw()
	raw["region"] = "nowhere"
	raw["instance_type"] = ""
	raw["ami_name"] = "x"
	raw["ssh_interface"] = "carrier_pigeon"
	_, errs := prepareRaw(t, raw)
	got := joinErrs(errs)
	for _, w := range []string{"region:", "instance_type:", "ami_name:", "ssh_interface:"} {
		if !strings.Contains(got, w) {
			t.Errorf("errors do not mention %q; got:\n%s", w, got)
		}
	}
}

func TestConfigValid(t *testing.T) {
	dir := t.TempDir()
	userDataFile := filepath.Join(dir, "user-data.sh")
	if err := os.WriteFile(userDataFile, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := writeTestKey(t, dir)

	tests := []struct {
		name  string
		set   map[string]any
		check func(t *testing.T, c *testConfig)
	}{
		{"minimal", nil, func(t *testing.T, c *testConfig) {
			if c.Comm.Type != "ssh" {
				t.Errorf("communicator = %q, want ssh by default", c.Comm.Type)
			}
			if !c.NeedsTemporaryKeyPair() || !strings.HasPrefix(c.Comm.SSHTemporaryKeyPairName, "packer_") {
				t.Errorf("temporary key pair: needed=%t name=%q; want a generated packer_ name", c.NeedsTemporaryKeyPair(), c.Comm.SSHTemporaryKeyPairName)
			}
			if c.Comm.SSHTemporaryKeyPairType != "ed25519" {
				t.Errorf("temporary_key_pair_type = %q, want ed25519", c.Comm.SSHTemporaryKeyPairType)
			}
			if !c.NeedsTemporarySecurityGroup() {
				t.Error("a temporary security group is needed without security_group_ids")
			}
		}},
		{"filter instead of id", map[string]any{
			"source_ami": nil,
			"source_ami_filter": map[string]any{
				"filters":     map[string]string{"name": "debian-12-*", "virtualization-type": "hvm"},
				"owners":      []string{"136693071363", "self"},
				"most_recent": true,
			},
		}, func(t *testing.T, c *testConfig) {
			if c.SourceAMIFilter.Filters["name"] != "debian-12-*" || !c.SourceAMIFilter.MostRecent {
				t.Errorf("filter = %+v", c.SourceAMIFilter)
			}
		}},
		{"moto style", map[string]any{
			"access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": "dummy",
			"custom_endpoint_ec2": "http://127.0.0.1:5000", "custom_endpoint_sts": "http://127.0.0.1:5000",
			"skip_credential_validation": true, "ssh_host": "127.0.0.1", "ssh_port": 2222,
			"ssh_private_key_file": keyFile,
		}, func(t *testing.T, c *testConfig) {
			if c.NeedsTemporaryKeyPair() {
				t.Error("no temporary key pair is needed with ssh_private_key_file")
			}
			cfg := c.AWSConfig()
			if cfg.Endpoints.EC2 != "http://127.0.0.1:5000" || cfg.Endpoints.STS != "http://127.0.0.1:5000" || cfg.AccessKey == "" {
				t.Errorf("AWSConfig = %v", cfg)
			}
			if c.Comm.SSHHost != "127.0.0.1" || c.Comm.SSHPort != 2222 {
				t.Errorf("ssh host/port = %s:%d", c.Comm.SSHHost, c.Comm.SSHPort)
			}
		}},
		{"everything", map[string]any{
			"profile": "build", "shared_credentials_file": "/dev/null",
			"assume_role": map[string]any{"role_arn": "arn:aws:iam::123456789012:role/packer", "external_id": "ext-1", "session_name": "packer", "duration": "1h"},
			"max_retries": 5, "retry_mode": "adaptive",
			"availability_zone": "us-east-1a", "subnet_id": "subnet-0123456789abcdef0", "vpc_id": "vpc-01234567",
			"temporary_security_group_source_cidrs": []string{"203.0.113.0/24", "2001:db8::/32"},
			"iam_instance_profile":                  "arn:aws:iam::123456789012:instance-profile/build",
			"user_data_file":                        userDataFile, "associate_public_ip_address": true, "ssh_interface": "private_ip",
			"run_tags": map[string]string{"Name": "packer {{ .SourceAMIName }}"}, "run_volume_tags": map[string]string{"k": "v"},
			"metadata_options":             map[string]any{"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 2, "instance_metadata_tags": "enabled"},
			"launch_block_device_mappings": []map[string]any{{"device_name": "/dev/xvda", "volume_size": 20, "volume_type": "gp3", "iops": 4000, "throughput": 250, "delete_on_termination": true}},
			"ami_block_device_mappings": []map[string]any{
				{"device_name": "/dev/sdb", "volume_size": 10, "encrypted": true, "kms_key_id": "alias/build"},
				{"device_name": "/dev/sdc", "virtual_name": "ephemeral0"},
				{"device_name": "/dev/sdd", "no_device": true},
				{"device_name": "/dev/sde", "volume_type": "io2", "iops": 5000, "volume_size": 100},
			},
			"ami_description": "from {{ .SourceAMI }}", "tags": map[string]string{"Base": "{{ .SourceAMIName }}"},
			"snapshot_tags": map[string]string{"Region": "{{ .BuildRegion }}"}, "force_deregister": true, "force_delete_snapshot": true,
			"ena_support": true, "imds_support": "v2.0", "temporary_key_pair_type": "rsa",
			"aws_polling": map[string]any{"delay_seconds": 5, "max_attempts": 10},
		}, func(t *testing.T, c *testConfig) {
			if c.AssumeRole.Duration != time.Hour {
				t.Errorf("assume_role.duration = %s", c.AssumeRole.Duration)
			}
			if lo, hi, max := c.Polling.Durations(); lo != 5*time.Second || hi != 5*time.Second || max != 50*time.Second {
				t.Errorf("Durations = %s, %s, %s; want 5s, 5s, 50s", lo, hi, max)
			}
			if !c.AMIENASupport.True() {
				t.Error("ena_support not true")
			}
			if got := len(c.AMIMappings.Mappings()); got != 4 {
				t.Errorf("%d AMI mappings, want 4", got)
			}
		}},
		{"security groups given", map[string]any{"security_group_ids": []string{"sg-0123456789abcdef0"}}, func(t *testing.T, c *testConfig) {
			if c.NeedsTemporarySecurityGroup() {
				t.Error("no temporary security group is needed with security_group_ids")
			}
		}},
		{"no communicator", map[string]any{"communicator": "none", "ssh_username": nil}, func(t *testing.T, c *testConfig) {
			if c.NeedsTemporaryKeyPair() || c.NeedsTemporarySecurityGroup() {
				t.Error("communicator none needs neither a key pair nor a security group")
			}
		}},
		{"winrm", map[string]any{"communicator": "winrm", "winrm_username": "Administrator", "winrm_password": "x", "ssh_username": nil}, func(t *testing.T, c *testConfig) {
			if c.NeedsTemporaryKeyPair() {
				t.Error("WinRM needs no temporary key pair")
			}
			if c.Comm.Port() != 5985 {
				t.Errorf("winrm port = %d, want 5985", c.Comm.Port())
			}
		}},
		{"ssh password", map[string]any{"ssh_password": "pw"}, func(t *testing.T, c *testConfig) {
			if c.NeedsTemporaryKeyPair() {
				t.Error("no temporary key pair is needed with ssh_password")
			}
		}},
		{"keypair with agent", map[string]any{"ssh_keypair_name": "mine", "ssh_agent_auth": true}, func(t *testing.T, c *testConfig) {
			if c.NeedsTemporaryKeyPair() {
				t.Error("no temporary key pair is needed with ssh_keypair_name")
			}
		}},
		{"retry mode standard", map[string]any{"retry_mode": "standard"}, nil},
		{"gov region", map[string]any{"region": "us-gov-west-1"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				if v == nil {
					delete(raw, k)
					continue
				}
				raw[k] = v
			}
			c, errs := prepareRaw(t, raw)
			if len(errs) > 0 {
				t.Fatalf("Prepare rejected a valid configuration:\n%s", joinErrs(errs))
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestConfigRegionFromEnvironment(t *testing.T) {
	raw := validRaw()
	delete(raw, "region")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "eu-west-3")
	var c testConfig
	if errs := c.prepare(raw); len(errs) > 0 {
		t.Fatalf("Prepare: %s", joinErrs(errs))
	}
	if c.Region() != "eu-west-3" {
		t.Errorf("region = %q, want eu-west-3 from AWS_DEFAULT_REGION", c.Region())
	}
}

func TestConfigDescriptionLengthIsRendered(t *testing.T) {
	// 320 characters of template that render to 4: valid.
	raw := validRaw()
	raw["ami_description"] = strings.Repeat(`{{ "" }}`, 40) + "{{ .BuildRegion | len }}"
	if _, errs := prepareRaw(t, raw); len(errs) > 0 {
		t.Fatalf("Prepare: %s", joinErrs(errs))
	}
}

func TestRenderDescription(t *testing.T) {
	ictx := interpolate.Context{Funcs: amiconfig.TemplateFuncs}
	tests := []struct {
		name    string
		desc    string
		info    *amiconfig.BuildInfo
		want    string
		wantErr string
	}{
		{"plain", "web server", nil, "web server", ""},
		{"rendered", "from {{ .SourceAMIName }}", &amiconfig.BuildInfo{SourceAMIName: "debian-12"}, "from debian-12", ""},
		{"at the limit", "from {{ .SourceAMIName }}", &amiconfig.BuildInfo{SourceAMIName: strings.Repeat("n", 250)}, "from " + strings.Repeat("n", 250), ""},
		{"too long once rendered", "from {{ .SourceAMIName }}", &amiconfig.BuildInfo{SourceAMIName: strings.Repeat("n", 251)}, "", "ami_description: 256 characters once rendered; valid is up to 255"},
		{"bad template", "from {{ .Nope }}", &amiconfig.BuildInfo{}, "", "ami_description: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := amiconfig.RenderDescription(ictx, tc.desc, tc.info)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("RenderDescription = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestConfigInterpolation(t *testing.T) {
	raw := validRaw()
	raw["ami_name"] = `app {{ clean_resource_name "v1:2 (beta)" }} {{timestamp}}`
	raw["ami_description"] = "built from {{ .SourceAMIName }} ({{ .SourceAMI }})"
	raw["tags"] = map[string]string{"Base": "{{ .SourceAMIName }}", "Owner-{{ .SourceAMIOwner }}": "{{ .BuildRegion }}"}
	raw["snapshot_tags"] = map[string]string{"Created": "{{ .SourceAMICreationDate }}"}
	raw["run_tags"] = map[string]string{"Name": "packer from {{ .SourceAMI }}"}
	c, errs := prepareRaw(t, raw)
	if len(errs) > 0 {
		t.Fatalf("Prepare: %s", joinErrs(errs))
	}
	wantPrefix := "app v1-2 (beta) "
	if !strings.HasPrefix(c.AMIName, wantPrefix) || strings.Contains(c.AMIName, "{{") {
		t.Errorf("ami_name = %q, want it rendered with prefix %q", c.AMIName, wantPrefix)
	}
	// Build-time options keep their templates until the source AMI is known.
	if c.AMITags["Base"] != "{{ .SourceAMIName }}" || c.AMIDescription != raw["ami_description"] {
		t.Errorf("tags/description rendered at Prepare: %v / %q", c.AMITags, c.AMIDescription)
	}

	info := &amiconfig.BuildInfo{
		BuildRegion: "us-east-1", SourceAMI: "ami-0123456789abcdef0", SourceAMIName: "debian-12",
		SourceAMIOwner: "136693071363", SourceAMICreationDate: "2024-01-02T03:04:05.000Z",
	}
	tags, err := amiconfig.RenderTags(c.ctx, "tags", c.AMITags, info)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Base": "debian-12", "Owner-136693071363": "us-east-1"}
	if len(tags) != len(want) {
		t.Errorf("tags = %v, want %v", tags, want)
	}
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("tags[%q] = %q, want %q", k, tags[k], v)
		}
	}
	desc, err := amiconfig.Render(c.ctx, c.AMIDescription, info)
	if err != nil || desc != "built from debian-12 (ami-0123456789abcdef0)" {
		t.Errorf("description = %q, %v", desc, err)
	}
	snap, err := amiconfig.RenderTags(c.ctx, "snapshot_tags", c.SnapshotTags, info)
	if err != nil || snap["Created"] != info.SourceAMICreationDate {
		t.Errorf("snapshot_tags = %v, %v", snap, err)
	}
	if _, err := amiconfig.RenderTags(c.ctx, "tags", map[string]string{"k": "{{ .NoSuchField }}"}, info); err == nil || !strings.Contains(err.Error(), "tags: render value of \"k\"") {
		t.Errorf("unknown build variable: err = %v, want a render error naming tags", err)
	}
}

func TestCleanAMIName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ok name (1) [x] ./-'@_", "ok name (1) [x] ./-'@_"},
		{"a:b*c?d", "a-b-c-d"},
		{"ünïcode", "-n-code"},
		{strings.Repeat("x", 200), strings.Repeat("x", 128)},
	}
	for _, tc := range tests {
		if got := amiconfig.CleanAMIName(tc.in); got != tc.want {
			t.Errorf("CleanAMIName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
