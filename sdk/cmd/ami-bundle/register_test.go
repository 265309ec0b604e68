//go:build unix

package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

func TestRegisterUsageErrors(t *testing.T) {
	const loc = "bucket/images/root.img.manifest.xml"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no location", []string{"-n", "img"}, "missing the manifest location"},
		{"two locations", []string{loc, "other", "-n", "img"}, `unexpected argument "other"`},
		{"location not a manifest", []string{"bucket/images/root.img", "-n", "img"}, "manifest location"},
		{"no name", []string{loc}, "missing -n/--name"},
		{"bad name", []string{loc, "-n", "a"}, "-n/--name: image name"},
		{"bad architecture", []string{loc, "-n", "img", "-a", "sparc"}, `-a/--architecture "sparc" is not one of i386, x86_64, arm64`},
		{"bad virtualization", []string{loc, "-n", "img", "--virtualization-type", "pv"}, `--virtualization-type "pv" is not one of hvm, paravirtual`},
		{"bad sriov", []string{loc, "-n", "img", "--sriov-net-support", "yes"}, `--sriov-net-support "yes" is not one of simple`},
		{"bad boot mode", []string{loc, "-n", "img", "--boot-mode", "bios"}, `--boot-mode "bios" is not one of legacy-bios, uefi, uefi-preferred`},
		{"bad tpm", []string{loc, "-n", "img", "--tpm-support", "v1.2", "--boot-mode", "uefi"}, `--tpm-support "v1.2" is not one of v2.0`},
		{"tpm without uefi", []string{loc, "-n", "img", "--tpm-support", "v2.0"}, "--tpm-support v2.0 needs --boot-mode uefi"},
		{"bad imds", []string{loc, "-n", "img", "--imds-support", "v1"}, `--imds-support "v1" is not one of v2.0`},
		{"bad root device", []string{loc, "-n", "img", "--root-device-name", "root"}, `--root-device-name "root"`},
		{"bad kernel", []string{loc, "-n", "img", "--kernel", "ari-12345678"}, `--kernel "ari-12345678" is not an id like aki-`},
		{"bad ramdisk", []string{loc, "-n", "img", "--ramdisk", "ari-xyz"}, `--ramdisk "ari-xyz" is not an id like ari-`},
		{"mapping without device", []string{loc, "-n", "img", "-b", "ephemeral0"}, "-b/--block-device-mapping"},
		{"mapping bad ephemeral", []string{loc, "-n", "img", "-b", "/dev/sdb=ephemeral99"}, "not ephemeral0 to ephemeral23"},
		{"mapping bad snapshot", []string{loc, "-n", "img", "-b", "/dev/sdf=vol-12345678"}, "is not a snapshot id"},
		{"mapping bad size", []string{loc, "-n", "img", "-b", "/dev/sdf=:big"}, `size "big"`},
		{"mapping empty ebs", []string{loc, "-n", "img", "-b", "/dev/sdf=::true"}, "give a snapshot id or a size"},
		{"mapping bad delete", []string{loc, "-n", "img", "--block-device-mapping", "/dev/sdf=:8:maybe"}, `delete-on-termination "maybe"`},
		{"mapping bad type", []string{loc, "-n", "img", "-b", "/dev/sdf=:8:true:fast"}, `volume type "fast"`},
		{"mapping bad iops", []string{loc, "-n", "img", "-b", "/dev/sdf=:8:true:io2:-1"}, `IOPS "-1"`},
		{"mapping too many fields", []string{loc, "-n", "img", "-b", "/dev/sdf=:8:true:io2:100:x"}, "too many fields"},
		{"bad tag", []string{loc, "-n", "img", "--tag", "novalue"}, `--tag "novalue": want key=value`},
		{"duplicate tag", []string{loc, "-n", "img", "--tag", "a=1", "--tag", "a=2"}, `key "a" given twice`},
	}
	// Point the commands at an address nothing listens on: a usage error
	// must come before any AWS call, so none of these may try one.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"register"}, tc.args...)...)
			r.must(t, 2, tc.want)
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	const bucket = "cli-register"
	_, endpoint := s3Env(t, bucket)
	proxy := awstest.NewProxy(t, endpoint, awstest.ProxyOptions{})
	ec2c, _ := awstest.Clients(endpoint, "us-east-1")
	_, manifest := bundleVector(t)
	runCLI(t, "upload", "-b", bucket+"/images/v1", "-m", manifest).must(t, 0)
	loc := bucket + "/images/v1/root.img.manifest.xml"

	tests := []struct {
		name string
		args []string
		want map[string]string // recorded RegisterImage parameters
	}{
		{
			name: "every flag",
			args: []string{
				loc, "-n", "cli-arm64", "-d", "made by the CLI", "-a", "arm64",
				"--virtualization-type", "hvm", "--root-device-name", "/dev/sda1",
				"-b", "/dev/sdb=ephemeral0", "--block-device-mapping", "/dev/sdf=:20:true:gp3",
				"--ena-support", "--sriov-net-support", "simple", "--boot-mode", "uefi",
				"--tpm-support", "v2.0", "--imds-support", "v2.0", "--tag", "team=images",
				"--endpoint-url", proxy.URL, "--region", "us-east-1",
			},
			want: map[string]string{
				"ImageLocation":                                loc,
				"Name":                                         "cli-arm64",
				"Description":                                  "made by the CLI",
				"Architecture":                                 "arm64",
				"VirtualizationType":                           "hvm",
				"RootDeviceName":                               "/dev/sda1",
				"BlockDeviceMapping.1.DeviceName":              "/dev/sdb",
				"BlockDeviceMapping.1.VirtualName":             "ephemeral0",
				"BlockDeviceMapping.2.DeviceName":              "/dev/sdf",
				"BlockDeviceMapping.2.Ebs.VolumeSize":          "20",
				"BlockDeviceMapping.2.Ebs.VolumeType":          "gp3",
				"BlockDeviceMapping.2.Ebs.DeleteOnTermination": "true",
				"EnaSupport":                                   "true",
				"SriovNetSupport":                              "simple",
				"BootMode":                                     "uefi",
				"TpmSupport":                                   "v2.0",
				"ImdsSupport":                                  "v2.0",
				"TagSpecification.1.ResourceType":              "image",
				"TagSpecification.1.Tag.1.Key":                 "team",
				"TagSpecification.1.Tag.1.Value":               "images",
			},
		},
		{
			name: "architecture from the manifest",
			args: []string{"--endpoint-url", proxy.URL, "s3://" + loc, "-n", "cli-from-manifest"},
			want: map[string]string{
				"ImageLocation":      loc,
				"Name":               "cli-from-manifest",
				"Architecture":       "x86_64",
				"VirtualizationType": "hvm",
			},
		},
	}
	idRE := regexp.MustCompile(`^ami-[0-9a-f]+\n$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Reset()
			r := runCLI(t, append([]string{"register"}, tc.args...)...)
			r.must(t, 0)
			if !idRE.MatchString(r.stdout) {
				t.Fatalf("stdout %q, want an AMI id alone", r.stdout)
			}
			id := strings.TrimSpace(r.stdout)

			out, err := ec2c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Images) != 1 || aws.ToString(out.Images[0].Name) != tc.want["Name"] {
				t.Fatalf("moto has %+v for %s, want one image named %q", out.Images, id, tc.want["Name"])
			}

			calls := proxy.CallsFor("ec2", "RegisterImage")
			if len(calls) != 1 {
				t.Fatalf("%d RegisterImage calls, want 1; calls: %v", len(calls), proxy.Actions())
			}
			p := calls[0].Params
			for k, v := range tc.want {
				if got := p.Get(k); got != v {
					t.Errorf("RegisterImage %s = %q, want %q", k, got, v)
				}
			}
			if calls[0].Region != "us-east-1" {
				t.Errorf("RegisterImage went to region %q", calls[0].Region)
			}
		})
	}
}
