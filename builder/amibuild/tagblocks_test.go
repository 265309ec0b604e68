//go:build unix

package amibuild

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/template/config"
)

func TestMergeTagBlocks(t *testing.T) {
	tests := []struct {
		name    string
		m       map[string]string
		blocks  config.KeyValues
		want    map[string]string
		wantErr []string
	}{
		{name: "blocks only", blocks: config.KeyValues{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}, want: map[string]string{"a": "1", "b": "2"}},
		{name: "map and blocks", m: map[string]string{"a": "1"}, blocks: config.KeyValues{{Key: "b", Value: "2"}}, want: map[string]string{"a": "1", "b": "2"}},
		{name: "nothing", want: nil},
		{name: "key in both", m: map[string]string{"a": "1"}, blocks: config.KeyValues{{Key: "a", Value: "2"}}, wantErr: []string{"tags, tag", `"a"`, "both"}},
		{name: "key twice in blocks", blocks: config.KeyValues{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}, wantErr: []string{"tag[1]", `"a"`, "earlier"}},
		{name: "empty key", blocks: config.KeyValues{{Key: " ", Value: "1"}}, wantErr: []string{"tag[0].key: required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := maps.Clone(tc.m)
			err := errors.Join(mergeTagBlocks("tags", "tag", &m, tc.blocks)...)
			if len(tc.wantErr) > 0 {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(m, tc.want) {
				t.Errorf("tags = %v, want %v", m, tc.want)
			}
		})
	}
}
