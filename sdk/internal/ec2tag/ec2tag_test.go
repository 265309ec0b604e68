package ec2tag

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestTagsSortedByKey(t *testing.T) {
	got := Tags(map[string]string{"b": "2", "a": "1", "c": ""})
	want := []string{"a=1", "b=2", "c="}
	if len(got) != len(want) {
		t.Fatalf("Tags = %d tags, want %d", len(got), len(want))
	}
	for i, tg := range got {
		if s := aws.ToString(tg.Key) + "=" + aws.ToString(tg.Value); s != want[i] {
			t.Errorf("tag %d = %s, want %s", i, s, want[i])
		}
	}
	if got := Tags(nil); got == nil || len(got) != 0 {
		t.Errorf("Tags(nil) = %#v, want an empty non-nil slice", got)
	}
}

func TestSpec(t *testing.T) {
	if got := Spec(types.ResourceTypeImage, nil); got != nil {
		t.Errorf("Spec of no tags = %+v, want nil", got)
	}
	got := Spec(types.ResourceTypeSnapshot, map[string]string{"k": "v"})
	if len(got) != 1 || got[0].ResourceType != types.ResourceTypeSnapshot || len(got[0].Tags) != 1 || aws.ToString(got[0].Tags[0].Key) != "k" {
		t.Errorf("Spec = %+v", got)
	}
}
