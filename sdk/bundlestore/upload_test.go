//go:build unix

package bundlestore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// threeParts is the image size of a bundle with three parts.
const threeParts = 21 << 20

func TestUploadPartsThenManifest(t *testing.T) {
	b := sharedBundle(t, threeParts)
	if n := len(b.Manifest.Parts); n != 3 {
		t.Fatalf("test bundle has %d parts, want 3", n)
	}
	tests := []struct {
		name, prefix, keyPrefix string
	}{
		{"no prefix", "", ""},
		{"prefix", "images/web", "images/web/"},
		{"slashes", "/images/web/", "images/web/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3("bkt")
			var progress []int64
			out, err := Upload(context.Background(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt", Prefix: tc.prefix},
				func(o *Options) { o.Progress = func(done, total int64) { progress = append(progress, done, total) } })
			if err != nil {
				t.Fatal(err)
			}
			puts := f.Puts()
			if len(puts) != 4 {
				t.Fatalf("%d PutObject calls, want 4: %v", len(puts), f.Calls())
			}
			manifestKey := tc.keyPrefix + "root.img.manifest.xml"
			if last := puts[len(puts)-1].Key; last != manifestKey {
				t.Errorf("last PUT is %q, want the manifest %q", last, manifestKey)
			}
			var partPuts []string
			for _, p := range puts {
				if p.ACL != types.ObjectCannedACLAwsExecRead {
					t.Errorf("PUT %s: ACL %q, want aws-exec-read", p.Key, p.ACL)
				}
				if p.Checksum != types.ChecksumAlgorithmCrc32 {
					t.Errorf("PUT %s: checksum algorithm %q, want CRC32", p.Key, p.Checksum)
				}
				if p.ContentMD5 != "" {
					t.Errorf("PUT %s: Content-MD5 %q sent beside the CRC-32", p.Key, p.ContentMD5)
				}
				if p.Key != manifestKey {
					partPuts = append(partPuts, p.Key)
				}
			}
			slices.Sort(partPuts)
			if want := b.partKeys(tc.prefix); !slices.Equal(partPuts, want) {
				t.Errorf("parts PUT %v, want %v", partPuts, want)
			}
			if got, want := out.ImageLocation, "bkt/"+manifestKey; got != want {
				t.Errorf("ImageLocation = %q, want %q", got, want)
			}
			if got, want := out.Location, (Location{Bucket: "bkt", Prefix: tc.keyPrefix[:max(0, len(tc.keyPrefix)-1)], Name: "root.img"}); got != want {
				t.Errorf("Location = %+v, want %+v", got, want)
			}
			for i, p := range b.Manifest.Parts {
				got, _ := f.Object(Key(tc.prefix, p.Filename))
				if sha1.Sum(got) != p.Digest {
					t.Errorf("part %d stored with wrong bytes", i)
				}
			}
			total := b.Manifest.BundledSize + int64(len(readFile(t, b.ManifestPath)))
			if out.BytesSent != total {
				t.Errorf("BytesSent = %d, want %d", out.BytesSent, total)
			}
			if n := len(progress); n != 8 || progress[n-2] != total || progress[n-1] != total {
				t.Errorf("progress calls %v, want 4 calls ending at %d/%d", progress, total, total)
			}
		})
	}
}

func TestUploadResume(t *testing.T) {
	b := sharedBundle(t, threeParts)
	keys := b.partKeys("p")
	part := func(i int) []byte { return readFile(t, filepath.Join(b.Dir, b.Manifest.Parts[i].Filename)) }

	tests := []struct {
		name          string
		disableResume bool
		wantPut       []string
		wantSkipped   []string
	}{
		{"resume", false, []string{keys[1], keys[2], "p/root.img.manifest.xml"}, []string{keys[0]}},
		{"resume disabled", true, []string{keys[0], keys[1], keys[2], "p/root.img.manifest.xml"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3("bkt")
			// Left by an interrupted upload: part 0 intact, part 1
			// truncated, part 2 missing.
			f.Set(keys[0], part(0))
			f.Set(keys[1], part(1)[:1000])
			out, err := Upload(context.Background(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt", Prefix: "p"},
				func(o *Options) { o.DisableResume = tc.disableResume })
			if err != nil {
				t.Fatal(err)
			}
			put := f.CallsOf("PutObject")
			slices.Sort(put[:len(put)-1])
			if !slices.Equal(put, tc.wantPut) {
				t.Errorf("PUT %v, want %v", put, tc.wantPut)
			}
			if !slices.Equal(out.Skipped, tc.wantSkipped) {
				t.Errorf("Skipped = %v, want %v", out.Skipped, tc.wantSkipped)
			}
			got, _ := f.Object(keys[1])
			if !bytes.Equal(got, part(1)) {
				t.Error("the corrupted part was not replaced")
			}
		})
	}
}

func TestUploadFailure(t *testing.T) {
	b := sharedBundle(t, threeParts)
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle, f *fakeS3)
		check   func(t *testing.T, err error)
	}{
		{
			name: "part upload fails",
			prepare: func(t *testing.T, b *testBundle, f *fakeS3) {
				bad := Key("", b.Manifest.Parts[1].Filename)
				f.putObject = func(ctx context.Context, in *s3.PutObjectInput) (*s3.PutObjectOutput, error) {
					if *in.Key == bad {
						return nil, apiErr("SlowDown")
					}
					return &s3.PutObjectOutput{}, nil
				}
			},
			check: func(t *testing.T, err error) {
				if awserr.Code(err) != "SlowDown" {
					t.Errorf("error %v does not carry the AWS code", err)
				}
			},
		},
		{
			name: "ACLs disabled",
			prepare: func(t *testing.T, b *testBundle, f *fakeS3) {
				f.putObject = func(ctx context.Context, in *s3.PutObjectInput) (*s3.PutObjectOutput, error) {
					return nil, apiErr("AccessControlListNotSupported")
				}
			},
			check: func(t *testing.T, err error) {
				var be *BucketError
				if !errors.As(err, &be) || be.Problem != BucketACLsDisabled {
					t.Errorf("error %v is not a BucketError BucketACLsDisabled", err)
				}
			},
		},
		{
			name: "corrupt local part",
			prepare: func(t *testing.T, b *testBundle, f *fakeS3) {
				path := filepath.Join(b.Dir, b.Manifest.Parts[2].Filename)
				data := readFile(t, path)
				data[100] ^= 1
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, err error) {
				var de *bundle.PartDigestError
				if !errors.As(err, &de) || de.Index != 2 {
					t.Errorf("error %v is not a PartDigestError for part 2", err)
				}
			},
		},
		{
			name: "missing local part",
			prepare: func(t *testing.T, b *testBundle, f *fakeS3) {
				if err := os.Remove(filepath.Join(b.Dir, b.Manifest.Parts[0].Filename)); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("error %v does not say the file is missing", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := copyBundle(t, b)
			f := newFakeS3("bkt")
			tc.prepare(t, b, f)
			_, err := Upload(context.Background(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt"}, func(o *Options) { o.DisableResume = true })
			if err == nil {
				t.Fatal("Upload succeeded")
			}
			tc.check(t, err)
			if slices.Contains(f.CallsOf("PutObject"), "root.img.manifest.xml") {
				t.Error("the manifest was uploaded after a failure")
			}
		})
	}
}

func TestUploadLedger(t *testing.T) {
	b := sharedBundle(t, threeParts)
	f := newFakeS3("bkt")
	var l ledger.Ledger
	f.Set("x/"+b.Manifest.Parts[0].Filename, readFile(t, filepath.Join(b.Dir, b.Manifest.Parts[0].Filename)))
	f.Set("x/unrelated", []byte("keep me"))
	if _, err := Upload(context.Background(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt", Prefix: "x", Region: "eu-west-1"},
		func(o *Options) { o.Ledger = &l }); err != nil {
		t.Fatal(err)
	}
	res := l.Resources()
	if len(res) != 3 {
		t.Fatalf("ledger has %v, want the 2 parts sent and the manifest", res)
	}
	if last := res[2]; last != (ledger.Resource{Kind: ledger.KindS3Object, ID: "bkt/x/root.img.manifest.xml", Region: "eu-west-1"}) {
		t.Errorf("last ledger entry %v, want the manifest", last)
	}
	if err := l.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The part found intact was not created by this upload and stays.
	if got, want := f.Keys(), []string{"x/" + b.Manifest.Parts[0].Filename, "x/unrelated"}; !slices.Equal(got, want) {
		t.Errorf("after undo the bucket holds %v, want %v", got, want)
	}
}

// fakePart returns a bundle part of n bytes.
func fakePart(i, n int) *bundle.Part {
	data := bytes.Repeat([]byte{byte(i)}, n)
	return &bundle.Part{Index: i, Name: fmt.Sprintf("img.part.%02d", i), Data: data, SHA1: sha1.Sum(data)}
}

func TestWriterConcurrency(t *testing.T) {
	for _, limit := range []int{1, 3} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			f := newFakeS3("bkt")
			// Each upload waits until limit of them are in flight, so
			// the Writer reaches its limit whatever the machine's load;
			// the last parts may be fewer, hence ReleasePuts before Finish.
			f.PutBarrier = limit
			w, err := NewWriter(context.Background(), f, &WriterInput{Bucket: "bkt"}, func(o *Options) { o.Concurrency = limit })
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				p := fakePart(i, 1000)
				if err := w.WritePart(context.Background(), p); err != nil {
					t.Fatal(err)
				}
				clear(p.Data) // the Writer must have copied the data
			}
			f.ReleasePuts()
			if _, err := w.Finish(context.Background(), "img.manifest.xml", []byte("<manifest/>")); err != nil {
				t.Fatal(err)
			}
			if f.maxInFlight != limit {
				t.Errorf("at most %d uploads in flight, want %d", f.maxInFlight, limit)
			}
			for i := range 10 {
				got, _ := f.Object(fakePart(i, 1000).Name)
				if !bytes.Equal(got, fakePart(i, 1000).Data) {
					t.Errorf("part %d stored with the wrong bytes", i)
				}
			}
			if slots := len(w.slots); slots != limit {
				t.Errorf("%d buffers after Finish, want %d", slots, limit)
			}
			for range limit {
				if s := <-w.slots; cap(*s) > bundle.PartSize {
					t.Errorf("buffer of %d bytes, want at most one part", cap(*s))
				}
			}
		})
	}
}

func TestWriterConcurrentWriters(t *testing.T) {
	f := newFakeS3("bkt")
	w, err := NewWriter(context.Background(), f, &WriterInput{Bucket: "bkt", Prefix: "p"}, func(o *Options) { o.Concurrency = 2 })
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := g; i < 30; i += 3 {
				if err := w.WritePart(context.Background(), fakePart(i, 100)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	out, err := w.Finish(context.Background(), "img.manifest.xml", []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploaded) != 31 || out.Uploaded[30] != "p/img.manifest.xml" {
		t.Errorf("uploaded %d objects, manifest last: %v", len(out.Uploaded), out.Uploaded)
	}
}

func TestWriterStopsAfterFailure(t *testing.T) {
	f := newFakeS3("bkt")
	f.putObject = func(ctx context.Context, in *s3.PutObjectInput) (*s3.PutObjectOutput, error) {
		if *in.Key == "img.part.01" {
			return nil, apiErr("InternalError")
		}
		return &s3.PutObjectOutput{}, nil
	}
	w, err := NewWriter(context.Background(), f, &WriterInput{Bucket: "bkt"}, func(o *Options) { o.Concurrency = 1; o.DisableResume = true })
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 10 && werr == nil; i++ {
		werr = w.WritePart(context.Background(), fakePart(i, 10))
	}
	if werr == nil {
		t.Error("WritePart kept accepting parts after an upload failed")
	}
	if _, err := w.Finish(context.Background(), "img.manifest.xml", []byte("m")); awserr.Code(err) != "InternalError" {
		t.Errorf("Finish: %v, want the upload's error", err)
	}
	if slices.Contains(f.CallsOf("PutObject"), "img.manifest.xml") {
		t.Error("manifest uploaded after a failed part")
	}
}

func TestWriterRenameAndRemove(t *testing.T) {
	f := newFakeS3("bkt")
	var l ledger.Ledger
	w, err := NewWriter(context.Background(), f, &WriterInput{Bucket: "bkt", Prefix: "p"}, func(o *Options) { o.Ledger = &l })
	if err != nil {
		t.Fatal(err)
	}
	p := fakePart(0, 100)
	p.Name = "img.part.0"
	if err := w.WritePart(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePart(context.Background(), fakePart(1, 100)); err != nil {
		t.Fatal(err)
	}
	if err := w.RenamePart(context.Background(), "img.part.0", "img.part.00"); err != nil {
		t.Fatal(err)
	}
	if got, want := f.Keys(), []string{"p/img.part.00", "p/img.part.01"}; !slices.Equal(got, want) {
		t.Errorf("after rename: %v, want %v", got, want)
	}
	if f.objects["p/img.part.00"].acl != types.ObjectCannedACLAwsExecRead {
		t.Error("renamed part lost the aws-exec-read ACL")
	}
	if err := w.RemovePart(context.Background(), "img.part.01"); err != nil {
		t.Fatal(err)
	}
	out, err := w.Finish(context.Background(), "img.manifest.xml", []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p/img.part.00", "p/img.manifest.xml"}; !slices.Equal(out.Uploaded, want) {
		t.Errorf("Uploaded = %v, want %v", out.Uploaded, want)
	}
	var ids []string
	for _, r := range l.Resources() {
		ids = append(ids, r.ID)
	}
	if want := []string{"bkt/p/img.part.00", "bkt/p/img.manifest.xml"}; !slices.Equal(ids, want) {
		t.Errorf("ledger %v, want %v", ids, want)
	}
}

func TestWriterRejects(t *testing.T) {
	f := newFakeS3("bkt")
	if _, err := NewWriter(context.Background(), f, &WriterInput{}); err == nil {
		t.Error("NewWriter without bucket succeeded")
	}
	w, err := NewWriter(context.Background(), f, &WriterInput{Bucket: "bkt"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "../x", "a/b", `a\b`, ".."} {
		if err := w.WritePart(context.Background(), &bundle.Part{Name: name, Data: []byte("x")}); err == nil {
			t.Errorf("WritePart(%q) succeeded", name)
		}
	}
	if err := w.WritePart(context.Background(), fakePart(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePart(context.Background(), fakePart(1, 1)); err == nil {
		t.Error("writing a part twice succeeded")
	}
	if _, err := w.Finish(context.Background(), "m.manifest.xml", nil); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePart(context.Background(), fakePart(2, 1)); err == nil {
		t.Error("WritePart after Finish succeeded")
	}
}

// TestStreamingRoundTrip bundles an image straight into the Writer, then
// reads it back through Download and through Source.
func TestStreamingRoundTrip(t *testing.T) {
	image := testImage(threeParts, 7)
	f := newFakeS3("bkt")
	w, err := NewWriter(context.Background(), f, &WriterInput{Bucket: "bkt", Prefix: "s"})
	if err != nil {
		t.Fatal(err)
	}
	bout, err := bundle.Bundle(context.Background(), bundleInput(t, "disk.img", image, w), fastBundle)
	if err != nil {
		w.Abort()
		t.Fatal(err)
	}
	up, err := w.Finish(context.Background(), bout.ManifestName, bout.ManifestBytes)
	if err != nil {
		t.Fatal(err)
	}
	if up.ImageLocation != "bkt/s/disk.img.manifest.xml" {
		t.Errorf("ImageLocation = %q", up.ImageLocation)
	}
	if got := f.CallsOf("PutObject"); got[len(got)-1] != "s/disk.img.manifest.xml" {
		t.Errorf("manifest not last: %v", got)
	}

	src := NewSource(f, "bkt", "s", "disk.img")
	m, err := src.Manifest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unbundle(t, m.Bytes(), src), image) {
		t.Error("image read through Source differs")
	}

	dir := t.TempDir()
	dl, err := Download(context.Background(), f, &DownloadInput{Bucket: "bkt", Prefix: "s", Name: "disk.img", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(dl.PartPaths) != 3 {
		t.Errorf("downloaded %d parts, want 3", len(dl.PartPaths))
	}
	if !bytes.Equal(unbundle(t, readFile(t, dl.ManifestPath), bundle.Dir(dir)), image) {
		t.Error("downloaded bundle unbundles to a different image")
	}
}

func TestDownloadDetectsCorruptPart(t *testing.T) {
	b := sharedBundle(t, threeParts)
	f := newFakeS3("bkt")
	if _, err := Upload(context.Background(), f, &UploadInput{ManifestPath: b.ManifestPath, Bucket: "bkt"}); err != nil {
		t.Fatal(err)
	}
	bad := b.Manifest.Parts[1].Filename
	data, _ := f.Object(bad)
	data = slices.Clone(data)
	data[0] ^= 0xff
	f.Set(bad, data)
	dir := t.TempDir()
	_, err := Download(context.Background(), f, &DownloadInput{Bucket: "bkt", Name: "root.img", Dir: dir})
	var de *bundle.PartDigestError
	if !errors.As(err, &de) || de.Index != 1 {
		t.Fatalf("Download: %v, want a PartDigestError for part 1", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "root.img.manifest.xml")); !errors.Is(err, os.ErrNotExist) {
		t.Error("manifest written for an incomplete download")
	}

	_, err = Download(context.Background(), f, &DownloadInput{Bucket: "bkt", Name: "other", Dir: dir})
	if !errors.Is(err, ErrNoManifest) {
		t.Errorf("Download of a missing bundle: %v, want ErrNoManifest", err)
	}
}
