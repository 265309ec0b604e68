//go:build unix

package instance_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/instance"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// The fixture's AMI reuseName was registered from the bundle at
// reusePrefix, where a build of the same name with a fixed s3_prefix
// uploads again.
const (
	reuseName   = "e2e-reuse"
	reuseAMI    = "ami-0e2e1000000000005"
	reusePrefix = "builds/reuse"
)

// TestE2EBundleLocation builds with a fixed s3_prefix and bundle_name: a
// second build with another AMI name must not overwrite the bundle of the
// first AMI, which is still registered; a build with -force may replace
// the bundle of the AMI of its own name that it deregisters.
func TestE2EBundleLocation(t *testing.T) {
	e := newE2EEnv(t)
	t.Run("another AMI's bundle is not overwritten", func(t *testing.T) { testFixedLocation(t, e) })
	t.Run("force replaces the bundle of the AMI it deregisters", func(t *testing.T) { testForceSameLocation(t, e) })
}

func testFixedLocation(t *testing.T, e *e2eEnv) {
	const prefix = "builds/fixed"
	loc := bundlestore.Location{Bucket: e2eBucket, Prefix: prefix, Name: "image"}
	build := func(amiName, marker string) *packertest.Result {
		t.Helper()
		e.proxy.Reset()
		provision, img := e.makeImage(marker)
		tpl := e.template(tmpl{AMIName: amiName, Prefix: prefix, Source: fmt.Sprintf("  bundle_source = %q", img), Provision: provision})
		return e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl})
	}

	res := build("e2e-fixed-first", "first")
	if res.ExitCode != 0 {
		t.Fatalf("first build exited %d", res.ExitCode)
	}
	ids := packertest.ArtifactIDs(res.Stdout)["ami-instance.e2e"]
	if len(ids) != 1 {
		t.Fatalf("artifact ids = %q, want one", ids)
	}
	_, firstAMI, _ := strings.Cut(ids[0], ":")
	// The check costs one HeadObject of the manifest, before the build
	// instance is launched.
	heads := e.proxy.CallsFor("s3", "HeadObject")
	if len(heads) != 1 || heads[0].Key != loc.ManifestKey() {
		t.Errorf("HeadObject calls %v, want one, of %s", heads, loc.ManifestKey())
	} else if run := e.proxy.CallsFor("ec2", "RunInstances"); len(run) == 0 || heads[0].Seq > run[0].Seq {
		t.Errorf("the manifest was looked up after the instance was launched (or none was)")
	}
	first := e.objects(t, prefix)
	if _, ok := first[loc.ManifestKey()]; !ok || len(first) < 2 {
		t.Fatalf("objects after the first build: %q, want a manifest and parts", slices.Sorted(maps.Keys(first)))
	}

	// Same s3_prefix and bundle_name, another AMI name: the first AMI is
	// still registered from s3://e2e-bundles/builds/fixed/image.manifest.xml.
	res = build("e2e-fixed-second", "second")
	after := e.objects(t, prefix)
	for k, v := range first {
		if w, ok := after[k]; !ok {
			t.Errorf("s3://%s/%s of the first AMI %s was deleted", e2eBucket, k, firstAMI)
		} else if !bytes.Equal(v, w) {
			t.Errorf("s3://%s/%s of the first AMI %s was overwritten by the second build", e2eBucket, k, firstAMI)
		}
	}
	if res.ExitCode == 0 {
		t.Fatal("the second build succeeded over the first AMI's bundle")
	}
	for _, w := range []string{"s3://" + e2eBucket + "/" + loc.ManifestKey(), "s3_prefix", "bundle_name"} {
		if !strings.Contains(res.Output(), w) {
			t.Errorf("output does not mention %q:\n%s", w, res.Output())
		}
	}
	for _, op := range []string{"PutObject", "DeleteObject", "DeleteObjects"} {
		if n := len(e.proxy.CallsFor("s3", op)); n != 0 {
			t.Errorf("%d %s calls in the refused build", n, op)
		}
	}
	if n := len(e.proxy.CallsFor("ec2", "RunInstances")); n != 0 {
		t.Errorf("the refused build launched %d instances; the check comes first", n)
	}

	art := &instance.Artifact{
		Artifact: &amibuild.Artifact{Amis: map[string]string{e2eRegion: firstAMI}, BuilderIdValue: instance.BuilderId},
		Bundle:   loc,
		EC2:      func(string) bundlestore.DeregisterAPI { return e.ec2 },
		S3:       func(string) bundlestore.DeleteAPI { return e.s3 },
	}
	if err := art.Destroy(); err != nil {
		t.Fatalf("destroy the first artifact: %v", err)
	}
}

func testForceSameLocation(t *testing.T, e *e2eEnv) {
	ctx := context.Background()
	loc := bundlestore.Location{Bucket: e2eBucket, Prefix: reusePrefix, Name: "image"}
	const oldManifest = "<manifest>the bundle of " + reuseAMI + "</manifest>"
	for k, v := range map[string]string{loc.ManifestKey(): oldManifest, loc.Key("image.part.0"): "old part"} {
		if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e2eBucket), Key: aws.String(k), Body: strings.NewReader(v)}); err != nil {
			t.Fatalf("put s3://%s/%s: %v", e2eBucket, k, err)
		}
	}

	e.proxy.Reset()
	provision, img := e.makeImage("replacement")
	tpl := e.template(tmpl{AMIName: reuseName, Prefix: reusePrefix, Source: fmt.Sprintf("  bundle_source = %q", img), Provision: provision})
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-force"}, Template: tpl})
	if res.ExitCode != 0 {
		t.Fatalf("packer build -force exited %d", res.ExitCode)
	}
	dereg := e.proxy.CallsFor("ec2", "DeregisterImage")
	if len(dereg) != 1 || dereg[0].Params.Get("ImageId") != reuseAMI {
		t.Errorf("DeregisterImage calls %v, want one, of %s", dereg, reuseAMI)
	}
	regs := e.proxy.CallsFor("ec2", "RegisterImage")
	if len(regs) != 1 || regs[0].Params.Get("ImageLocation") != loc.ImageLocation() {
		t.Fatalf("RegisterImage calls %v, want one from %s", regs, loc.ImageLocation())
	}
	// The new bundle is in place: the old AMI's bundle was replaced, and
	// not deleted after the upload.
	objs := e.objects(t, reusePrefix)
	if m, ok := objs[loc.ManifestKey()]; !ok || string(m) == oldManifest {
		t.Errorf("manifest after the build: present %v, still the old one %v", ok, string(m) == oldManifest)
	}
	for _, w := range []string{
		"belongs to " + reuseAMI,
		"The bundle of existing AMI " + reuseAMI + " was replaced by this build's upload",
	} {
		if !strings.Contains(res.Output(), w) {
			t.Errorf("output does not mention %q:\n%s", w, res.Output())
		}
	}
}

// objects returns the objects under prefix in the build's bucket, read
// straight from moto.
func (e *e2eEnv) objects(t *testing.T, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(e2eBucket), Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatalf("list s3://%s/%s/: %v", e2eBucket, prefix, err)
	}
	objs := make(map[string][]byte)
	for _, o := range out.Contents {
		key := aws.ToString(o.Key)
		get, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e2eBucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get s3://%s/%s: %v", e2eBucket, key, err)
		}
		b, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil {
			t.Fatalf("read s3://%s/%s: %v", e2eBucket, key, err)
		}
		objs[key] = b
	}
	return objs
}
