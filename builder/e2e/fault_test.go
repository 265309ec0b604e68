//go:build unix

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// lostResponseSafe lists the mutating actions whose response may be lost
// (the request takes effect, the client sees an error and retries) without
// AWS itself turning the retry into an error or a duplicate: tags,
// attributes, overwrites and deletes. Creates without a client token
// (CreateImage, RegisterImage, CreateKeyPair, CreateSecurityGroup,
// CreateMultipartUpload) are excluded, and so are RunInstances and
// CopyImage, whose client token moto ignores; TestClientTokensReused covers
// those.
var lostResponseSafe = []string{
	"CreateTags", "ModifyImageAttribute", "ModifySnapshotAttribute", "ModifyInstanceAttribute",
	"StopInstances", "TerminateInstances", "DeleteKeyPair", "DeleteSecurityGroup", "DeleteSnapshot",
	"DeregisterImage", "PutObject", "UploadPart", "DeleteObject", "DeleteObjects",
}

// transientFaults injects, into a fraction rate of AWS calls, one of the
// transient faults AWS and the network produce: throttling (EC2
// RequestLimitExceeded, S3 SlowDown, STS Throttling), HTTP 500 and 503,
// connection resets before the request arrives, and, for calls where that
// is safe, a response lost after the request took effect. On top, every
// new AMI, snapshot, instance and volume is invisible to the next two calls
// naming it (eventual consistency). The choice is driven by seed.
func transientFaults(seed uint64, rate float64) awstest.FaultFunc {
	lost := &awstest.Fault{Name: "lost response (503 after forwarding)", Forward: true, Code: "ServiceUnavailable", Status: http.StatusServiceUnavailable}
	common := []*awstest.Fault{
		awstest.ErrorFault("InternalError", http.StatusInternalServerError),
		awstest.ErrorFault("ServiceUnavailable", http.StatusServiceUnavailable),
		awstest.ResetFault(),
	}
	pick := func(service string) []*awstest.Fault {
		return append([]*awstest.Fault{awstest.ThrottleFault(service)}, common...)
	}
	isService := func(s string) func(awstest.Call) bool {
		return func(c awstest.Call) bool { return c.Service == s }
	}
	lostOK := func(c awstest.Call) bool {
		return (c.Service == "ec2" || c.Service == "s3") && (readOnly(c.Action) || slices.Contains(lostResponseSafe, c.Action))
	}
	return awstest.FirstFault(
		awstest.EventualConsistency(awstest.ConsistencyOptions{}),
		awstest.RandomFaults(seed, rate/4, lostOK, lost),
		awstest.RandomFaults(seed+1, rate, isService("ec2"), pick("ec2")...),
		awstest.RandomFaults(seed+2, rate, isService("s3"), pick("s3")...),
		awstest.RandomFaults(seed+3, rate, isService("sts"), pick("sts")...),
	)
}

// TestTransientFaults runs each component through a 10% rate of transient
// faults: every run succeeds, makes no duplicate and leaves only its
// artifact. The sampled run uses one seed per component; AMI_E2E_FULL=1
// runs more.
func TestTransientFaults(t *testing.T) {
	w := theWorld(t)
	seeds := []uint64{seed(t, 20250101)}
	if seeds[0] == 20250101 {
		// The full matrix adds these seeds to the default one.
		seeds = append(seeds, 7, 42, 1234, 99991)
	}
	for i, sd := range seeds {
		full := i > 0
		t.Run(fmt.Sprintf("ami-ebs/seed=%d", sd), func(t *testing.T) {
			if full {
				onlyInFullMatrix(t)
			}
			base := w.baseline(t)
			name := uniqueName("e2e-fault-ebs")
			res := w.run(t, runSpec{
				Template: w.ebsTemplate(buildOpts{Name: name, TempKey: true, Extra: retries, Provision: []string{"echo provisioned"}}),
				Fault:    transientFaults(sd, 0.10),
				Seed:     &sd,
			})
			if res.ExitCode != 0 {
				t.Fatalf("packer build failed under transient faults (exit %d)", res.ExitCode)
			}
			amis := artifactAMIs(t, res, "ami-ebs.e2e")
			w.checkOneImageNamed(t, buildRegion, name)
			w.checkTokens(t, "RunInstances")
			w.expectNoLeaks(t, base, w.artifactKeep(t, amis)...)
			w.removeAMIs(t, amis)
		})
		t.Run(fmt.Sprintf("ami-instance/seed=%d", sd), func(t *testing.T) {
			if full {
				onlyInFullMatrix(t)
			}
			base := w.baseline(t)
			name := uniqueName("e2e-fault-store")
			prefix := "rel/" + name
			res := w.run(t, runSpec{
				Template: w.instanceTemplate(w.scratch(t), prefix, buildOpts{Name: name, Extra: retries}),
				Fault:    transientFaults(sd, 0.10),
				Seed:     &sd,
			})
			if res.ExitCode != 0 {
				t.Fatalf("packer build failed under transient faults (exit %d)", res.ExitCode)
			}
			amis := artifactAMIs(t, res, "ami-instance.e2e")
			w.checkOneImageNamed(t, buildRegion, name)
			w.checkTokens(t, "RunInstances")
			keep := w.artifactKeep(t, amis)
			keep = append(keep, w.objectsUnder(t, prefix)...)
			if n := len(w.objectsUnder(t, prefix)); n < 2 {
				t.Errorf("bundle under %s has %d objects, want parts and a manifest", prefix, n)
			}
			w.expectNoLeaks(t, base, keep...)
			w.removeAMIs(t, amis)
			w.removeObjects(t, prefix)
		})
		t.Run(fmt.Sprintf("ami-distribute/seed=%d", sd), func(t *testing.T) {
			if full {
				onlyInFullMatrix(t)
			}
			name := uniqueName("e2e-fault-dist")
			src := w.registerAMI(t, buildRegion, name, nil)
			defer w.removeAMIs(t, map[string]string{buildRegion: src})
			base := w.baseline(t)
			res := w.run(t, runSpec{
				Template: distributeTemplate(distributeBody(src, retries)),
				Fault:    transientFaults(sd, 0.10),
				Seed:     &sd,
			})
			if res.ExitCode != 0 {
				t.Fatalf("packer build failed under transient faults (exit %d)", res.ExitCode)
			}
			amis := artifactAMIs(t, res, "null.e2e")
			if len(amis) != 3 || amis[buildRegion] != src {
				t.Fatalf("distributed AMIs = %v, want %s and one copy in each of %s, %s", amis, src, euRegion, apRegion)
			}
			for _, r := range []string{euRegion, apRegion} {
				w.checkOneImageNamed(t, r, name)
			}
			w.checkTokens(t, "CopyImage")
			w.expectNoLeaks(t, base, w.artifactKeep(t, amis)...)
			delete(amis, buildRegion)
			w.removeAMIs(t, amis)
		})
	}
}

// checkOneImageNamed fails unless exactly one AMI of ours has the name in
// region: a retried create made no duplicate.
func (w *world) checkOneImageNamed(t *testing.T, region, name string) {
	t.Helper()
	out, err := w.ec2[region].DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}},
	})
	if err != nil {
		t.Fatalf("describe images named %s: %v", name, err)
	}
	if len(out.Images) != 1 {
		var ids []string
		for _, img := range out.Images {
			ids = append(ids, aws.ToString(img.ImageId))
		}
		t.Errorf("%s: %d AMIs named %q (%v), want exactly one", region, len(out.Images), name, ids)
	}
}

// checkTokens fails unless every call of action (RunInstances or
// CopyImage) in the last run carried a client token and every retry of one
// request (same region) reused it.
func (w *world) checkTokens(t *testing.T, action string) map[string][]string {
	t.Helper()
	calls := w.proxy.CallsFor("ec2", action)
	if len(calls) == 0 {
		t.Fatalf("no %s call recorded", action)
	}
	tokens := map[string][]string{} // region → distinct tokens
	for _, c := range calls {
		tok := c.Params.Get("ClientToken")
		if tok == "" {
			t.Errorf("%s in %s (call %d) sent no ClientToken", action, c.Region, c.Seq)
			continue
		}
		if !slices.Contains(tokens[c.Region], tok) {
			tokens[c.Region] = append(tokens[c.Region], tok)
		}
	}
	for region, toks := range tokens {
		if len(toks) != 1 {
			t.Errorf("%s in %s used %d different client tokens %q; retries must reuse the first", action, region, len(toks), toks)
		}
	}
	return tokens
}

// objectsUnder lists "bucket/key" of the objects under prefix.
func (w *world) objectsUnder(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := w.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, bucket+"/"+aws.ToString(o.Key))
	}
	return keys
}

// TestClientTokensReused loses the response of the first RunInstances and
// of the first CopyImage into each region (the request takes effect, the
// client sees HTTP 503 and retries): every retry carries the first
// attempt's client token, so EC2 returns the first instance or copy
// instead of making another. moto ignores client tokens and does make a
// second one; those moto-made duplicates, recognised by the token, are
// excused from the leak check and removed.
func TestClientTokensReused(t *testing.T) {
	w := theWorld(t)
	base := w.baseline(t)
	name := uniqueName("e2e-token")
	lost := &awstest.Fault{Name: "lost response", Forward: true, Code: "ServiceUnavailable", Status: http.StatusServiceUnavailable}
	firstPerRegion := func(action string) awstest.FaultFunc {
		seen := map[string]bool{}
		var mu sync.Mutex
		return func(_ *http.Request, c awstest.Call) *awstest.Fault {
			if !awstest.Matches(c, "ec2", action) {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[c.Region] {
				return nil
			}
			seen[c.Region] = true
			return lost
		}
	}
	res := w.run(t, runSpec{
		Template: w.ebsTemplate(buildOpts{Name: name, PostProcessor: distributeBody("", "")}),
		Fault:    awstest.FirstFault(firstPerRegion("RunInstances"), firstPerRegion("CopyImage")),
	})
	if res.ExitCode != 0 {
		t.Fatalf("packer build failed after lost responses (exit %d)", res.ExitCode)
	}
	amis := artifactAMIs(t, res, "ami-ebs.e2e")
	keep := w.artifactKeep(t, amis)

	runTokens := w.checkTokens(t, "RunInstances")
	copyTokens := w.checkTokens(t, "CopyImage")
	if n := len(w.proxy.CallsFor("ec2", "RunInstances")); n != 2 {
		t.Errorf("RunInstances calls = %d, want the lost one and one retry", n)
	}
	if n := len(w.proxy.CallsFor("ec2", "CopyImage")); n != 4 {
		t.Errorf("CopyImage calls = %d, want a lost one and a retry in each of two regions", n)
	}
	// Remove or excuse what moto made twice because it ignores the token.
	ctx := context.Background()
	c := w.ec2[buildRegion]
	// (moto does not know the client-token filter)
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if slices.Contains(runTokens[buildRegion], aws.ToString(in.ClientToken)) &&
				in.State != nil && in.State.Name != types.InstanceStateNameTerminated {
				id := aws.ToString(in.InstanceId)
				if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
					t.Fatalf("terminate moto's duplicate %s: %v", id, err)
				}
			}
		}
	}
	dups := map[string]string{}
	for region := range copyTokens {
		imgs, err := w.ec2[region].DescribeImages(ctx, &ec2.DescribeImagesInput{
			Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range imgs.Images {
			if id := aws.ToString(img.ImageId); id != amis[region] {
				dups[region] = id
				keep = append(keep, region+":"+id)
				for _, s := range snapshotIDs(img) {
					keep = append(keep, region+":"+s)
				}
			}
		}
	}
	w.expectNoLeaks(t, base, keep...)
	w.removeAMIs(t, amis)
	for r, id := range dups {
		w.removeAMIs(t, map[string]string{r: id})
	}
	if !strings.Contains(strings.Join(w.proxy.Actions(), " "), "ec2:TerminateInstances") {
		t.Error("the build instance was not terminated")
	}
}
