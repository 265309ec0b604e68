//go:build unix

package bundlestore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
)

// bystanders are objects near a bundle named "root.img" under prefix "p"
// that Delete must leave alone.
var bystanders = []string{
	"p/root.img2.part.0",
	"p/root.img2.manifest.xml",
	"p/root.img.part.0.bak",
	"p/root.img.partx",
	"p/root.img.manifest.xml.old",
	"p/sub/root.img.part.0",
	"root.img.part.0",
	"p/notes.txt",
}

func TestDelete(t *testing.T) {
	b := sharedBundle(t, threeParts)
	upload := func(t *testing.T, f *fakeS3) {
		t.Helper()
		if _, err := Upload(context.Background(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt", Prefix: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	bundleKeys := append(b.partKeys("p"), "p/root.img.manifest.xml")

	tests := []struct {
		name        string
		prepare     func(t *testing.T, f *fakeS3)
		byPrefix    bool
		wantFrom    bool
		wantGone    []string
		wantStays   []string
		wantSkipped []string
	}{
		{
			name:     "from manifest",
			prepare:  upload,
			wantFrom: true,
			wantGone: bundleKeys,
		},
		{
			name: "from manifest, listed parts only",
			prepare: func(t *testing.T, f *fakeS3) {
				upload(t, f)
				f.Set("p/root.img.part.7", []byte("stray"))
			},
			wantFrom:  true,
			wantGone:  bundleKeys,
			wantStays: []string{"p/root.img.part.7"},
		},
		{
			name: "manifest gone",
			prepare: func(t *testing.T, f *fakeS3) {
				upload(t, f)
				f.mu.Lock()
				delete(f.objects, "p/root.img.manifest.xml")
				f.mu.Unlock()
				f.Set("p/root.img.part.7", []byte("stray"))
			},
			wantGone: append(b.partKeys("p"), "p/root.img.part.7"),
		},
		{
			name: "by prefix",
			prepare: func(t *testing.T, f *fakeS3) {
				upload(t, f)
				f.Set("p/root.img.part.7", []byte("stray"))
			},
			byPrefix: true,
			wantGone: append(bundleKeys, "p/root.img.part.7"),
		},
		{
			name: "manifest lists objects of others",
			prepare: func(t *testing.T, f *fakeS3) {
				upload(t, f)
				f.Set("p/root.img.manifest.xml", manifestListing(t, b.Manifest, "root.img",
					"root.img2.part.0", "notes.txt", "root.img.part.0.bak", "root.img.manifest.xml.old"))
			},
			wantFrom:    true,
			wantGone:    bundleKeys,
			wantSkipped: []string{"p/notes.txt", "p/root.img.manifest.xml.old", "p/root.img.part.0.bak", "p/root.img2.part.0"},
		},
		{
			name: "manifest of another bundle name",
			prepare: func(t *testing.T, f *fakeS3) {
				upload(t, f)
				f.Set("p/root.img.manifest.xml", manifestListing(t, b.Manifest, "root.img2", "root.img2.part.0"))
			},
			wantFrom:    true,
			wantGone:    []string{"p/root.img.manifest.xml"},
			wantStays:   b.partKeys("p"),
			wantSkipped: append(b.partKeys("p"), "p/root.img2.part.0"),
		},
		{
			name:    "nothing there",
			prepare: func(t *testing.T, f *fakeS3) {},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3("bkt")
			f.ListPageSize = 3
			for _, k := range bystanders {
				f.Set(k, []byte("keep"))
			}
			tc.prepare(t, f)
			var logged []string
			logf := func(o *Options) {
				o.Logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
			}
			out, err := Delete(context.Background(), f, &DeleteInput{Bucket: "bkt", Prefix: "p", Name: "root.img", ByPrefix: tc.byPrefix}, logf)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.wantSkipped {
				if !slices.ContainsFunc(logged, func(l string) bool { return strings.Contains(l, k) }) {
					t.Errorf("log %q does not name skipped key %s", logged, k)
				}
			}
			if out.FromManifest != tc.wantFrom {
				t.Errorf("FromManifest = %v, want %v", out.FromManifest, tc.wantFrom)
			}
			got := slices.Sorted(slices.Values(out.Deleted))
			if want := slices.Sorted(slices.Values(tc.wantGone)); !slices.Equal(got, want) {
				t.Errorf("Deleted = %v, want %v", got, want)
			}
			if n := len(out.Deleted); n > 0 && out.Deleted[n-1] != "p/root.img.manifest.xml" && slices.Contains(tc.wantGone, "p/root.img.manifest.xml") {
				t.Errorf("manifest not deleted last: %v", out.Deleted)
			}
			if got, want := slices.Sorted(slices.Values(out.Skipped)), slices.Sorted(slices.Values(tc.wantSkipped)); !slices.Equal(got, want) {
				t.Errorf("Skipped = %v, want %v", got, want)
			}
			want := slices.Sorted(slices.Values(append(slices.Clone(bystanders), tc.wantStays...)))
			if got := f.Keys(); !slices.Equal(got, want) {
				t.Errorf("bucket after delete: %v, want %v", got, want)
			}
		})
	}
}

// manifestListing returns m's bytes with the bundle name set to name and
// the file names extra listed as further parts after m's own.
func manifestListing(t *testing.T, m *bundle.Manifest, name string, extra ...string) []byte {
	t.Helper()
	c := *m
	c.Name = name
	c.Parts = slices.Clone(m.Parts)
	for _, fn := range extra {
		c.Parts = append(c.Parts, bundle.PartInfo{Index: len(c.Parts), Filename: fn})
	}
	raw := c.Marshal()
	if _, err := bundle.ParseManifest(raw); err != nil {
		t.Fatalf("crafted manifest: %v", err)
	}
	return raw
}

func TestDeleteBatches(t *testing.T) {
	f := newFakeS3("bkt")
	const n = 2345
	for i := range n {
		f.Set(Key("big", bundle.PartName("img", i, n)), []byte{1})
	}
	f.Set("big/img.manifest.xml.tmp", []byte{1})
	out, err := Delete(context.Background(), f, &DeleteInput{Bucket: "bkt", Prefix: "big", Name: "img"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != n {
		t.Errorf("deleted %d, want %d", len(out.Deleted), n)
	}
	if want := []int{1000, 1000, 345}; !slices.Equal(f.deleteBatch, want) {
		t.Errorf("DeleteObjects batches %v, want %v", f.deleteBatch, want)
	}
	if got := f.Keys(); !slices.Equal(got, []string{"big/img.manifest.xml.tmp"}) {
		t.Errorf("left %v", got)
	}
}

func TestDeleteRejects(t *testing.T) {
	f := newFakeS3("bkt")
	for _, in := range []*DeleteInput{
		{Name: "x"},
		{Bucket: "bkt"},
		{Bucket: "bkt", Name: "a/b"},
	} {
		if _, err := Delete(context.Background(), f, in); err == nil {
			t.Errorf("Delete(%+v) succeeded", *in)
		}
	}
	_, err := Delete(context.Background(), f, &DeleteInput{Bucket: "other", Name: "x"})
	if awserr.Code(err) != "NoSuchBucket" {
		t.Errorf("Delete in a missing bucket: %v", err)
	}
	if got := fmt.Sprint(err); !containsAll(got, "other") {
		t.Errorf("error %q does not name the bucket", got)
	}
}
