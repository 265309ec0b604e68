//go:build unix

package bundlestore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestFinishDoesNotReplaceAManifest checks that the manifest is stored
// only where none is (If-None-Match "*"), unless ReplaceManifest is set: a
// bundle whose manifest appeared after the pre-launch check is not
// replaced, and the error names the bucket and key.
func TestFinishDoesNotReplaceAManifest(t *testing.T) {
	const key = "p/img.manifest.xml"
	ours, theirs := []byte("<manifest>ours</manifest>"), []byte("<manifest>theirs</manifest>")
	tests := []struct {
		name        string
		existing    []byte // the manifest already at key; nil: none
		replace     bool
		wantErr     bool
		wantStored  []byte
		wantCond    string // the If-None-Match sent
		wantSkipped bool   // the manifest is reported as found, not sent
	}{
		{name: "free location", wantStored: ours, wantCond: "*"},
		{name: "another bundle's manifest", existing: theirs, wantErr: true, wantStored: theirs, wantCond: "*"},
		{name: "the same manifest already stored", existing: ours, wantStored: ours, wantCond: "*", wantSkipped: true},
		{name: "replace the manifest", existing: theirs, replace: true, wantStored: ours, wantCond: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3("bkt")
			if tc.existing != nil {
				f.Set(key, tc.existing)
			}
			w, err := NewWriter(context.Background(), f, &WriterInput{Bucket: "bkt", Prefix: "p", Region: "eu-west-1", ReplaceManifest: tc.replace})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WritePart(context.Background(), fakePart(0, 100)); err != nil {
				t.Fatal(err)
			}
			out, err := w.Finish(context.Background(), "img.manifest.xml", ours)
			if got, _ := f.Object(key); !bytes.Equal(got, tc.wantStored) {
				t.Errorf("manifest stored = %q, want %q", got, tc.wantStored)
			}
			for _, p := range f.Puts() {
				if p.Key == key && p.IfNoneMatch != tc.wantCond {
					t.Errorf("manifest PUT with If-None-Match %q, want %q", p.IfNoneMatch, tc.wantCond)
				}
				if p.Key != key && p.IfNoneMatch != "" {
					t.Errorf("part PUT %s with If-None-Match %q", p.Key, p.IfNoneMatch)
				}
			}
			if tc.wantErr {
				var be *BundleExistsError
				if !errors.As(err, &be) {
					t.Fatalf("Finish = %v, want a *BundleExistsError", err)
				}
				for _, want := range []string{"s3://bkt/" + key, "eu-west-1", "a bundle already exists", "412"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(out.Skipped, key); got != tc.wantSkipped {
				t.Errorf("manifest in Skipped = %v, want %v (Skipped %v, Uploaded %v)", got, tc.wantSkipped, out.Skipped, out.Uploaded)
			}
			if got := slices.Contains(out.Uploaded, key); got == tc.wantSkipped {
				t.Errorf("manifest in Uploaded = %v, want %v", got, !tc.wantSkipped)
			}
		})
	}
}

// TestUploadDoesNotReplaceAManifest checks that Upload passes
// ReplaceManifest on.
func TestUploadDoesNotReplaceAManifest(t *testing.T) {
	b := sharedBundle(t, threeParts)
	const key = "p/root.img.manifest.xml"
	for _, replace := range []bool{false, true} {
		f := newFakeS3("bkt")
		f.Set(key, []byte("<manifest>another bundle</manifest>"))
		_, err := Upload(context.Background(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt", Prefix: "p", ReplaceManifest: replace})
		var be *BundleExistsError
		if got := errors.As(err, &be); got == replace {
			t.Errorf("ReplaceManifest %v: Upload = %v", replace, err)
		}
	}
}

// TestMotoManifestNotReplaced checks the condition against moto, which
// answers If-None-Match "*" on PutObject as S3 does (412 when the key
// holds an object): a second upload to the location of a finished bundle
// keeps the first bundle's manifest.
func TestMotoManifestNotReplaced(t *testing.T) {
	env := newMotoEnv(t, "us-east-1")
	ctx := context.Background()
	bucket := env.createBucket(t, "us-east-1")
	upload := func(manifest string, replace bool) error {
		t.Helper()
		w, err := NewWriter(ctx, env.s3, &WriterInput{Bucket: bucket, Prefix: "fixed", ReplaceManifest: replace}, func(o *Options) { o.DisableResume = true })
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePart(ctx, fakePart(0, 100)); err != nil {
			t.Fatal(err)
		}
		_, err = w.Finish(ctx, "img.manifest.xml", []byte(manifest))
		return err
	}
	stored := func() string {
		t.Helper()
		out, err := env.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("fixed/img.manifest.xml")})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(out.Body); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	if err := upload("<manifest>first</manifest>", false); err != nil {
		t.Fatal(err)
	}
	err := upload("<manifest>second</manifest>", false)
	var be *BundleExistsError
	if !errors.As(err, &be) || !be.AtUpload || !strings.Contains(err.Error(), "s3://"+bucket+"/fixed/img.manifest.xml") {
		t.Fatalf("second upload = %v, want a *BundleExistsError naming the manifest", err)
	}
	if got := stored(); got != "<manifest>first</manifest>" {
		t.Errorf("manifest after the refused upload = %q, want the first", got)
	}
	if err := upload("<manifest>first</manifest>", false); err != nil {
		t.Errorf("uploading the same manifest again = %v, want success", err)
	}
	if err := upload("<manifest>third</manifest>", true); err != nil {
		t.Fatalf("upload with ReplaceManifest = %v", err)
	}
	if got := stored(); got != "<manifest>third</manifest>" {
		t.Errorf("manifest after ReplaceManifest = %q, want the third", got)
	}
}
