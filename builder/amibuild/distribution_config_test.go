//go:build unix

package amibuild

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const (
	testKey   = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	testEUKey = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// prepareDistribution decodes raw (over validRaw) and runs
// PrepareDistribution for a build in us-east-1.
func prepareDistribution(t *testing.T, raw map[string]any) (*testConfig, []error) {
	t.Helper()
	full := validRaw()
	for k, v := range raw {
		full[k] = v
	}
	c, errs := prepareRaw(t, full)
	if len(errs) > 0 {
		t.Fatalf("Prepare: %v", joinErrs(errs))
	}
	return c, c.AMIConfig.PrepareDistribution("us-east-1")
}

func TestPrepareDistributionAcceptsHashiCorpOptions(t *testing.T) {
	c, errs := prepareDistribution(t, map[string]any{
		"ami_regions":        []string{"eu-west-1", "us-east-1", "eu-west-1", "ap-southeast-2"},
		"ami_users":          []string{"123456789012"},
		"ami_org_arns":       []string{"arn:aws:organizations::123456789012:organization/o-abcdefghij"},
		"snapshot_users":     []string{"123456789012"},
		"encrypt_boot":       true,
		"kms_key_id":         testKey,
		"region_kms_key_ids": map[string]string{"eu-west-1": testEUKey, "ap-southeast-2": "alias/images", "us-east-1": "alias/build"},
		"deprecate_at":       "2030-01-01T00:00:00Z",
		"deregistration_protection": map[string]any{
			"with_cooldown": true,
		},
	})
	if len(errs) > 0 {
		t.Fatalf("PrepareDistribution: %v", joinErrs(errs))
	}
	if want := []string{"eu-west-1", "ap-southeast-2"}; !slices.Equal(c.AMIRegions, want) {
		t.Errorf("ami_regions = %v, want %v (the build region and duplicates left out)", c.AMIRegions, want)
	}
	if !c.DeregistrationProtection.Enabled {
		t.Error("with_cooldown did not turn protection on")
	}
	if got := c.BuildKMSKeyID("us-east-1"); got != "alias/build" {
		t.Errorf("build region key = %q, want the region_kms_key_ids entry, which wins over kms_key_id", got)
	}
	if got := c.CopyKMSKeyID("eu-west-1"); got != testEUKey {
		t.Errorf("eu-west-1 key = %q", got)
	}
	if !c.Distributes() {
		t.Error("Distributes() = false")
	}
}

func TestPrepareDistributionRefuses(t *testing.T) {
	tests := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"bad region", map[string]any{"ami_regions": []string{"europe"}}, []string{"ami_regions[0]", "europe"}},
		{"key without encrypt_boot", map[string]any{"kms_key_id": testKey}, []string{"encrypt_boot", "kms_key_id"}},
		{"region keys without encrypt_boot", map[string]any{"ami_regions": []string{"eu-west-1"}, "region_kms_key_ids": map[string]string{"eu-west-1": testEUKey}}, []string{"encrypt_boot"}},
		{"region key for a region not copied to", map[string]any{
			"encrypt_boot": true, "ami_regions": []string{"eu-west-1"},
			"region_kms_key_ids": map[string]string{"eu-west-1": testEUKey, "ap-south-1": "alias/x"},
		}, []string{"region_kms_key_ids", "ap-south-1 is not one of ami_regions"}},
		{"region without a key", map[string]any{
			"encrypt_boot": true, "ami_regions": []string{"eu-west-1", "ap-south-1"},
			"region_kms_key_ids": map[string]string{"eu-west-1": testEUKey},
		}, []string{"region_kms_key_ids", "ap-south-1"}},
		{"bad key", map[string]any{"encrypt_boot": true, "kms_key_id": "my-key"}, []string{"kms_key_id", "my-key"}},
		{"shared with the default key", map[string]any{"encrypt_boot": true, "ami_users": []string{"123456789012"}}, []string{"kms_key_id", "default EBS key"}},
		{"copy shared with its default key", map[string]any{
			"encrypt_boot": true, "kms_key_id": testKey, "ami_regions": []string{"eu-west-1"}, "snapshot_users": []string{"123456789012"},
		}, []string{"region_kms_key_ids", "eu-west-1", "default EBS key"}},
		{"public and encrypted", map[string]any{"encrypt_boot": true, "ami_groups": []string{"all"}}, []string{"ami_groups", "cannot be public"}},
		{"bad account", map[string]any{"ami_users": []string{"12345"}}, []string{"ami_users[0]"}},
		{"bad group", map[string]any{"snapshot_groups": []string{"everyone"}}, []string{"snapshot_groups[0]"}},
		{"bad org", map[string]any{"ami_org_arns": []string{"o-abc"}}, []string{"ami_org_arns[0]"}},
		{"copy duration", map[string]any{"snapshot_copy_duration_minutes": 20}, []string{"snapshot_copy_duration_minutes", "multiples of 15"}},
		{"bad deprecation time", map[string]any{"deprecate_at": "next year"}, []string{"deprecate_at", "RFC 3339"}},
		{"skip_save_build_region without regions", map[string]any{"skip_save_build_region": true, "ami_regions": []string{"us-east-1"}}, []string{"skip_save_build_region", "keep no AMI"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := prepareDistribution(t, tc.raw)
			msg := joinErrs(errs)
			if len(errs) == 0 {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("errors %q do not mention %q", msg, w)
				}
			}
		})
	}
}

func TestPrepareDistributionAcceptsUnknownValues(t *testing.T) {
	c, errs := prepareDistribution(t, map[string]any{
		"ami_regions":        []string{unknownValue},
		"ami_users":          []string{unknownValue, "123456789012"},
		"kms_key_id":         unknownValue,
		"encrypt_boot":       true,
		"region_kms_key_ids": map[string]string{unknownValue: unknownValue},
		"deprecate_at":       unknownValue,
	})
	if len(errs) > 0 {
		t.Fatalf("values not known during validate were refused: %v", joinErrs(errs))
	}
	if got := c.Permissions().Accounts; !slices.Equal(got, []string{"123456789012"}) {
		t.Errorf("permissions accounts = %v, want the known one only", got)
	}
}

func TestPrepareDistributionNothingSet(t *testing.T) {
	c, errs := prepareDistribution(t, map[string]any{"ami_users": []string{}, "ami_regions": []string{}})
	if len(errs) > 0 {
		t.Fatal(joinErrs(errs))
	}
	if c.Distributes() {
		t.Error("empty lists (the usual dev defaults) count as a distribution")
	}
}

func TestLaunchMappingsEncryptEveryEBSVolume(t *testing.T) {
	src := types.Image{BlockDeviceMappings: []types.BlockDeviceMapping{
		{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String("snap-1"), VolumeSize: aws.Int32(8), DeleteOnTermination: aws.Bool(true)}},
		{DeviceName: aws.String("/dev/sdb"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String("snap-2"), VolumeSize: aws.Int32(20), DeleteOnTermination: aws.Bool(false)}},
		{DeviceName: aws.String("/dev/sdc"), VirtualName: aws.String("ephemeral0")},
	}}
	launch := BlockDevices{
		{DeviceName: "/dev/xvda", VolumeSize: 30, VolumeType: "gp3"},
		{DeviceName: "/dev/sdd", VolumeSize: 10, KmsKeyID: "alias/own"},
		{DeviceName: "/dev/sde", VirtualName: "ephemeral1"},
	}
	if got := LaunchMappings(src, launch, nil); len(got) != 3 || got[0].Ebs.Encrypted != nil {
		t.Fatalf("without encryption the template's mappings change: %+v", got)
	}
	got := LaunchMappings(src, launch, &LaunchEncryption{KMSKeyID: "alias/images"})
	want := map[string]string{
		"/dev/xvda": "true alias/images size 30", // the template's, encrypted with the key
		"/dev/sdd":  "true alias/own size 10",    // its own key is kept
		"/dev/sdb":  "true alias/images size 20", // the source's, added
	}
	seen := map[string]bool{}
	for _, m := range got {
		name := aws.ToString(m.DeviceName)
		seen[name] = true
		if m.Ebs == nil {
			if name != "/dev/sde" {
				t.Errorf("%s lost its EBS settings", name)
			}
			continue
		}
		desc := strings.Join([]string{boolString(m.Ebs.Encrypted), aws.ToString(m.Ebs.KmsKeyId), "size", int32String(m.Ebs.VolumeSize)}, " ")
		if desc != want[name] {
			t.Errorf("%s = %q, want %q", name, desc, want[name])
		}
		if name == "/dev/sdb" && aws.ToBool(m.Ebs.DeleteOnTermination) {
			t.Error("/dev/sdb: the source's delete-on-termination setting was not kept")
		}
	}
	if seen["/dev/sdc"] {
		t.Error("the source's instance store volume was added as an EBS volume")
	}
	if len(got) != 4 {
		t.Errorf("mappings = %d, want 4", len(got))
	}
}

func boolString(b *bool) string {
	if b == nil {
		return "unset"
	}
	if *b {
		return "true"
	}
	return "false"
}

func int32String(v *int32) string {
	if v == nil {
		return "unset"
	}
	return strconv.Itoa(int(*v))
}
