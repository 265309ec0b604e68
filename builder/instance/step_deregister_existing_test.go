//go:build unix

package instance

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// fakeAWS is EC2 (images by name) and S3 (objects by bucket/key) in memory,
// with a log of the calls that change something.
type fakeAWS struct {
	images  []types.Image
	objects map[string]bool // "bucket/key"

	mu    sync.Mutex
	calls []string
}

func (f *fakeAWS) log(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeAWS) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	out := &ec2.DescribeImagesOutput{}
	for _, img := range f.images {
		if len(in.ImageIds) > 0 && !slices.Contains(in.ImageIds, aws.ToString(img.ImageId)) {
			continue
		}
		if nameMatches(in.Filters, aws.ToString(img.Name)) {
			out.Images = append(out.Images, img)
		}
	}
	return out, nil
}

// nameMatches reports whether every "name" filter allows name.
func nameMatches(filters []types.Filter, name string) bool {
	for _, flt := range filters {
		if aws.ToString(flt.Name) == "name" && !slices.Contains(flt.Values, name) {
			return false
		}
	}
	return true
}

func (f *fakeAWS) DeregisterImage(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	f.log("DeregisterImage %s", aws.ToString(in.ImageId))
	return &ec2.DeregisterImageOutput{}, nil
}

func (f *fakeAWS) DeleteSnapshot(_ context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	f.log("DeleteSnapshot %s", aws.ToString(in.SnapshotId))
	return &ec2.DeleteSnapshotOutput{}, nil
}

func (f *fakeAWS) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	// No manifest: Delete falls back to listing the bundle's objects.
	return nil, &smithy.GenericAPIError{Code: "NoSuchKey", Message: "fake"}
}

func (f *fakeAWS) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out := &s3.ListObjectsV2Output{}
	var keys []string
	for k := range f.objects {
		bucket, key, _ := strings.Cut(k, "/")
		if bucket == aws.ToString(in.Bucket) && strings.HasPrefix(key, aws.ToString(in.Prefix)) {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k)})
	}
	return out, nil
}

func (f *fakeAWS) DeleteObjects(_ context.Context, in *s3.DeleteObjectsInput, _ ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	for _, o := range in.Delete.Objects {
		f.log("DeleteObject %s/%s", aws.ToString(in.Bucket), aws.ToString(o.Key))
	}
	return &s3.DeleteObjectsOutput{}, nil
}

func bundleObjects(bucket, prefix, name string) map[string]bool {
	return map[string]bool{
		bucket + "/" + prefix + "/" + name + ".manifest.xml": true,
		bucket + "/" + prefix + "/" + name + ".part.0":       true,
	}
}

func TestStepDeregisterExisting(t *testing.T) {
	oldImage := func(id, location string, rdt types.DeviceType) types.Image {
		img := types.Image{ImageId: aws.String(id), Name: aws.String("web"), State: types.ImageStateAvailable, RootDeviceType: rdt}
		if location != "" {
			img.ImageLocation = aws.String(location)
		}
		return img
	}
	tests := []struct {
		name      string
		force     bool
		image     types.Image
		current   *bundlestore.Location
		wantCalls []string
		wantWarn  string
	}{
		{
			name:      "without force nothing happens",
			image:     oldImage("ami-old", "bundles/old/image.manifest.xml", types.DeviceTypeInstanceStore),
			wantCalls: nil,
		},
		{
			name:      "bundle in s3_bucket is deleted",
			force:     true,
			image:     oldImage("ami-old", "bundles/old/image.manifest.xml", types.DeviceTypeInstanceStore),
			current:   &bundlestore.Location{Bucket: "bundles", Prefix: "new", Name: "image"},
			wantCalls: []string{"DeregisterImage ami-old", "DeleteObject bundles/old/image.part.0", "DeleteObject bundles/old/image.manifest.xml"},
		},
		{
			name:      "bundle in another bucket is left",
			force:     true,
			image:     oldImage("ami-old", "elsewhere/old/image.manifest.xml", types.DeviceTypeInstanceStore),
			wantCalls: []string{"DeregisterImage ami-old"},
			wantWarn:  "is in bucket elsewhere, not in s3_bucket bundles; it is left in place",
		},
		{
			name:      "unknown bundle location is left",
			force:     true,
			image:     oldImage("ami-old", "", types.DeviceTypeInstanceStore),
			wantCalls: []string{"DeregisterImage ami-old"},
			wantWarn:  "EC2 does not report where the bundle of existing AMI ami-old is",
		},
		{
			name:      "bundle replaced by this build's upload is kept",
			force:     true,
			image:     oldImage("ami-old", "bundles/old/image.manifest.xml", types.DeviceTypeInstanceStore),
			current:   &bundlestore.Location{Bucket: "bundles", Prefix: "old", Name: "image"},
			wantCalls: []string{"DeregisterImage ami-old"},
		},
		{
			name:      "EBS-backed AMI is deregistered only",
			force:     true,
			image:     oldImage("ami-old", "123456789012/web", types.DeviceTypeEbs),
			wantCalls: []string{"DeregisterImage ami-old"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objects := bundleObjects("bundles", "old", "image")
			for k := range bundleObjects("elsewhere", "old", "image") {
				objects[k] = true
			}
			f := &fakeAWS{images: []types.Image{tc.image}, objects: objects}
			state := new(multistep.BasicStateBag)
			ui := &packersdk.MockUi{}
			amibuild.StateUI.Put(state, ui)
			if tc.current != nil {
				stateBundle.Put(state, &bundled{Location: *tc.current})
			}
			old := &oldBundles{Region: "us-east-1", Bucket: "bundles", S3: func(string) bundlestore.DeleteAPI { return f }}
			s := &amibuild.StepDeregisterExisting{
				Region: "us-east-1", AMIName: "web", Force: tc.force,
				RemoveInBuildRegion: old.remove,
				EC2:                 func(string) image.DeregisterAPI { return f },
			}
			if a := s.Run(context.Background(), state); a != multistep.ActionContinue {
				err, _ := amibuild.StateError.Get(state)
				t.Fatalf("halted: %v", err)
			}
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.calls, tc.wantCalls)
			}
			if tc.wantWarn != "" && !strings.Contains(ui.ErrorMessage, tc.wantWarn) {
				t.Errorf("warning = %q, want one containing %q", ui.ErrorMessage, tc.wantWarn)
			}
			if tc.wantWarn == "" && ui.ErrorCalled {
				t.Errorf("unexpected warning %q", ui.ErrorMessage)
			}
		})
	}
}
