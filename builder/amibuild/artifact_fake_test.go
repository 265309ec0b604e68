//go:build unix

package amibuild

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// fakeDeregister answers DescribeImages with images and logs every call.
type fakeDeregister struct {
	images map[string]types.Image

	mu    sync.Mutex
	calls []string
}

var _ image.DeregisterAPI = (*fakeDeregister)(nil)

func (f *fakeDeregister) log(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeDeregister) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.log(fmt.Sprint("DescribeImages ", in.ImageIds))
	out := &ec2.DescribeImagesOutput{}
	for _, id := range in.ImageIds {
		if img, ok := f.images[id]; ok {
			out.Images = append(out.Images, img)
		}
	}
	return out, nil
}

func (f *fakeDeregister) DeregisterImage(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	f.log("DeregisterImage " + aws.ToString(in.ImageId))
	return &ec2.DeregisterImageOutput{}, nil
}

func (f *fakeDeregister) DeleteSnapshot(_ context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	f.log("DeleteSnapshot " + aws.ToString(in.SnapshotId))
	return &ec2.DeleteSnapshotOutput{}, nil
}

func imageWithSnapshots(id string, snaps ...string) types.Image {
	img := types.Image{ImageId: aws.String(id), State: types.ImageStateAvailable}
	for i, s := range snaps {
		img.BlockDeviceMappings = append(img.BlockDeviceMappings, types.BlockDeviceMapping{
			DeviceName: aws.String(fmt.Sprintf("/dev/sd%c", 'a'+i)),
			Ebs:        &types.EbsBlockDevice{SnapshotId: aws.String(s)},
		})
	}
	return img
}

func TestArtifactDestroyKeepsGivenSnapshots(t *testing.T) {
	tests := []struct {
		name      string
		keep      []string
		wantCalls []string
	}{
		{
			name:      "deletes the AMI's own snapshots",
			wantCalls: []string{"DescribeImages [ami-1]", "DeregisterImage ami-1", "DeleteSnapshot snap-own", "DeleteSnapshot snap-user"},
		},
		{
			name:      "keeps the snapshots the mappings were given",
			keep:      []string{"snap-user"},
			wantCalls: []string{"DescribeImages [ami-1]", "DeregisterImage ami-1", "DeleteSnapshot snap-own"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDeregister{images: map[string]types.Image{"ami-1": imageWithSnapshots("ami-1", "snap-own", "snap-user")}}
			a := &Artifact{
				Amis:            map[string]string{"us-east-1": "ami-1"},
				EC2:             func(string) image.DeregisterAPI { return f },
				KeepSnapshotIDs: tc.keep,
			}
			if err := a.Destroy(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.calls, tc.wantCalls)
			}
		})
	}
}

func TestBlockDevicesSnapshotIDs(t *testing.T) {
	bs := BlockDevices{
		{DeviceName: "/dev/sdb", SnapshotID: "snap-0aaaaaaaaaaaaaaaa"},
		{DeviceName: "/dev/sdc", VolumeSize: 8},
		{DeviceName: "/dev/sdd", SnapshotID: "snap-0aaaaaaaaaaaaaaaa"},
		{DeviceName: "/dev/sde", SnapshotID: "snap-0bbbbbbbbbbbbbbbb"},
	}
	want := []string{"snap-0aaaaaaaaaaaaaaaa", "snap-0bbbbbbbbbbbbbbbb"}
	if got := bs.SnapshotIDs(); !slices.Equal(got, want) {
		t.Errorf("SnapshotIDs() = %v, want %v", got, want)
	}
}
