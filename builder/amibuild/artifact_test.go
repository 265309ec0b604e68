//go:build unix

package amibuild

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

func TestArtifactDescribes(t *testing.T) {
	a := &Artifact{
		Amis:           map[string]string{"us-west-2": "ami-0bbbbbbbbbbbbbbbb", "eu-west-1": "ami-0aaaaaaaaaaaaaaaa"},
		BuilderIdValue: "test.builder",
		SourceAMI:      "ami-0ccccccccccccccc0",
		StateData: map[string]any{"generated_data": map[string]any{
			"SourceAMIName": "debian-12", "BuildRegion": "eu-west-1", "Empty": "", "NotAString": 3,
		}},
	}
	if got, want := a.Id(), "eu-west-1:ami-0aaaaaaaaaaaaaaaa,us-west-2:ami-0bbbbbbbbbbbbbbbb"; got != want {
		t.Errorf("Id() = %q, want %q", got, want)
	}
	if got := a.String(); !strings.Contains(got, "eu-west-1: ami-0aaaaaaaaaaaaaaaa") || !strings.Contains(got, "us-west-2: ami-0bbbbbbbbbbbbbbbb") {
		t.Errorf("String() = %q", got)
	}
	if a.BuilderId() != "test.builder" || a.Files() != nil {
		t.Errorf("BuilderId %q, Files %v", a.BuilderId(), a.Files())
	}
	if gd, ok := a.State("generated_data").(map[string]any); !ok || gd["SourceAMIName"] != "debian-12" {
		t.Errorf("State(generated_data) = %v", a.State("generated_data"))
	}
	if a.State("nothing") != nil {
		t.Error("State of an unknown name is not nil")
	}

	imgs, ok := a.State(registryimage.ArtifactStateURI).([]*registryimage.Image)
	if !ok || len(imgs) != 2 {
		t.Fatalf("registry metadata = %#v", a.State(registryimage.ArtifactStateURI))
	}
	want := []struct{ region, id string }{{"eu-west-1", "ami-0aaaaaaaaaaaaaaaa"}, {"us-west-2", "ami-0bbbbbbbbbbbbbbbb"}}
	for i, img := range imgs {
		if err := img.Validate(); err != nil {
			t.Errorf("image %d: %v", i, err)
		}
		if img.ProviderName != "aws" || img.ProviderRegion != want[i].region || img.ImageID != want[i].id || img.SourceImageID != a.SourceAMI {
			t.Errorf("image %d = %+v", i, img)
		}
		if img.Labels["SourceAMIName"] != "debian-12" || len(img.Labels) != 2 {
			t.Errorf("image %d labels = %v; want the non-empty string generated data", i, img.Labels)
		}
	}
}

func TestArtifactDestroy(t *testing.T) {
	e := newTestEnv(t)
	src := sourceImage(t, e.ec2)
	id, snaps := createImage(t, e.ec2, aws.ToString(src.ImageId), uniqueName(t))
	a := &Artifact{
		Amis: map[string]string{testRegion: id},
		EC2:  func(region string) image.DeregisterAPI { return e.sess.EC2(region) },
	}
	if err := a.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if imageExists(t, e.ec2, id) {
		t.Errorf("image %s still registered after Destroy", id)
	}
	for _, s := range snaps {
		if snapshotExists(t, e.ec2, s) {
			t.Errorf("snapshot %s kept by Destroy", s)
		}
	}
	// Only the AMI and its snapshots: no instance, key pair or group calls.
	for _, act := range e.actions() {
		switch act {
		case "DescribeImages", "DeregisterImage", "DeleteSnapshot":
		default:
			t.Errorf("Destroy made an unexpected %s call", act)
		}
	}
	if err := (&Artifact{Amis: map[string]string{testRegion: id}}).Destroy(); err == nil {
		t.Error("Destroy without AWS access: want an error")
	}
}
