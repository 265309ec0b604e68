//go:build unix

package image

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// fakeEC2 implements the interfaces of this package with function fields
// and logs every call as "Operation arg,arg" so tests can assert sequences.
type fakeEC2 struct {
	describeImages  func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error)
	createImage     func(*ec2.CreateImageInput) (*ec2.CreateImageOutput, error)
	createTags      func(*ec2.CreateTagsInput) (*ec2.CreateTagsOutput, error)
	deregisterImage func(*ec2.DeregisterImageInput) (*ec2.DeregisterImageOutput, error)
	deleteSnapshot  func(*ec2.DeleteSnapshotInput) (*ec2.DeleteSnapshotOutput, error)
	modifyImageAttr func(*ec2.ModifyImageAttributeInput) (*ec2.ModifyImageAttributeOutput, error)

	mu    sync.Mutex
	calls []string
}

var _ interface {
	CreateAPI
	TagAPI
	DeregisterAPI
	ModifyAttributeAPI
} = (*fakeEC2)(nil)

func (f *fakeEC2) log(op string, args ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.TrimSpace(op+" "+strings.Join(args, ",")))
}

func (f *fakeEC2) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func unexpected(op string) error { return fmt.Errorf("fake: unexpected call to %s", op) }

func (f *fakeEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.log("DescribeImages", in.ImageIds...)
	if f.describeImages == nil {
		return nil, unexpected("DescribeImages")
	}
	return f.describeImages(in)
}

func (f *fakeEC2) CreateImage(_ context.Context, in *ec2.CreateImageInput, _ ...func(*ec2.Options)) (*ec2.CreateImageOutput, error) {
	f.log("CreateImage", aws.ToString(in.InstanceId), aws.ToString(in.Name))
	if f.createImage == nil {
		return nil, unexpected("CreateImage")
	}
	return f.createImage(in)
}

func (f *fakeEC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	args := append([]string(nil), in.Resources...)
	for _, t := range in.Tags {
		args = append(args, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	f.log("CreateTags", args...)
	if f.createTags == nil {
		return &ec2.CreateTagsOutput{}, nil
	}
	return f.createTags(in)
}

func (f *fakeEC2) DeregisterImage(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	f.log("DeregisterImage", aws.ToString(in.ImageId))
	if f.deregisterImage == nil {
		return &ec2.DeregisterImageOutput{}, nil
	}
	return f.deregisterImage(in)
}

func (f *fakeEC2) DeleteSnapshot(_ context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	f.log("DeleteSnapshot", aws.ToString(in.SnapshotId))
	if f.deleteSnapshot == nil {
		return &ec2.DeleteSnapshotOutput{}, nil
	}
	return f.deleteSnapshot(in)
}

func (f *fakeEC2) ModifyImageAttribute(_ context.Context, in *ec2.ModifyImageAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error) {
	var value string
	if in.ImdsSupport != nil {
		value = "ImdsSupport=" + aws.ToString(in.ImdsSupport.Value)
	}
	f.log("ModifyImageAttribute", aws.ToString(in.ImageId), value)
	if f.modifyImageAttr == nil {
		return &ec2.ModifyImageAttributeOutput{}, nil
	}
	return f.modifyImageAttr(in)
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " (fake)", Fault: smithy.FaultClient}
}

// img builds an image; snapshots become EBS block device mappings.
func img(id string, state types.ImageState, created string, snapshots ...string) types.Image {
	im := types.Image{ImageId: aws.String(id), Name: aws.String("name-" + id), State: state}
	if created != "" {
		im.CreationDate = aws.String(created)
	}
	for i, s := range snapshots {
		im.BlockDeviceMappings = append(im.BlockDeviceMappings, types.BlockDeviceMapping{
			DeviceName: aws.String(fmt.Sprintf("/dev/sd%c", 'a'+i)),
			Ebs:        &types.EbsBlockDevice{SnapshotId: aws.String(s)},
		})
	}
	return im
}

// sequence answers DescribeImages from a list of results, repeating the last.
func sequence(results ...func() (*ec2.DescribeImagesOutput, error)) func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
	var mu sync.Mutex
	i := 0
	return func(*ec2.DescribeImagesInput) (*ec2.DescribeImagesOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		r := results[min(i, len(results)-1)]
		i++
		return r()
	}
}

func images(imgs ...types.Image) func() (*ec2.DescribeImagesOutput, error) {
	return func() (*ec2.DescribeImagesOutput, error) { return &ec2.DescribeImagesOutput{Images: imgs}, nil }
}

func fails(err error) func() (*ec2.DescribeImagesOutput, error) {
	return func() (*ec2.DescribeImagesOutput, error) { return nil, err }
}

// fast makes retries quick for tests.
func fast(o *Options) {
	o.RetryDelay = time.Millisecond
	o.RetryMaxDelay = 2 * time.Millisecond
}

var quickWait = WaitOptions{MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxWait: 300 * time.Millisecond}
