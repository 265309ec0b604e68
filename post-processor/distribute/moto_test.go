//go:build unix

package distribute

// PostProcess in process against moto behind the recording proxy: faster
// than a packer run, and able to look at the returned artifact itself.

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
)

func TestPostProcessCopiesSharesAndTags(t *testing.T) {
	w := newWorld(t)
	name := uniqueName(t, "pp-copy")
	src, srcSnaps := w.registerImage(t, srcRegion, name, nil)
	manifest := filepath.Join(t.TempDir(), "out", "manifest.json")

	in := &packersdk.MockArtifact{BuilderIdValue: "amiforge.ami-ebs", IdValue: srcRegion + ":" + src}
	art, out, err := w.postProcess(t, context.Background(), map[string]any{
		"regions":         []string{euRegion, apRegion},
		"ami_name":        "{{ .SourceAMIName }}-{{ .Region }}",
		"ami_description": "copy of {{ .SourceAMI }}",
		"ami_users":       []string{shareAccount},
		"ami_org_arns":    []string{orgARN},
		"snapshot_users":  []string{snapAccount},
		"tags":            map[string]string{"App": "web", "Region": "{{ .Region }}"},
		"snapshot_tags":   map[string]string{"Snap": "yes"},
		"manifest_output": manifest,
	}, in)
	if err != nil {
		t.Fatalf("PostProcess: %v\n%s", err, out)
	}
	a, ok := art.(*Artifact)
	if !ok {
		t.Fatalf("artifact is %T", art)
	}

	// Every region holds a shared, tagged AMI.
	if len(a.Amis) != 3 || a.Amis[srcRegion] != src {
		t.Fatalf("artifact AMIs = %v, want the source in %s and two copies", a.Amis, srcRegion)
	}
	for _, region := range allRegions {
		id := a.Amis[region]
		img, ok := w.image(t, region, id)
		if !ok {
			t.Fatalf("%s: AMI %s does not exist", region, id)
		}
		wantName := name
		if region != srcRegion {
			wantName = name + "-" + region
			if a.Copies[region] != id {
				t.Errorf("%s: copies = %v, want %s", region, a.Copies, id)
			}
			if got := aws.ToString(img.Description); got != "copy of "+src {
				t.Errorf("%s: description = %q", region, got)
			}
		}
		if got := aws.ToString(img.Name); got != wantName {
			t.Errorf("%s: name = %q, want %q", region, got, wantName)
		}
		if got, want := tagMap(img.Tags), map[string]string{"App": "web", "Region": region}; !mapsContain(got, want) {
			t.Errorf("%s: tags = %v, want %v", region, got, want)
		}
		if got, want := w.launchPermissions(t, region, id), []string{"account:" + shareAccount, "org:" + orgARN}; !slices.Equal(got, want) {
			t.Errorf("%s: launch permissions = %q, want %q", region, got, want)
		}
		snaps := snapshotIDs(img)
		if len(snaps) == 0 {
			t.Fatalf("%s: AMI %s has no snapshot", region, id)
		}
		for _, s := range snaps {
			if got := w.volumePermissions(t, region, s); !slices.Equal(got, []string{"account:" + snapAccount}) {
				t.Errorf("%s: snapshot %s create-volume permissions = %q", region, s, got)
			}
			if got := w.snapshotTags(t, region, s); !mapsContain(got, map[string]string{"App": "web", "Snap": "yes", "Region": region}) {
				t.Errorf("%s: snapshot %s tags = %v", region, s, got)
			}
		}
	}

	// The UI shows the per-region table.
	for _, w := range []string{"Per-region results", euRegion, apRegion, "available"} {
		if !strings.Contains(out, w) {
			t.Errorf("UI output lacks %q", w)
		}
	}

	// Each CopyImage carried an idempotency token and the source.
	copies := w.proxy.CallsFor("ec2", "CopyImage")
	if len(copies) != 2 {
		t.Fatalf("CopyImage calls = %d, want 2", len(copies))
	}
	for _, c := range copies {
		if c.Params.Get("ClientToken") == "" || c.Params.Get("SourceImageId") != src || c.Params.Get("SourceRegion") != srcRegion {
			t.Errorf("CopyImage in %s: params %v", c.Region, c.Params)
		}
	}

	// Every call says which component made it.
	for _, c := range w.proxy.Calls() {
		if ua := c.Header.Get("User-Agent"); !strings.Contains(ua, " app/"+amiconfig.AppIDDistribute) {
			t.Errorf("%s: User-Agent %q lacks app/%s", c, ua, amiconfig.AppIDDistribute)
		}
	}

	// The manifest names every region.
	m := readManifest(t, manifest)
	if m.ArtifactID != a.Id() || m.Source.ImageID != src || len(m.Regions) != 3 || !m.Regions[0].Source {
		t.Errorf("manifest = %+v, want artifact %s with the source first and 3 regions", m, a.Id())
	}

	// Destroy removes the copies and their snapshots, never the source.
	if err := a.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for _, region := range []string{euRegion, apRegion} {
		if _, ok := w.image(t, region, a.Amis[region]); ok {
			t.Errorf("%s: copy %s survived Destroy", region, a.Amis[region])
		}
	}
	l := w.leaks(t)
	if want := regional(srcRegion, src); !slices.Equal(l.Images, want) {
		t.Errorf("images after Destroy = %q, want only the source %q", l.Images, want)
	}
	if want := regional(srcRegion, srcSnaps...); !slices.Equal(sortedCopy(l.Snapshots), want) {
		t.Errorf("snapshots after Destroy = %q, want only the source's %q", l.Snapshots, want)
	}
}

func TestPostProcessRegionFailureRemovesCopies(t *testing.T) {
	w := newWorld(t)
	name := uniqueName(t, "pp-fail")
	src, srcSnaps := w.registerImage(t, srcRegion, name, map[string]string{"Keep": "me"})
	w.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Service == "ec2" && c.Action == "CopyImage" && c.Region == apRegion {
			return awstest.ErrorFault("UnauthorizedOperation", http.StatusForbidden)
		}
		return nil
	})
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	in := &packersdk.MockArtifact{IdValue: srcRegion + ":" + src}
	_, out, err := w.postProcess(t, context.Background(), map[string]any{
		"regions":          []string{euRegion, apRegion},
		"copy_concurrency": 1, // eu-west-1 is copied before ap-southeast-2 fails
		"ami_users":        []string{shareAccount},
		"tags":             map[string]string{"Distributed": "yes"},
		"manifest_output":  manifest,
	}, in)
	if err == nil {
		t.Fatal("PostProcess succeeded although CopyImage fails in " + apRegion)
	}
	for _, want := range []string{apRegion, "UnauthorizedOperation"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if n := len(w.proxy.CallsFor("ec2", "CopyImage")); n != 2 {
		t.Errorf("CopyImage calls = %d, want 2 (one per region)", n)
	}

	// No copy anywhere; the source untouched.
	l := w.leaks(t)
	if want := regional(srcRegion, src); !slices.Equal(l.Images, want) {
		t.Errorf("images left = %q, want only the source %q\n%s", l.Images, want, out)
	}
	if want := regional(srcRegion, srcSnaps...); !slices.Equal(sortedCopy(l.Snapshots), want) {
		t.Errorf("snapshots left = %q, want only the source's %q", l.Snapshots, want)
	}
	img, ok := w.image(t, srcRegion, src)
	if !ok {
		t.Fatal("the source AMI is gone")
	}
	if got := tagMap(img.Tags); len(got) != 1 || got["Keep"] != "me" {
		t.Errorf("source tags changed to %v", got)
	}
	if got := w.launchPermissions(t, srcRegion, src); len(got) != 0 {
		t.Errorf("source launch permissions changed to %q", got)
	}
	for _, c := range w.proxy.Calls() {
		if c.Params.Get("ImageId") == src && c.Action != "DescribeImages" && c.Action != "DescribeImageAttribute" {
			t.Errorf("the run called %s on the source AMI", c.Action)
		}
	}

	m := readManifest(t, manifest)
	if m.Error == "" || m.ArtifactID != "" {
		t.Errorf("manifest after a failure: error %q, artifact %q", m.Error, m.ArtifactID)
	}
	statuses := map[string]distribute.Status{}
	for _, r := range m.Regions {
		statuses[r.Region] = r.Status
	}
	if statuses[euRegion] != distribute.StatusRemoved || statuses[apRegion] != distribute.StatusFailed {
		t.Errorf("manifest statuses = %v, want eu-west-1 removed and ap-southeast-2 failed", statuses)
	}
}

func TestPostProcessCancelledRemovesCopies(t *testing.T) {
	w := newWorld(t)
	name := uniqueName(t, "pp-cancel")
	src, _ := w.registerImage(t, srcRegion, name, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel as soon as the second region's copy was asked for, as Ctrl-C
	// would; the first copy exists by then. The second request is carried
	// out anyway, a few hundred milliseconds after the client gave up, as
	// EC2 may do with a request already on its way: cleanup must still
	// find that copy for certain, not by looking at the right moment.
	w.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		if c.Action == "CopyImage" && c.Region == apRegion {
			cancel()
			return &awstest.Fault{Name: "abandoned", Delay: 300 * time.Millisecond, Detach: true}
		}
		return nil
	})
	_, out, err := w.postProcess(t, ctx, map[string]any{
		"regions":          []string{euRegion, apRegion},
		"copy_concurrency": 1,
	}, &packersdk.MockArtifact{IdValue: srcRegion + ":" + src})
	if err == nil {
		t.Fatal("PostProcess succeeded although it was cancelled")
	}
	if len(w.proxy.CallsFor("ec2", "CopyImage")) == 0 {
		t.Fatal("no copy was started before the cancellation")
	}
	w.proxy.WaitIdle() // the abandoned CopyImage has been carried out
	l := w.leaks(t)
	if want := regional(srcRegion, src); !slices.Equal(l.Images, want) {
		t.Errorf("images left after cancellation = %q, want only the source %q\n%s", l.Images, want, out)
	}
}

func TestPostProcessPreflightChangesNothing(t *testing.T) {
	w := newWorld(t)
	name := uniqueName(t, "pp-pre")
	src, _ := w.registerImage(t, srcRegion, name, nil)
	// The name is already taken in the second target region.
	taken, _ := w.registerImage(t, apRegion, name+"-copy", nil)
	_, _, err := w.postProcess(t, context.Background(), map[string]any{
		"regions":   []string{euRegion, apRegion},
		"ami_name":  name + "-copy",
		"ami_users": []string{shareAccount},
	}, &packersdk.MockArtifact{IdValue: srcRegion + ":" + src})
	if err == nil || !strings.Contains(err.Error(), apRegion) || !strings.Contains(err.Error(), taken) {
		t.Fatalf("PostProcess error = %v, want the name clash in %s with %s", err, apRegion, taken)
	}
	for _, a := range w.proxy.Actions() {
		if !strings.HasPrefix(a, "ec2:Describe") {
			t.Errorf("pre-flight failure made the call %s; only Describe* calls are allowed", a)
		}
	}
}

func TestPostProcessInputWithoutAMI(t *testing.T) {
	w := newWorld(t)
	_, _, err := w.postProcess(t, context.Background(), map[string]any{"regions": []string{euRegion}},
		&packersdk.MockArtifact{BuilderIdValue: "packer.null", IdValue: "Null"})
	if err == nil || !strings.Contains(err.Error(), "source_ami") || !strings.Contains(err.Error(), "packer.null") {
		t.Fatalf("PostProcess error = %v, want one that names the builder and suggests source_ami", err)
	}
	if calls := w.proxy.Calls(); len(calls) != 0 {
		t.Errorf("made %d AWS calls for an artifact without AMI", len(calls))
	}
}

func TestPostProcessDryRun(t *testing.T) {
	w := newWorld(t)
	name := uniqueName(t, "pp-dry")
	// An older release in the source region, which the plan removes: the
	// source counts as the newest release there. (In the target regions
	// the copies do not exist yet, so a dry run cannot count them.)
	old, _ := w.registerImage(t, srcRegion, name+"-old", map[string]string{"Family": name})
	awstest.NextSecond(t) // moto's creation dates have whole seconds
	src, _ := w.registerImage(t, srcRegion, name, map[string]string{"Family": name})
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	art, out, err := w.postProcess(t, context.Background(), map[string]any{
		"source_ami":      src,
		"regions":         []string{euRegion},
		"ami_name":        name + "-new",
		"ami_users":       []string{shareAccount},
		"keep_releases":   1,
		"retention":       map[string]any{"tags": map[string]string{"Family": name}},
		"dry_run":         true,
		"manifest_output": manifest,
	}, nil)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, a := range w.proxy.Actions() {
		if !strings.HasPrefix(a, "ec2:Describe") {
			t.Errorf("dry run made the call %s", a)
		}
	}
	if art.Id() != srcRegion+":"+src {
		t.Errorf("dry-run artifact = %q, want only the input", art.Id())
	}
	m := readManifest(t, manifest)
	if !m.DryRun || len(m.Planned) != 1 || m.Planned[0].Region != euRegion || m.Planned[0].Name != name+"-new" {
		t.Errorf("manifest planned copies = %+v", m.Planned)
	}
	if rm := m.Retention.ToRemove(); len(rm) != 1 || rm[0].ImageID != old || rm[0].Removed {
		t.Errorf("dry-run retention plan = %+v, want %s to be removed (not removed yet)", m.Retention, old)
	}
	if _, ok := w.image(t, srcRegion, old); !ok {
		t.Error("dry run removed an AMI")
	}
	if !strings.Contains(out, "Dry run") {
		t.Error("UI does not say it is a dry run")
	}
}

// With every list empty (a development build whose variables default to
// []), the post-processor passes the AMIs through with a note, makes no
// AWS call, and its artifact destroys nothing.
func TestPostProcessNothingToDo(t *testing.T) {
	w := newWorld(t)
	const ami = "ami-0123456789abcdef0"
	for _, tc := range []struct {
		name string
		raw  map[string]any
		in   packersdk.Artifact
		want string
	}{
		{"builder artifact", map[string]any{"regions": []string{}, "ami_users": []string{}, "snapshot_users": []string{}},
			&packersdk.MockArtifact{IdValue: "us-east-1:" + ami + ",eu-west-1:ami-0fedcba9876543210"}, "eu-west-1:ami-0fedcba9876543210,us-east-1:" + ami},
		{"source_ami", map[string]any{"source_ami": ami, "ami_regions": []string{}},
			&packersdk.MockArtifact{BuilderIdValue: "packer.null", IdValue: "Null"}, srcRegion + ":" + ami},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.proxy.Reset()
			art, out, err := w.postProcess(t, context.Background(), tc.raw, tc.in)
			if err != nil {
				t.Fatalf("PostProcess: %v", err)
			}
			if art.Id() != tc.want {
				t.Errorf("artifact %q, want %q", art.Id(), tc.want)
			}
			if !strings.Contains(out, "Nothing to copy, share, tag or retain") {
				t.Errorf("no note in the output:\n%s", out)
			}
			if err := art.Destroy(); err != nil {
				t.Errorf("Destroy: %v", err)
			}
			if calls := w.proxy.Calls(); len(calls) != 0 {
				t.Errorf("made %d AWS calls: %v", len(calls), calls)
			}
		})
	}
}
