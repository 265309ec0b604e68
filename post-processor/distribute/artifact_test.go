//go:build unix

package distribute

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
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
	amis, err := amiconfig.ParseArtifactID(a.Id())
	if err != nil || !maps.Equal(amis, a.Amis) {
		t.Fatalf("amiconfig.ParseArtifactID(Id()) = %v, %v; want %v", amis, err, a.Amis)
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

// TestArtifactHCPMetadataKeepsInputMetadata checks that the input AMIs'
// entries keep what the input artifact's builder said about them, in
// either form the metadata can arrive in.
func TestArtifactHCPMetadataKeepsInputMetadata(t *testing.T) {
	typed := []*registryimage.Image{{
		ImageID: "ami-0000000000000000a", ProviderName: "aws", ProviderRegion: "us-east-1", SourceImageID: "ami-0base",
		Labels: map[string]string{"source_ami_name": "al2023", "source_ami": "ami-0base", "build": "42"},
	}}
	overRPC := []any{map[string]any{
		"ImageID": "ami-0000000000000000a", "ProviderName": "aws", "ProviderRegion": "us-east-1", "SourceImageID": "ami-0base",
		"Labels": map[string]any{"source_ami_name": "al2023", "source_ami": "ami-0base", "build": "42"},
	}}
	tests := []struct {
		name  string
		state any
		want  bool // the input's metadata is carried forward
	}{
		{name: "typed", state: typed, want: true},
		{name: "maps over RPC", state: overRPC, want: true},
		{name: "none", state: nil},
		{name: "unreadable", state: "not metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &packersdk.MockArtifact{IdValue: "us-east-1:ami-0000000000000000a", StateValues: map[string]any{}}
			if tc.state != nil {
				in.StateValues[registryimage.ArtifactStateURI] = tc.state
			}
			a := testArtifact()
			a.InputImages = inputRegistryImages(in)
			got := a.State(registryimage.ArtifactStateURI).([]*registryimage.Image)
			byRegion := map[string]*registryimage.Image{}
			for _, img := range got {
				byRegion[img.ProviderRegion] = img
			}
			src := byRegion["us-east-1"]
			wantSrc := &registryimage.Image{ImageID: "ami-0000000000000000a", ProviderName: "aws", ProviderRegion: "us-east-1",
				Labels: map[string]string{"source_ami": "ami-0000000000000000a", "source_region": "us-east-1"}}
			if tc.want {
				wantSrc.SourceImageID = "ami-0base"
				wantSrc.Labels["source_ami_name"] = "al2023"
				wantSrc.Labels["build"] = "42"
			}
			if !reflect.DeepEqual(src, wantSrc) {
				t.Errorf("input AMI metadata:\n got %+v\nwant %+v", src, wantSrc)
			}
			if cp := byRegion["eu-west-1"]; cp.SourceImageID != "ami-0000000000000000a" || cp.Labels["build"] != "" {
				t.Errorf("copy metadata %+v: want the source AMI as parent and no input labels", cp)
			}
		})
	}
}

// TestArtifactAccountCopies lists the copies of target accounts in the
// HCP Packer metadata and the description, not in the ID.
func TestArtifactAccountCopies(t *testing.T) {
	a := testArtifact()
	id := a.Id()
	a.AccountAmis = map[string]map[string]string{"222222222222": {"eu-west-1": "ami-0000000000000000d"}}
	if a.Id() != id {
		t.Errorf("Id() = %q with account copies, want %q", a.Id(), id)
	}
	if s := a.String(); !strings.Contains(s, "account 222222222222, eu-west-1: ami-0000000000000000d (copy of ami-0000000000000000a)") {
		t.Errorf("String() lacks the account's copy:\n%s", s)
	}
	got := a.State(registryimage.ArtifactStateURI).([]*registryimage.Image)
	last := got[len(got)-1]
	want := &registryimage.Image{ImageID: "ami-0000000000000000d", ProviderName: "aws", ProviderRegion: "eu-west-1", SourceImageID: "ami-0000000000000000a",
		Labels: map[string]string{"source_ami": "ami-0000000000000000a", "source_region": "us-east-1", "copied": "true", "account_id": "222222222222"}}
	if len(got) != 4 || !reflect.DeepEqual(last, want) {
		t.Errorf("HCP metadata: %d images, last %v; want 4, last %v", len(got), last, want)
	}
	if err := last.Validate(); err != nil {
		t.Error(err)
	}
	// Destroy without access to the account says so.
	a.Copies = nil
	if err := a.Destroy(); err == nil || !strings.Contains(err.Error(), "no access to the account") {
		t.Errorf("Destroy() = %v, want an error about the account", err)
	}
}
