//go:build unix

package bundlestore

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

func fullRegisterInput() *RegisterInput {
	return &RegisterInput{
		ImageLocation:      "s3://bkt/images/web/root.img.manifest.xml",
		Region:             "eu-west-1",
		Name:               "web (2026-11) [arm]",
		Description:        "web server",
		Architecture:       "arm64",
		VirtualizationType: "hvm",
		RootDeviceName:     "/dev/sda1",
		BlockDeviceMappings: []types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/sdb"), VirtualName: aws.String("ephemeral0")},
		},
		KernelID:        "aki-1",
		RamdiskID:       "ari-1",
		ENASupport:      aws.Bool(true),
		SriovNetSupport: true,
		BootMode:        "uefi",
		TPMSupport:      "v2.0",
		IMDSSupport:     "v2.0",
		Tags:            map[string]string{"team": "web", "env": "prod"},
	}
}

func TestRegisterRequest(t *testing.T) {
	f := &fakeEC2{}
	var got *ec2.RegisterImageInput
	f.registerImage = func(ctx context.Context, in *ec2.RegisterImageInput) (*ec2.RegisterImageOutput, error) {
		got = in
		return &ec2.RegisterImageOutput{ImageId: aws.String("ami-1")}, nil
	}
	out, err := Register(context.Background(), f, fullRegisterInput())
	if err != nil {
		t.Fatal(err)
	}
	if out.ImageID != "ami-1" || out.ImageLocation != "bkt/images/web/root.img.manifest.xml" {
		t.Errorf("output %+v", out)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"ImageLocation", aws.ToString(got.ImageLocation), "bkt/images/web/root.img.manifest.xml"},
		{"Name", aws.ToString(got.Name), "web (2026-11) [arm]"},
		{"Description", aws.ToString(got.Description), "web server"},
		{"Architecture", got.Architecture, types.ArchitectureValuesArm64},
		{"VirtualizationType", aws.ToString(got.VirtualizationType), "hvm"},
		{"RootDeviceName", aws.ToString(got.RootDeviceName), "/dev/sda1"},
		{"BlockDeviceMappings", len(got.BlockDeviceMappings), 1},
		{"KernelId", aws.ToString(got.KernelId), "aki-1"},
		{"RamdiskId", aws.ToString(got.RamdiskId), "ari-1"},
		{"EnaSupport", aws.ToBool(got.EnaSupport), true},
		{"SriovNetSupport", aws.ToString(got.SriovNetSupport), "simple"},
		{"BootMode", got.BootMode, types.BootModeValuesUefi},
		{"TpmSupport", got.TpmSupport, types.TpmSupportValuesV20},
		{"ImdsSupport", got.ImdsSupport, types.ImdsSupportValuesV20},
		{"TagSpecifications", len(got.TagSpecifications), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	ts := got.TagSpecifications[0]
	if ts.ResourceType != types.ResourceTypeImage || len(ts.Tags) != 2 || aws.ToString(ts.Tags[0].Key) != "env" || aws.ToString(ts.Tags[1].Value) != "web" {
		t.Errorf("TagSpecifications = %+v", ts)
	}
}

func TestRegisterDefaults(t *testing.T) {
	f := &fakeEC2{}
	var got *ec2.RegisterImageInput
	f.registerImage = func(ctx context.Context, in *ec2.RegisterImageInput) (*ec2.RegisterImageOutput, error) {
		got = in
		return &ec2.RegisterImageOutput{ImageId: aws.String("ami-2")}, nil
	}
	m := &bundle.Manifest{Architecture: "i386", KernelID: "aki-m", RamdiskID: "ari-m"}
	_, err := Register(context.Background(), f, &RegisterInput{ImageLocation: "bkt/n.manifest.xml", Name: "abc", Manifest: m})
	if err != nil {
		t.Fatal(err)
	}
	if got.Architecture != "i386" || aws.ToString(got.KernelId) != "aki-m" || aws.ToString(got.RamdiskId) != "ari-m" {
		t.Errorf("manifest defaults not applied: %+v", got)
	}
	if aws.ToString(got.VirtualizationType) != "hvm" {
		t.Errorf("VirtualizationType = %q, want hvm", aws.ToString(got.VirtualizationType))
	}
	for name, v := range map[string]any{
		"Description": got.Description, "RootDeviceName": got.RootDeviceName, "EnaSupport": got.EnaSupport,
		"SriovNetSupport": got.SriovNetSupport,
	} {
		if !isNilPtr(v) {
			t.Errorf("%s set without being asked for", name)
		}
	}
	if got.BootMode != "" || got.TpmSupport != "" || got.ImdsSupport != "" || got.TagSpecifications != nil {
		t.Errorf("optional settings sent: %+v", got)
	}
}

func isNilPtr(v any) bool {
	switch p := v.(type) {
	case *string:
		return p == nil
	case *bool:
		return p == nil
	}
	return false
}

func TestRegisterInvalid(t *testing.T) {
	tests := []struct {
		name   string
		modify func(in *RegisterInput)
		want   string
	}{
		{"no location", func(in *RegisterInput) { in.ImageLocation = "" }, "manifest location"},
		{"EBS-style location", func(in *RegisterInput) { in.ImageLocation = "123456789012/web" }, "manifest location"},
		{"short name", func(in *RegisterInput) { in.Name = "ab" }, "3 to 128"},
		{"bad name", func(in *RegisterInput) { in.Name = "web*1" }, `contains '*'`},
		{"no architecture", func(in *RegisterInput) { in.Architecture = "" }, "architecture is required"},
		{"bad architecture", func(in *RegisterInput) { in.Architecture = "amd64" }, `"amd64"`},
		{"bad virtualization", func(in *RegisterInput) { in.VirtualizationType = "pv" }, "virtualization type"},
		{"bad boot mode", func(in *RegisterInput) { in.BootMode = "bios" }, "boot mode"},
		{"TPM without UEFI", func(in *RegisterInput) { in.BootMode = "legacy-bios" }, "needs boot mode uefi"},
		{"bad TPM", func(in *RegisterInput) { in.TPMSupport = "v1.2" }, "TPM support"},
		{"bad IMDS", func(in *RegisterInput) { in.IMDSSupport = "v1" }, "IMDS support"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{}
			in := fullRegisterInput()
			tc.modify(in)
			_, err := Register(context.Background(), f, in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Register: %v, want an error saying %q", err, tc.want)
			}
			if len(f.Calls()) != 0 {
				t.Errorf("calls made for an invalid input: %v", f.Calls())
			}
		})
	}
}

func TestRegisterLedger(t *testing.T) {
	f := &fakeEC2{}
	var l ledger.Ledger
	out, err := Register(context.Background(), f, fullRegisterInput(), func(o *Options) { o.Ledger = &l })
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.Resource{{Kind: ledger.KindImage, ID: out.ImageID, Region: "eu-west-1"}}
	if got := l.Resources(); !slices.Equal(got, want) {
		t.Fatalf("ledger %v, want %v", got, want)
	}
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(); !slices.Equal(got, []string{"RegisterImage web (2026-11) [arm]", "DeregisterImage " + out.ImageID}) {
		t.Errorf("calls %v", got)
	}
}

func TestRegisterError(t *testing.T) {
	f := &fakeEC2{registerImage: func(ctx context.Context, in *ec2.RegisterImageInput) (*ec2.RegisterImageOutput, error) {
		return nil, apiErr("InvalidManifest")
	}}
	_, err := Register(context.Background(), f, fullRegisterInput())
	if awserr.Code(err) != "InvalidManifest" || !containsAll(err.Error(), "web (2026-11) [arm]", "bkt/images/web/root.img.manifest.xml", "eu-west-1") {
		t.Errorf("error %v does not name the image, location and region with the code", err)
	}
}

func TestDeregister(t *testing.T) {
	b := sharedBundle(t, threeParts)
	image := func(rootType types.DeviceType, location string) func(context.Context, *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
		return func(_ context.Context, in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
			return &ec2.DescribeImagesOutput{Images: []types.Image{{ImageId: aws.String(in.ImageIds[0]), RootDeviceType: rootType, ImageLocation: aws.String(location)}}}, nil
		}
	}
	tests := []struct {
		name         string
		describe     func(context.Context, *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error)
		in           DeregisterInput
		removeManif  bool
		wantErr      string
		wantEC2      []string
		wantLeft     int // objects left in the bucket
		wantDeregist bool
	}{
		{
			name:     "instance-store image",
			describe: image(types.DeviceTypeInstanceStore, "bkt/p/root.img.manifest.xml"),
			in:       DeregisterInput{ImageID: "ami-1"},
			wantEC2:  []string{"DescribeImages ami-1", "DeregisterImage ami-1"}, wantLeft: 1, wantDeregist: true,
		},
		{
			name:        "manifest already gone",
			describe:    image(types.DeviceTypeInstanceStore, "bkt/p/root.img.manifest.xml"),
			in:          DeregisterInput{ImageID: "ami-1"},
			removeManif: true,
			wantEC2:     []string{"DescribeImages ami-1", "DeregisterImage ami-1"}, wantLeft: 1, wantDeregist: true,
		},
		{
			name:     "keep bundle",
			describe: image(types.DeviceTypeInstanceStore, "bkt/p/root.img.manifest.xml"),
			in:       DeregisterInput{ImageID: "ami-1", KeepBundle: true},
			wantEC2:  []string{"DescribeImages ami-1", "DeregisterImage ami-1"}, wantLeft: 5, wantDeregist: true,
		},
		{
			name:     "EBS-backed",
			describe: image(types.DeviceTypeEbs, "123456789012/web"),
			in:       DeregisterInput{ImageID: "ami-1"},
			wantErr:  "EBS-backed",
			wantEC2:  []string{"DescribeImages ami-1"}, wantLeft: 5,
		},
		{
			name:     "no bundle location",
			describe: image("standard", ""),
			in:       DeregisterInput{ImageID: "ami-1"},
			wantErr:  "cannot tell where its bundle is",
			wantEC2:  []string{"DescribeImages ami-1"}, wantLeft: 5,
		},
		{
			name:     "location given",
			describe: image("standard", ""),
			in:       DeregisterInput{ImageID: "ami-1", ImageLocation: "bkt/p/root.img.manifest.xml"},
			wantEC2:  []string{"DescribeImages ami-1", "DeregisterImage ami-1"}, wantLeft: 1, wantDeregist: true,
		},
		{
			name:    "image gone, location given",
			in:      DeregisterInput{ImageID: "ami-1", ImageLocation: "bkt/p/root.img.manifest.xml"},
			wantEC2: []string{"DescribeImages ami-1"}, wantLeft: 1,
		},
		{
			name:    "image gone",
			in:      DeregisterInput{ImageID: "ami-1"},
			wantErr: "image not found",
			wantEC2: []string{"DescribeImages ami-1"}, wantLeft: 5,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeS3("bkt")
			if _, err := Upload(context.Background(), s, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt", Prefix: "p"}); err != nil {
				t.Fatal(err)
			}
			s.Set("p/other.txt", []byte("keep"))
			if tc.removeManif {
				s.mu.Lock()
				delete(s.objects, "p/root.img.manifest.xml")
				s.mu.Unlock()
				tc.wantLeft = 1
			}
			e := &fakeEC2{describeImages: tc.describe}
			out, err := Deregister(context.Background(), e, s, &tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Deregister: %v, want error saying %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if out.Deregistered != tc.wantDeregist {
				t.Errorf("Deregistered = %v", out.Deregistered)
			}
			if got := e.Calls(); !slices.Equal(got, tc.wantEC2) {
				t.Errorf("EC2 calls %v, want %v", got, tc.wantEC2)
			}
			if got := s.Keys(); len(got) != tc.wantLeft {
				t.Errorf("bucket holds %v, want %d objects", got, tc.wantLeft)
			}
			if !slices.Contains(s.Keys(), "p/other.txt") {
				t.Error("an unrelated object was deleted")
			}
		})
	}
}

// TestRegisterLostResponse: an image a registration with a lost answer
// made is used, or deregistered when the caller gave up; an image of the
// name registered from another manifest is never touched.
func TestRegisterLostResponse(t *testing.T) {
	const loc = "bkt/images/web/root.img.manifest.xml"
	const name = "web (2026-11) [arm]"
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		err       error
		location  string // of the image found by name
		created   string // its creation time; empty means now
		wantCalls []string
		wantErr   string
		wantID    string
	}{
		{
			name: "Duplicate after a lost answer: the image is used", err: apiErr("InvalidAMIName.Duplicate"), location: loc,
			wantCalls: []string{"RegisterImage " + name, "DescribeImages "}, wantID: "ami-made",
		},
		{
			name: "emulator without ImageLocation: trusted on the name", err: apiErr("InvalidAMIName.Duplicate"), location: "",
			wantCalls: []string{"RegisterImage " + name, "DescribeImages "}, wantID: "ami-made",
		},
		{
			name: "cancelled while in flight: deregistered", ctx: cancelled, err: context.Canceled, location: loc,
			wantCalls: []string{"RegisterImage " + name, "DescribeImages ", "DeregisterImage ami-made"},
			wantErr:   "the image ami-made it registered anyway was deregistered",
		},
		{
			name: "an image of the name from another bundle is not ours", err: apiErr("InvalidAMIName.Duplicate"), location: "bkt/other/root.img.manifest.xml",
			wantCalls: []string{"RegisterImage " + name, "DescribeImages "}, wantErr: "InvalidAMIName.Duplicate",
		},
		{
			name: "an older image of the name and bundle is not ours", err: apiErr("InvalidAMIName.Duplicate"), location: loc,
			created:   time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
			wantCalls: []string{"RegisterImage " + name, "DescribeImages "}, wantErr: "InvalidAMIName.Duplicate",
		},
		{
			name: "cancelled, an older image of the name and bundle is left alone", ctx: cancelled, err: context.Canceled, location: loc,
			created:   time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
			wantCalls: []string{"RegisterImage " + name, "DescribeImages ", "DescribeImages "}, wantErr: "context canceled",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{
				registerImage: func(context.Context, *ec2.RegisterImageInput) (*ec2.RegisterImageOutput, error) {
					return nil, tc.err
				},
				describeImages: func(context.Context, *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
					created := tc.created
					if created == "" {
						created = time.Now().UTC().Format(time.RFC3339)
					}
					return &ec2.DescribeImagesOutput{Images: []types.Image{{
						ImageId: aws.String("ami-made"), Name: aws.String(name), ImageLocation: aws.String(tc.location), State: types.ImageStateAvailable,
						CreationDate: aws.String(created),
					}}}, nil
				},
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var l ledger.Ledger
			out, err := Register(ctx, f, fullRegisterInput(), func(o *Options) { o.Ledger = &l })
			if got := f.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("calls %q, want %q", got, tc.wantCalls)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				if l.Len() != 0 {
					t.Errorf("ledger %v after a failure", l.Resources())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.ImageID != tc.wantID || l.Len() != 1 {
				t.Errorf("image %s, ledger %v; want %s recorded", out.ImageID, l.Resources(), tc.wantID)
			}
		})
	}
}
