//go:build unix

package awstest

import (
	"bytes"
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestLeaks runs against a moto with its preloaded AMIs (and their ~1,160
// snapshots per region), as the end-to-end tests do.
func TestLeaks(t *testing.T) {
	ctx := context.Background()
	m := NewMoto(t, MotoOptions{})
	regions := []string{"us-east-1", "eu-west-1"}
	ec2c, _ := Clients(m.Endpoint, "eu-west-1")
	_, s3c := Clients(m.Endpoint, "us-east-1")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Pre-existing resources must never be reported.
	must(ec2c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("pre-existing")}))
	must(s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("user-bucket")}))
	must(s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("user-bucket"), Key: aws.String("keep"), Body: strings.NewReader("x")}))
	iamc := IAMClient(m.Endpoint, "us-east-1")
	trust := aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	must(iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("user-role"), AssumeRolePolicyDocument: trust}))
	must(iamc.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("user-profile")}))

	start := time.Now()
	base, err := TakeSnapshot(ctx, m.Endpoint, regions)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TakeSnapshot of %d regions with preloaded AMIs: %s", len(regions), time.Since(start))
	if got := base.Resources().KeyPairs; !reflect.DeepEqual(got, []string{"eu-west-1:pre-existing"}) {
		t.Errorf("baseline key pairs = %v", got)
	}
	leaks, err := ListLeaks(ctx, m.Endpoint, regions, base)
	if err != nil {
		t.Fatal(err)
	}
	if !leaks.Empty() || leaks.String() != "no leaks" {
		t.Fatalf("leaks right after the baseline: %s", leaks)
	}

	// Create one of everything.
	// moto accepts any AMI id here (listing the preloaded ones costs seconds).
	run, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	instID := aws.ToString(run.Instances[0].InstanceId)
	img, err := ec2c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(instID), Name: aws.String("leak-test")})
	if err != nil {
		t.Fatal(err)
	}
	imgID := aws.ToString(img.ImageId)
	desc, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imgID}})
	if err != nil || len(desc.Images) != 1 {
		t.Fatalf("describe new image: %v", err)
	}
	imgSnaps := snapshotIDs(desc.Images[0])
	must(ec2c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("temp-kp")}))
	sg, err := ec2c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("temp-sg"), Description: aws.String("leak test")})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := ec2c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("eu-west-1a"), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	lt, err := ec2c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("temp-lt"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
		ImageId: aws.String("ami-12345678"), InstanceType: ec2types.InstanceTypeT3Micro}})
	if err != nil {
		t.Fatal(err)
	}
	ltID := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	fleet, err := ec2c.CreateFleet(ctx, &ec2.CreateFleetInput{Type: ec2types.FleetTypeInstant,
		TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: ec2types.DefaultTargetCapacityTypeSpot},
		LaunchTemplateConfigs:       []ec2types.FleetLaunchTemplateConfigRequest{{LaunchTemplateSpecification: &ec2types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateId: aws.String(ltID), Version: aws.String("1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	fleetID := aws.ToString(fleet.FleetId)
	fleetInst := fleet.Instances[0].InstanceIds[0]
	must(s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("temp-bucket")}))
	must(s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("user-bucket"), Key: aws.String("bundle/part.0"), Body: bytes.NewReader([]byte("part"))}))
	mpu, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("user-bucket"), Key: aws.String("bundle/big")})
	if err != nil {
		t.Fatal(err)
	}

	must(iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("temp-role"), Path: aws.String("/builds/"), AssumeRolePolicyDocument: trust}))
	must(iamc.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("temp-profile")}))

	leaks, err = ListLeaks(ctx, m.Endpoint, regions, base)
	if err != nil {
		t.Fatal(err)
	}
	r := func(ids ...string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = "eu-west-1:" + id
		}
		return out
	}
	want := Leaks{
		Instances:        r(sortedIDs(instID, fleetInst)...),
		KeyPairs:         r("temp-kp"),
		SecurityGroups:   r(aws.ToString(sg.GroupId)),
		Images:           r(imgID),
		Snapshots:        r(imgSnaps...),
		LaunchTemplates:  r(ltID),
		Fleets:           r(fleetID),
		S3Buckets:        []string{"temp-bucket"},
		S3Objects:        []string{"user-bucket/bundle/part.0"},
		MultipartUploads: []string{"user-bucket/bundle/big#" + aws.ToString(mpu.UploadId)},
		IAMRoles:         []string{"arn:aws:iam::" + TestAccountID + ":role/builds/temp-role"},
		IAMProfiles:      []string{"arn:aws:iam::" + TestAccountID + ":instance-profile/temp-profile"},
	}
	// The instance's root volume (if moto makes one) and our volume.
	gotVols := leaks.Volumes
	leaks.Volumes = nil
	if !reflect.DeepEqual(leaks, want) {
		t.Errorf("leaks:\n%s\nwant:\n%s", leaks, want)
	}
	if !containsAll(gotVols, r(aws.ToString(vol.VolumeId))) {
		t.Errorf("volumes %v lack the created one", gotVols)
	}
	leaks.Volumes = gotVols
	if leaks.Empty() || leaks.Count() < 11 || !strings.Contains(leaks.String(), "1 key pairs: eu-west-1:temp-kp") {
		t.Errorf("String() = %s", leaks)
	}

	// Clean everything up: no leaks again.
	must(ec2c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{instID}}))
	// Deleting the fleet terminates its instance.
	must(ec2c.DeleteFleets(ctx, &ec2.DeleteFleetsInput{FleetIds: []string{fleetID}, TerminateInstances: aws.Bool(true)}))
	must(ec2c.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(ltID)}))
	must(ec2c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(imgID)}))
	for _, s := range imgSnaps {
		must(ec2c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s)}))
	}
	must(ec2c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("temp-kp")}))
	must(ec2c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}))
	// Terminating the instance deleted its root volume.
	must(ec2c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: vol.VolumeId}))
	must(s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("temp-bucket")}))
	must(s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("user-bucket"), Key: aws.String("bundle/part.0")}))
	must(s3c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("user-bucket"), Key: aws.String("bundle/big"), UploadId: mpu.UploadId}))
	must(iamc.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("temp-role")}))
	must(iamc.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String("temp-profile")}))

	start = time.Now()
	leaks, err = ListLeaks(ctx, m.Endpoint, regions, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ListLeaks of %d regions: %s", len(regions), time.Since(start))
	if !leaks.Empty() {
		t.Errorf("leaks after cleanup:\n%s", leaks)
	}
}

func TestListLeaksErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := ListLeaks(ctx, sharedMoto.Endpoint, nil, nil); err == nil {
		t.Error("ListLeaks without regions succeeded")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TakeSnapshot(ctx, "http://127.0.0.1:"+itoa(port), []string{"us-east-1"}); err == nil {
		t.Error("TakeSnapshot against a closed port succeeded")
	}
}

func sortedIDs(ids ...string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}

func snapshotIDs(img ec2types.Image) []string {
	var ids []string
	for _, b := range img.BlockDeviceMappings {
		if b.Ebs != nil && b.Ebs.SnapshotId != nil {
			ids = append(ids, *b.Ebs.SnapshotId)
		}
	}
	return ids
}

func containsAll(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}
