package distribute

import (
	"reflect"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"
)

var _ packersdk.Artifact = (*Artifact)(nil)

func testArtifact() *Artifact {
	return &Artifact{
		Amis:         map[string]string{"us-east-1": "ami-0000000000000000a", "eu-west-1": "ami-0000000000000000b", "ap-southeast-2": "ami-0000000000000000c"},
		Copies:       map[string]string{"eu-west-1": "ami-0000000000000000b", "ap-southeast-2": "ami-0000000000000000c"},
		SourceAMI:    "ami-0000000000000000a",
		SourceRegion: "us-east-1",
	}
}

func TestArtifactIDAndString(t *testing.T) {
	a := testArtifact()
	want := "ap-southeast-2:ami-0000000000000000c,eu-west-1:ami-0000000000000000b,us-east-1:ami-0000000000000000a"
	if got := a.Id(); got != want {
		t.Errorf("Id() = %q, want %q", got, want)
	}
	// The ID round-trips through the parser other post-processors use.
	amis, err := ParseArtifactID(a.Id())
	if err != nil || len(amis) != 3 {
		t.Fatalf("ParseArtifactID(Id()) = %v, %v", amis, err)
	}
	s := a.String()
	for _, w := range []string{"us-east-1: ami-0000000000000000a (source)", "eu-west-1: ami-0000000000000000b (copy of ami-0000000000000000a)"} {
		if !strings.Contains(s, w) {
			t.Errorf("String() lacks %q:\n%s", w, s)
		}
	}
	if a.BuilderId() != BuilderId || a.Files() != nil {
		t.Errorf("BuilderId/Files = %q/%v", a.BuilderId(), a.Files())
	}
}

func TestArtifactHCPMetadata(t *testing.T) {
	a := testArtifact()
	got, ok := a.State(registryimage.ArtifactStateURI).([]*registryimage.Image)
	if !ok {
		t.Fatalf("State(%s) = %T, want []*registryimage.Image", registryimage.ArtifactStateURI, a.State(registryimage.ArtifactStateURI))
	}
	want := []*registryimage.Image{
		{ImageID: "ami-0000000000000000c", ProviderName: "aws", ProviderRegion: "ap-southeast-2", SourceImageID: "ami-0000000000000000a",
			Labels: map[string]string{"source_ami": "ami-0000000000000000a", "source_region": "us-east-1", "copied": "true"}},
		{ImageID: "ami-0000000000000000b", ProviderName: "aws", ProviderRegion: "eu-west-1", SourceImageID: "ami-0000000000000000a",
			Labels: map[string]string{"source_ami": "ami-0000000000000000a", "source_region": "us-east-1", "copied": "true"}},
		{ImageID: "ami-0000000000000000a", ProviderName: "aws", ProviderRegion: "us-east-1",
			Labels: map[string]string{"source_ami": "ami-0000000000000000a", "source_region": "us-east-1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HCP metadata:\n got %v\nwant %v", got, want)
	}
	for _, img := range got {
		if err := img.Validate(); err != nil {
			t.Errorf("image %s: %v", img.ImageID, err)
		}
	}
	if v := a.State("something-else"); v != nil {
		t.Errorf("State(other) = %v, want nil", v)
	}
}

func TestArtifactDestroyWithoutCopies(t *testing.T) {
	a := &Artifact{Amis: map[string]string{"us-east-1": "ami-0000000000000000a"}}
	if err := a.Destroy(); err != nil {
		t.Errorf("Destroy with no copies: %v", err)
	}
	a.Copies = map[string]string{"eu-west-1": "ami-0000000000000000b"}
	if err := a.Destroy(); err == nil {
		t.Error("Destroy with copies but no AWS access succeeded")
	}
}
