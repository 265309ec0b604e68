//go:build unix

package image_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

const region = "us-east-1"

var quick = image.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, MaxWait: 5 * time.Second}

// runSource starts an instance from a preloaded Amazon AMI found with Find,
// and terminates it when the test ends.
func runSource(t *testing.T, ctx context.Context, client *ec2.Client) string {
	t.Helper()
	src, err := image.Find(ctx, client, &image.FindInput{
		Owners:     []string{"amazon"},
		Filters:    map[string][]string{"architecture": {"x86_64"}, "root-device-type": {"ebs"}},
		MostRecent: true,
	})
	if err != nil {
		t.Fatalf("find a source AMI: %v", err)
	}
	run, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: src.Image.ImageId, InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	t.Cleanup(func() {
		if _, err := client.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
			t.Errorf("terminate %s: %v", id, err)
		}
	})
	return id
}

func tagsOf(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, tg := range tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

func TestImageLifecycleOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	client, _ := awstest.Clients(moto.Endpoint, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	instanceID := runSource(t, ctx, client)

	var l ledger.Ledger
	name := "lifecycle-" + time.Now().UTC().Format("20060102T150405")
	created, err := image.Create(ctx, client, &image.CreateInput{
		InstanceID: instanceID, Name: name, Description: "integration",
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String("stage"), Value: aws.String("new")}}}},
		Wait:              quick,
	}, func(o *image.Options) { o.Ledger = &l; o.Logf = t.Logf })
	if err != nil {
		t.Fatal(err)
	}
	if created.Image.State != types.ImageStateAvailable || len(created.SnapshotIDs) == 0 {
		t.Fatalf("created image %s is %s with snapshots %v", created.ImageID, created.Image.State, created.SnapshotIDs)
	}
	if got := l.Resources(); len(got) != 1 || got[0].ID != created.ImageID || got[0].Region != region {
		t.Errorf("ledger = %v, want the image", got)
	}

	_, err = image.Tag(ctx, client, &image.TagInput{
		ImageID:      created.ImageID,
		Tags:         map[string]string{"Name": name, "build": "b1"},
		SnapshotTags: map[string]string{"Name": name + "-root"},
	})
	if err != nil {
		t.Fatal(err)
	}
	found, err := image.Find(ctx, client, &image.FindInput{Owners: []string{"self"}, Filters: map[string][]string{"tag:build": {"b1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(found.Image.ImageId); got != created.ImageID {
		t.Fatalf("Find by tag = %s, want %s", got, created.ImageID)
	}
	if got, want := tagsOf(found.Image.Tags), map[string]string{"Name": name, "build": "b1", "stage": "new"}; !maps.Equal(got, want) {
		t.Errorf("image tags = %v, want %v", got, want)
	}
	snaps, err := client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: created.SnapshotIDs})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps.Snapshots {
		if got, want := tagsOf(s.Tags), map[string]string{"Name": name + "-root", "build": "b1"}; !maps.Equal(got, want) {
			t.Errorf("snapshot %s tags = %v, want %v", aws.ToString(s.SnapshotId), got, want)
		}
	}

	byName, err := image.FindByName(ctx, client, &image.FindByNameInput{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(byName.Images) != 1 || aws.ToString(byName.Images[0].ImageId) != created.ImageID {
		t.Errorf("FindByName = %d images, want %s", len(byName.Images), created.ImageID)
	}

	// A second image with the same tag makes the search ambiguous.
	second, err := image.Create(ctx, client, &image.CreateInput{InstanceID: instanceID, Name: name + "-2", Wait: quick})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := image.Tag(ctx, client, &image.TagInput{ImageID: second.ImageID, Tags: map[string]string{"build": "b1"}}); err != nil {
		t.Fatal(err)
	}
	_, err = image.Find(ctx, client, &image.FindInput{Owners: []string{"self"}, Filters: map[string][]string{"tag:build": {"b1"}}})
	if !errors.Is(err, image.ErrMultiple) {
		t.Errorf("Find with two matches = %v, want ErrMultiple", err)
	}
	if _, err := image.Find(ctx, client, &image.FindInput{Owners: []string{"self"}, Filters: map[string][]string{"tag:build": {"b1"}}, MostRecent: true}); err != nil {
		t.Errorf("Find most recent: %v", err)
	}

	// Hand the first image over, then undo: only the second (not in the
	// ledger) and the first (forgotten) must remain.
	l.Forget(ledger.KindImage, created.ImageID)
	if err := l.Undo(ctx); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{created.ImageID, second.ImageID} {
		out, err := image.Deregister(ctx, client, &image.DeregisterInput{ImageID: id, DeleteSnapshots: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.DeletedSnapshotIDs) == 0 {
			t.Errorf("Deregister(%s) deleted no snapshots", id)
		}
	}
	assertGone(t, ctx, client, created)
	if got, err := image.FindByName(ctx, client, &image.FindByNameInput{Name: name}); err != nil || len(got.Images) != 0 {
		t.Errorf("FindByName after deregister = %d images, %v; want none", len(got.Images), err)
	}
	// Deregistering again is not an error.
	if _, err := image.Deregister(ctx, client, &image.DeregisterInput{ImageID: created.ImageID, DeleteSnapshots: true}); err != nil {
		t.Errorf("second Deregister: %v", err)
	}
	_, err = image.Find(ctx, client, &image.FindInput{Owners: []string{"self"}, Filters: map[string][]string{"tag:build": {"b1"}}})
	if !errors.Is(err, image.ErrNotFound) {
		t.Errorf("Find after deregister = %v, want ErrNotFound", err)
	}
}

func TestCreateUndoOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	client, _ := awstest.Clients(moto.Endpoint, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	instanceID := runSource(t, ctx, client)

	var l ledger.Ledger
	created, err := image.Create(ctx, client, &image.CreateInput{InstanceID: instanceID, Name: "undo-me", Wait: quick},
		func(o *image.Options) { o.Ledger = &l })
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Undo(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 0 {
		t.Errorf("ledger keeps %v after Undo", l.Resources())
	}
	assertGone(t, ctx, client, created)

	// Waiting for an image that is gone ends with a typed error after MaxWait.
	_, err = image.Wait(ctx, client, &image.WaitInput{ImageID: created.ImageID, Region: region, Wait: image.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxWait: 300 * time.Millisecond}})
	var se *image.StateError
	if !errors.As(err, &se) || se.ImageID != created.ImageID || !errors.Is(err, image.ErrWaitTimeout) {
		t.Errorf("Wait for a deregistered image = %v, want a *StateError timeout", err)
	}
}

func assertGone(t *testing.T, ctx context.Context, client *ec2.Client, created *image.CreateOutput) {
	t.Helper()
	out, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{created.ImageID}})
	if err == nil && slices.ContainsFunc(out.Images, func(im types.Image) bool { return im.State != types.ImageStateDeregistered }) {
		t.Errorf("image %s still exists", created.ImageID)
	}
	for _, snap := range created.SnapshotIDs {
		_, err := client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSnapshot.NotFound" {
			t.Errorf("snapshot %s: DescribeSnapshots = %v, want InvalidSnapshot.NotFound", snap, err)
		}
	}
}

// TestSetIMDSSupportOnMoto sets IMDS support on a new image. moto accepts
// the attribute but cannot describe it (DescribeImageAttribute imdsSupport
// answers HTTP 500), so the request is checked through a recording proxy.
func TestSetIMDSSupportOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	proxy := awstest.NewProxy(t, moto.Endpoint, awstest.ProxyOptions{})
	client, _ := awstest.Clients(proxy.URL, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	instanceID := runSource(t, ctx, client)
	created, err := image.Create(ctx, client, &image.CreateInput{InstanceID: instanceID, Name: "imds-" + time.Now().UTC().Format("20060102T150405.000"), Wait: quick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := image.Deregister(context.Background(), client, &image.DeregisterInput{ImageID: created.ImageID, DeleteSnapshots: true}); err != nil {
			t.Errorf("deregister %s: %v", created.ImageID, err)
		}
	})

	if _, err := image.SetIMDSSupport(ctx, client, &image.SetIMDSSupportInput{ImageID: created.ImageID}); err != nil {
		t.Fatal(err)
	}
	calls := proxy.CallsFor("ec2", "ModifyImageAttribute")
	if len(calls) != 1 || calls[0].Params.Get("ImageId") != created.ImageID || calls[0].Params.Get("ImdsSupport.Value") != image.IMDSv2 || calls[0].Region != region {
		t.Errorf("ModifyImageAttribute calls = %v", calls)
	}

	_, err = image.SetIMDSSupport(ctx, client, &image.SetIMDSSupportInput{ImageID: "ami-0123456789abcdef0"})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAMIID.NotFound" || !strings.Contains(err.Error(), "ami-0123456789abcdef0 in "+region) {
		t.Errorf("SetIMDSSupport of a missing image = %v, want InvalidAMIID.NotFound naming image and region", err)
	}
}
