//go:build unix

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/builder/instance"
	"github.com/amiforge/packer-plugin-ami/post-processor/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// foreignAccount owns AMIs that share names and tags with ours; moto keeps
// its resources apart (x-moto-account-id).
const foreignAccount = "210987654321"

type accountHeader struct{ rt http.RoundTripper }

func (a accountHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("x-moto-account-id", foreignAccount)
	return a.rt.RoundTrip(r)
}

// foreignPublicAMI registers a public AMI named name with tags in another
// account.
func (w *world) foreignPublicAMI(t *testing.T, region, name string, tags map[string]string) (string, *ec2.Client) {
	t.Helper()
	cfg := awstest.Config(w.moto.Endpoint, region)
	cfg.HTTPClient = &http.Client{Transport: accountHeader{http.DefaultTransport}}
	c := ec2.NewFromConfig(cfg)
	id, err := registerAMI(context.Background(), c, name, tags)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyImageAttribute(context.Background(), &ec2.ModifyImageAttributeInput{
		ImageId: aws.String(id), LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{Group: types.PermissionGroupAll}}},
	}); err != nil {
		t.Fatalf("make %s public: %v", id, err)
	}
	return id, c
}

func (w *world) mustExist(t *testing.T, what, region, id string) {
	t.Helper()
	img, ok := w.describeImage(t, region, id)
	if !ok {
		t.Errorf("%s %s in %s was removed", what, id, region)
		return
	}
	for _, s := range snapshotIDs(img) {
		if _, err := w.ec2[region].DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{s}}); err != nil {
			t.Errorf("snapshot %s of %s %s: %v", s, what, id, err)
		}
	}
}

// deregistered returns "region:id" of every DeregisterImage of the last run.
func (w *world) deregistered() []string {
	var out []string
	for _, c := range w.proxy.CallsFor("ec2", "DeregisterImage") {
		out = append(out, c.Region+":"+c.Params.Get("ImageId"))
	}
	slices.Sort(out)
	return out
}

// TestForceDeregisterOnlyExactOwnName: force_deregister removes our AMI with
// exactly the build's name in the build region, with its snapshots, and
// nothing else: not AMIs whose names contain it, not the same name in
// another region, not another account's public AMI of that name.
func TestForceDeregisterOnlyExactOwnName(t *testing.T) {
	w := theWorld(t)
	name := uniqueName("e2e-force")
	exact := w.registerAMI(t, buildRegion, name, nil)
	exactImg, _ := w.describeImage(t, buildRegion, exact)
	keep := map[string]string{ // id → region
		w.registerAMI(t, buildRegion, name+"-old", nil):        buildRegion,
		w.registerAMI(t, buildRegion, "old-"+name, nil):        buildRegion,
		w.registerAMI(t, buildRegion, name[:len(name)-1], nil): buildRegion,
		w.registerAMI(t, euRegion, name, nil):                  euRegion,
	}
	foreign, foreignClient := w.foreignPublicAMI(t, buildRegion, name, nil)
	base := w.baseline(t)

	res := w.run(t, runSpec{Template: w.ebsTemplate(buildOpts{
		Name: name, Extra: "  force_deregister      = true\n  force_delete_snapshot = true\n",
	})})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := artifactAMIs(t, res, "ami-ebs.e2e")
	if got, want := w.deregistered(), []string{buildRegion + ":" + exact}; !slices.Equal(got, want) {
		t.Errorf("DeregisterImage calls = %q, want only %q", got, want)
	}
	if _, ok := w.describeImage(t, buildRegion, exact); ok {
		t.Errorf("%s, named exactly %q, was not deregistered", exact, name)
	}
	var deleted []string
	for _, c := range w.proxy.CallsFor("ec2", "DeleteSnapshot") {
		deleted = append(deleted, c.Params.Get("SnapshotId"))
	}
	slices.Sort(deleted)
	if want := snapshotIDs(exactImg); !slices.Equal(deleted, want) {
		t.Errorf("DeleteSnapshot calls = %q, want the replaced AMI's %q", deleted, want)
	}
	for id, region := range keep {
		w.mustExist(t, "similar AMI", region, id)
	}
	if out, err := foreignClient.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{foreign}}); err != nil || len(out.Images) != 1 {
		t.Errorf("the other account's AMI %s: %v", foreign, err)
	}
	w.expectNoLeaks(t, base, w.artifactKeep(t, amis)...)
	w.removeAMIs(t, amis)
	for id, region := range keep {
		w.removeAMIs(t, map[string]string{region: id})
	}
}

// TestRetentionOnlySelected: retention removes only our AMIs that match
// both its name pattern and its tags, never another account's AMI, never
// one matching only one half of the selector, never the decoys.
func TestRetentionOnlySelected(t *testing.T) {
	w := theWorld(t)
	family := uniqueName("e2e-fam")
	sel := map[string]string{"Family": family}
	old := w.registerAMI(t, buildRegion, family+"-r1", sel)
	keep := map[string]string{
		w.registerAMI(t, buildRegion, family+"-x", map[string]string{"Family": family + "-other"}): buildRegion,
		w.registerAMI(t, buildRegion, "other-"+family+"-r1", sel):                                  buildRegion,
		w.registerAMI(t, euRegion, family+"-untagged", nil):                                        euRegion,
	}
	foreign, foreignClient := w.foreignPublicAMI(t, buildRegion, family+"-r0", sel)
	awstest.NextSecond(t) // moto's creation dates have whole seconds
	src := w.registerAMI(t, buildRegion, family+"-r3", sel)
	base := w.baseline(t)

	res := w.run(t, runSpec{Template: distributeTemplate(fmt.Sprintf(`    source_ami    = %q
    regions       = [%q]
    tags = {
      Family = %q
    }
    keep_releases = 1
    retention {
      name_pattern = %q
      tags = {
        Family = %q
      }
    }
`, src, euRegion, family, family+"-*", family))})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d", res.ExitCode)
	}
	amis := artifactAMIs(t, res, "null.e2e")
	if got, want := w.deregistered(), []string{buildRegion + ":" + old}; !slices.Equal(got, want) {
		t.Errorf("DeregisterImage calls = %q, want only the older release %q", got, want)
	}
	for id, region := range keep {
		w.mustExist(t, "AMI outside the selector", region, id)
	}
	w.mustExist(t, "the source", buildRegion, src)
	if out, err := foreignClient.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{foreign}}); err != nil || len(out.Images) != 1 {
		t.Errorf("the other account's AMI %s: %v", foreign, err)
	}
	w.expectNoLeaks(t, base, w.artifactKeep(t, map[string]string{euRegion: amis[euRegion]})...)
	keep[src], keep[amis[euRegion]] = buildRegion, euRegion
	for id, region := range keep {
		w.removeAMIs(t, map[string]string{region: id})
	}
}

// TestDestroyOnlyOwn calls Destroy on an artifact of each component (Packer
// calls it when a later post-processor does not keep the input): it
// removes the artifact's AMIs, their snapshots and its bundle, and nothing
// else.
func TestDestroyOnlyOwn(t *testing.T) {
	w := theWorld(t)
	ctx := context.Background()
	deregAPI := func(r string) image.DeregisterAPI { return w.ec2[r] }

	t.Run("ami-ebs", func(t *testing.T) {
		name := uniqueName("e2e-destroy")
		own := map[string]string{buildRegion: w.registerAMI(t, buildRegion, name, nil), euRegion: w.registerAMI(t, euRegion, name, nil)}
		other := w.registerAMI(t, buildRegion, name, nil) // same name, not the artifact's
		base := w.baseline(t)
		art := &amibuild.Artifact{Amis: own, BuilderIdValue: "amiforge.ami-ebs", EC2: amiconfig.EC2Deregister(func(r string) *ec2.Client { return w.ec2[r] })}
		if err := art.Destroy(); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		for r, id := range own {
			if _, ok := w.describeImage(t, r, id); ok {
				t.Errorf("%s in %s survived Destroy", id, r)
			}
		}
		w.mustExist(t, "same-named AMI", buildRegion, other)
		w.expectNoLeaks(t, base)
		w.removeAMIs(t, map[string]string{buildRegion: other})
	})

	t.Run("ami-distribute", func(t *testing.T) {
		name := uniqueName("e2e-destroy-dist")
		src := w.registerAMI(t, buildRegion, name, nil)
		copyID := w.registerAMI(t, euRegion, name, nil)
		base := w.baseline(t)
		art := &distribute.Artifact{
			Amis: map[string]string{buildRegion: src, euRegion: copyID}, Copies: map[string]string{euRegion: copyID},
			SourceAMI: src, SourceRegion: buildRegion, EC2: deregAPI,
		}
		if err := art.Destroy(); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		if _, ok := w.describeImage(t, euRegion, copyID); ok {
			t.Errorf("copy %s survived Destroy", copyID)
		}
		w.mustExist(t, "the input AMI", buildRegion, src)
		w.expectNoLeaks(t, base)
		w.removeAMIs(t, map[string]string{buildRegion: src})
	})

	t.Run("ami-instance", func(t *testing.T) {
		prefix := "rel/" + uniqueName("destroy")
		res := w.run(t, runSpec{Template: w.instanceTemplate(w.scratch(t), prefix, buildOpts{})})
		if res.ExitCode != 0 {
			t.Fatalf("packer build exited %d", res.ExitCode)
		}
		amis := artifactAMIs(t, res, "ami-instance.e2e")
		bundleObjects := w.objectsUnder(t, prefix)
		// Objects beside the bundle that are not part of it.
		beside := []string{prefix + "/notes.txt", prefix + "-2/image.manifest.xml", prefix + "/image.part.99"}
		for _, k := range beside {
			if _, err := w.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader([]byte("keep"))}); err != nil {
				t.Fatal(err)
			}
		}
		base := w.baseline(t)
		art := &instance.Artifact{
			Artifact: &amibuild.Artifact{Amis: amis, BuilderIdValue: instance.BuilderId},
			Bundle:   bundlestore.Location{Bucket: bucket, Prefix: prefix, Name: "image"},
			EC2:      func(r string) bundlestore.DeregisterAPI { return w.ec2[r] },
			S3:       func(string) bundlestore.DeleteAPI { return w.s3 },
		}
		if err := art.Destroy(); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		for r, id := range amis {
			if _, ok := w.describeImage(t, r, id); ok {
				t.Errorf("%s survived Destroy", id)
			}
		}
		for _, o := range bundleObjects {
			k := o[len(bucket)+1:]
			if _, err := w.readObject(ctx, k); err == nil {
				t.Errorf("bundle object %s survived Destroy", o)
			}
		}
		for _, k := range beside {
			if _, err := w.readObject(ctx, k); err != nil {
				t.Errorf("object %s beside the bundle was removed: %v", k, err)
			}
		}
		// The AMI's snapshot is one moto invents for RegisterImage (the
		// last run registered it); expectNoLeaks excuses it.
		w.expectNoLeaks(t, base)
		for _, k := range beside {
			_, _ = w.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		}
	})
}
