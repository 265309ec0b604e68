package distribute_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

// memCloud is an in-memory EC2 of several regions: AMIs are available as
// soon as they are made, and have no snapshots.
type memCloud struct {
	mu     sync.Mutex
	images map[string]*memImage // by AMI ID
	made   int
}

type memImage struct {
	region string
	image  types.Image
}

// memEC2 is one region's client of a memCloud, with just the calls of
// distribute.CopyAPI; a program passes an *ec2.Client instead.
type memEC2 struct {
	cloud  *memCloud
	region string
}

var _ distribute.CopyAPI = (*memEC2)(nil)

// add registers an available AMI named name in region.
func (c *memCloud) add(region, id, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.images[id] = &memImage{region: region, image: types.Image{
		ImageId: aws.String(id), Name: aws.String(name), State: types.ImageStateAvailable,
	}}
}

// matches reports whether img is in e's region and selected by in.
func (e *memEC2) matches(img *memImage, in *ec2.DescribeImagesInput) bool {
	if img.region != e.region || len(in.ImageIds) > 0 && !slices.Contains(in.ImageIds, aws.ToString(img.image.ImageId)) {
		return false
	}
	for _, f := range in.Filters {
		if aws.ToString(f.Name) == "name" && !slices.Contains(f.Values, aws.ToString(img.image.Name)) {
			return false
		}
	}
	return true
}

func (e *memEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	e.cloud.mu.Lock()
	defer e.cloud.mu.Unlock()
	out := &ec2.DescribeImagesOutput{}
	for _, img := range e.cloud.images {
		if e.matches(img, in) {
			out.Images = append(out.Images, img.image)
		}
	}
	return out, nil
}

func (e *memEC2) DescribeRegions(context.Context, *ec2.DescribeRegionsInput, ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	out := &ec2.DescribeRegionsOutput{}
	for _, r := range []string{"us-east-1", "eu-west-1", "ap-southeast-2"} {
		out.Regions = append(out.Regions, types.Region{RegionName: aws.String(r)})
	}
	return out, nil
}

func (e *memEC2) CopyImage(_ context.Context, in *ec2.CopyImageInput, _ ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	e.cloud.mu.Lock()
	defer e.cloud.mu.Unlock()
	e.cloud.made++
	id := fmt.Sprintf("ami-%017d", e.cloud.made)
	img := types.Image{ImageId: aws.String(id), Name: in.Name, State: types.ImageStateAvailable}
	for _, spec := range in.TagSpecifications {
		if spec.ResourceType == types.ResourceTypeImage {
			img.Tags = append(img.Tags, spec.Tags...)
		}
	}
	e.cloud.images[id] = &memImage{region: e.region, image: img}
	return &ec2.CopyImageOutput{ImageId: aws.String(id)}, nil
}

func (e *memEC2) ModifyImageAttribute(context.Context, *ec2.ModifyImageAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error) {
	return &ec2.ModifyImageAttributeOutput{}, nil
}

func (e *memEC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	e.cloud.mu.Lock()
	defer e.cloud.mu.Unlock()
	for _, id := range in.Resources {
		if img, ok := e.cloud.images[id]; ok {
			img.image.Tags = append(img.image.Tags, in.Tags...)
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}

func (e *memEC2) DeregisterImage(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	e.cloud.mu.Lock()
	defer e.cloud.mu.Unlock()
	delete(e.cloud.images, aws.ToString(in.ImageId))
	return &ec2.DeregisterImageOutput{}, nil
}

// The AMIs of a memCloud have no snapshots, and it keeps no snapshot
// permissions, deprecation times or protection.

func (e *memEC2) DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	return &ec2.DescribeSnapshotsOutput{}, nil
}

func (e *memEC2) ModifySnapshotAttribute(context.Context, *ec2.ModifySnapshotAttributeInput, ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error) {
	return &ec2.ModifySnapshotAttributeOutput{}, nil
}

func (e *memEC2) DeleteSnapshot(context.Context, *ec2.DeleteSnapshotInput, ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	return &ec2.DeleteSnapshotOutput{}, nil
}

func (e *memEC2) EnableImageDeprecation(context.Context, *ec2.EnableImageDeprecationInput, ...func(*ec2.Options)) (*ec2.EnableImageDeprecationOutput, error) {
	return &ec2.EnableImageDeprecationOutput{}, nil
}

func (e *memEC2) EnableImageDeregistrationProtection(context.Context, *ec2.EnableImageDeregistrationProtectionInput, ...func(*ec2.Options)) (*ec2.EnableImageDeregistrationProtectionOutput, error) {
	return &ec2.EnableImageDeregistrationProtectionOutput{}, nil
}

func (e *memEC2) DisableImageDeregistrationProtection(context.Context, *ec2.DisableImageDeregistrationProtectionInput, ...func(*ec2.Options)) (*ec2.DisableImageDeregistrationProtectionOutput, error) {
	return &ec2.DisableImageDeregistrationProtectionOutput{}, nil
}

// Copy an AMI to two regions, one after the other, share the copies with
// an account and tag them. Copy takes a function returning each region's
// client; a program passes an awscfg.Session's EC2 method value.
func ExampleCopy() {
	ctx := context.Background()
	cloud := &memCloud{images: map[string]*memImage{}}
	cloud.add("us-east-1", "ami-0123456789abcdef0", "app-1")
	clients := func(region string) *memEC2 { return &memEC2{cloud: cloud, region: region} }

	out, err := distribute.Copy(ctx, clients, &distribute.CopyInput{
		SourceImageID: "ami-0123456789abcdef0",
		SourceRegion:  "us-east-1",
		Targets:       []distribute.Target{{Region: "eu-west-1"}, {Region: "ap-southeast-2", Name: "app-1-ap"}},
		Permissions:   distribute.Permissions{Accounts: []string{"210987654321"}},
		Tags:          map[string]string{"App": "example"},
		Concurrency:   1,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, r := range out.Results {
		img, err := clients(r.Region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{r.ImageID}})
		if err != nil || len(img.Images) != 1 {
			fmt.Println("error: describe", r.ImageID, err)
			return
		}
		app := ""
		for _, t := range img.Images[0].Tags {
			if aws.ToString(t.Key) == "App" {
				app = aws.ToString(t.Value)
			}
		}
		fmt.Printf("%s %s %s %q App=%s shared with %v\n", r.Region, r.Status, r.ImageID, r.Name, app, r.SharedWith.Accounts)
	}
	// Output:
	// eu-west-1 available ami-00000000000000001 "app-1" App=example shared with [210987654321]
	// ap-southeast-2 available ami-00000000000000002 "app-1-ap" App=example shared with [210987654321]
}
