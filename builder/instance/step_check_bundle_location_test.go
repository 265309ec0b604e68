//go:build unix

package instance

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// fakeLocationAWS is S3 HeadObject and EC2 DescribeImages with function
// fields, logging each call as "Op region what".
type fakeLocationAWS struct {
	headObject     func(in *s3.HeadObjectInput) (*s3.HeadObjectOutput, error)
	describeImages func(in *ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error)

	calls []string
}

// clients returns the step's client functions, which log the region.
func (f *fakeLocationAWS) clients() (func(string) bundlestore.HeadObjectAPI, func(string) bundlestore.DescribeImagesAPI) {
	return func(r string) bundlestore.HeadObjectAPI { return fakeHead{f, r} },
		func(r string) bundlestore.DescribeImagesAPI { return fakeDescribe{f, r} }
}

type fakeHead struct {
	f      *fakeLocationAWS
	region string
}

func (h fakeHead) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	h.f.calls = append(h.f.calls, "HeadObject "+h.region+" "+aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key))
	return h.f.headObject(in)
}

type fakeDescribe struct {
	f      *fakeLocationAWS
	region string
}

func (d fakeDescribe) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	var names []string
	for _, flt := range in.Filters {
		names = append(names, flt.Values...)
	}
	d.f.calls = append(d.f.calls, "DescribeImages "+d.region+" "+strings.Join(names, ","))
	return d.f.describeImages(in)
}

func TestStepCheckBundleLocation(t *testing.T) {
	const manifest = "bundles/builds/web/image.manifest.xml"
	notFound := func(*s3.HeadObjectInput) (*s3.HeadObjectOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "NotFound", Message: "fake"}
	}
	found := func(*s3.HeadObjectInput) (*s3.HeadObjectOutput, error) { return &s3.HeadObjectOutput{}, nil }
	denied := func(*s3.HeadObjectInput) (*s3.HeadObjectOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "fake"}
	}
	oldAMI := func(location string) func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
		return func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
			return &ec2.DescribeImagesOutput{Images: []types.Image{{
				ImageId: aws.String("ami-old"), Name: aws.String("web"), State: types.ImageStateAvailable,
				RootDeviceType: types.DeviceTypeInstanceStore, ImageLocation: aws.String(location),
			}}}, nil
		}
	}
	tests := []struct {
		name      string
		force     bool
		head      func(*s3.HeadObjectInput) (*s3.HeadObjectOutput, error)
		images    func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error)
		wantCalls []string
		wantErr   []string // nil: the step continues
		wantSay   string
		// wantReplace: the step lets the upload replace the manifest.
		wantReplace bool
	}{
		{
			name: "free location", head: notFound,
			wantCalls: []string{"HeadObject eu-west-1 " + manifest},
		},
		{
			name: "free location with force", force: true, head: notFound, images: oldAMI(manifest),
			wantCalls: []string{"HeadObject eu-west-1 " + manifest},
		},
		{
			name: "existing bundle", head: found,
			wantCalls: []string{"HeadObject eu-west-1 " + manifest},
			wantErr: []string{
				"s3_prefix, bundle_name: a bundle already exists at s3://" + manifest + " in eu-west-1",
				"choose another s3_prefix or bundle_name",
				"delete its manifest and parts (s3://" + manifest + " and s3://bundles/builds/web/image.part.*)",
			},
		},
		{
			name: "bundle of the AMI force_deregister replaces", force: true, head: found, images: oldAMI(manifest),
			wantCalls:   []string{"HeadObject eu-west-1 " + manifest, "DescribeImages eu-west-1 web"},
			wantSay:     "The bundle at s3://" + manifest + " belongs to ami-old, which force_deregister replaces",
			wantReplace: true,
		},
		{
			name: "bundle of another AMI with force", force: true, head: found, images: oldAMI("bundles/builds/old/image.manifest.xml"),
			wantCalls: []string{"HeadObject eu-west-1 " + manifest, "DescribeImages eu-west-1 web"},
			wantErr:   []string{"a bundle already exists at s3://" + manifest, `it is not the bundle of ami-old, the image named "web" being replaced`, "choose another s3_prefix"},
		},
		{
			name: "access denied", head: denied,
			wantCalls: []string{"HeadObject eu-west-1 " + manifest},
			wantErr:   []string{"check whether a bundle exists at s3://" + manifest, "s3:ListBucket"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLocationAWS{headObject: tc.head, describeImages: tc.images}
			state := new(multistep.BasicStateBag)
			ui := &packersdk.MockUi{}
			amibuild.StateUI.Put(state, ui)
			stateBucketRegion.Put(state, "eu-west-1")
			s := &stepCheckBundleLocation{Region: "eu-west-1", Bucket: "bundles", Prefix: "builds/web", Name: "image", AMIName: "web", Force: tc.force}
			s.S3, s.EC2 = f.clients()
			action := s.Run(context.Background(), state)
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.calls, tc.wantCalls)
			}
			err, _ := amibuild.StateError.Get(state)
			if replace, _ := stateReplaceBundle.Get(state); replace != tc.wantReplace {
				t.Errorf("the upload may replace the manifest: %v, want %v", replace, tc.wantReplace)
			}
			if tc.wantErr == nil {
				if action != multistep.ActionContinue {
					t.Fatalf("halted: %v", err)
				}
				said := make([]string, len(ui.SayMessages))
				for i, m := range ui.SayMessages {
					said[i] = m.Message
				}
				if !strings.Contains(strings.Join(said, "\n"), tc.wantSay) {
					t.Errorf("said %q, want %q", said, tc.wantSay)
				}
				return
			}
			if action != multistep.ActionHalt || err == nil {
				t.Fatalf("action %v, err %v; want a halt", action, err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestStepsCheckBundleLocationFirst checks the order of the steps: the
// bundle location is checked after the bucket and the AMI name and before
// the build instance is launched, so long before anything is uploaded; the
// AMI whose bundle may be replaced is deregistered only after the upload.
func TestStepsCheckBundleLocationFirst(t *testing.T) {
	b := &Builder{config: Config{S3Bucket: "bundles", S3Prefix: "builds/web", BundleName: "image"}}
	b.config.AMIName = "web"
	b.config.AMIForceDeregister = true
	steps := b.steps("us-east-1", &packerbuilderdata.GeneratedData{})
	index := func(match func(multistep.Step) bool) int {
		t.Helper()
		i := slices.IndexFunc(steps, match)
		if i < 0 {
			t.Fatal("step not found")
		}
		return i
	}
	check := index(func(s multistep.Step) bool {
		c, ok := s.(*stepCheckBundleLocation)
		if ok && (c.Bucket != "bundles" || c.Prefix != "builds/web" || c.Name != "image" || c.AMIName != "web" || !c.Force) {
			t.Errorf("stepCheckBundleLocation %+v does not match the configuration", c)
		}
		return ok
	})
	bucket := index(func(s multistep.Step) bool { _, ok := s.(*stepCheckBucket); return ok })
	name := index(func(s multistep.Step) bool { _, ok := s.(*amibuild.StepCheckAMIName); return ok })
	launch := index(func(s multistep.Step) bool { _, ok := s.(*amibuild.StepRunInstance); return ok })
	upload := index(func(s multistep.Step) bool { _, ok := s.(*stepBundleVolume); return ok })
	dereg := index(func(s multistep.Step) bool { _, ok := s.(*amibuild.StepDeregisterExisting); return ok })
	if !(bucket < check && name < check && check < launch && launch < upload && upload < dereg) {
		t.Errorf("step order: bucket %d, AMI name %d, bundle location %d, launch %d, upload %d, deregister existing %d", bucket, name, check, launch, upload, dereg)
	}
}
