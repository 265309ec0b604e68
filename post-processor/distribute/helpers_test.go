//go:build unix

package distribute

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// Regions of the moto-backed tests: the source region and two targets.
const (
	srcRegion = "us-east-1"
	euRegion  = "eu-west-1"
	apRegion  = "ap-southeast-2"
)

var allRegions = []string{srcRegion, euRegion, apRegion}

const (
	shareAccount = "111122223333"
	snapAccount  = "444455556666"
)

// world is one test's view of the shared moto: a fresh recording proxy,
// direct clients (whose calls the proxy does not see) and a baseline.
type world struct {
	moto     *awstest.Moto
	proxy    *awstest.Proxy
	baseline *awstest.Snapshot
	clients  map[string]*ec2.Client
}

// kmsKey makes a customer-managed KMS key with alias (e.g. "alias/team")
// in region of the emulator and returns the key's ARN.
func (w *world) kmsKey(t *testing.T, region, alias string) string {
	t.Helper()
	ctx := context.Background()
	c := kms.NewFromConfig(awstest.Config(w.moto.Endpoint, region))
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("test key " + alias)})
	if err != nil {
		t.Fatalf("CreateKey in %s: %v", region, err)
	}
	if alias != "" {
		if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
			t.Fatalf("CreateAlias %s in %s: %v", alias, region, err)
		}
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	m := motoServer(t)
	w := &world{moto: m, proxy: awstest.NewProxy(t, m.Endpoint, awstest.ProxyOptions{}), clients: map[string]*ec2.Client{}}
	for _, r := range allRegions {
		w.clients[r], _ = awstest.Clients(m.Endpoint, r)
	}
	var err error
	if w.baseline, err = awstest.TakeSnapshot(context.Background(), m.Endpoint, allRegions); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	return w
}

// uniqueName returns an AMI name no other test uses.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// registerImage registers an AMI owned by the test account in region and
// returns its ID and snapshot IDs. When the tags are given, the AMI is
// tagged.
func (w *world) registerImage(t *testing.T, region, name string, tags map[string]string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	c := w.clients[region]
	out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:           aws.String(name),
		Description:    aws.String("registered by the test"),
		RootDeviceName: aws.String("/dev/xvda"),
		Architecture:   types.ArchitectureValuesX8664,
	})
	if err != nil {
		t.Fatalf("RegisterImage %s in %s: %v", name, region, err)
	}
	id := aws.ToString(out.ImageId)
	if len(tags) > 0 {
		var ts []types.Tag
		for k, v := range tags {
			ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ts}); err != nil {
			t.Fatalf("tag %s: %v", id, err)
		}
	}
	img, ok := w.image(t, region, id)
	if !ok {
		t.Fatalf("registered image %s not found", id)
	}
	return id, snapshotIDs(img)
}

// image describes one image; ok is false when it does not exist.
func (w *world) image(t *testing.T, region, id string) (types.Image, bool) {
	t.Helper()
	out, err := w.clients[region].DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if strings.Contains(err.Error(), "InvalidAMIID") {
			return types.Image{}, false
		}
		t.Fatalf("DescribeImages %s in %s: %v", id, region, err)
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == id && img.State != types.ImageStateDeregistered {
			return img, true
		}
	}
	return types.Image{}, false
}

// imagesNamed lists the test account's AMIs with this exact name.
func (w *world) imagesNamed(t *testing.T, region, name string) []types.Image {
	t.Helper()
	out, err := w.clients[region].DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}},
	})
	if err != nil {
		t.Fatalf("DescribeImages name=%s in %s: %v", name, region, err)
	}
	return out.Images
}

// launchPermissions returns the image's launch permissions as
// "account:…", "group:…", "org:…" and "ou:…" strings, sorted.
func (w *world) launchPermissions(t *testing.T, region, id string) []string {
	t.Helper()
	out, err := w.clients[region].DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{
		ImageId: aws.String(id), Attribute: types.ImageAttributeNameLaunchPermission,
	})
	if err != nil {
		t.Fatalf("DescribeImageAttribute launchPermission %s in %s: %v", id, region, err)
	}
	var got []string
	for _, p := range out.LaunchPermissions {
		switch {
		case p.UserId != nil:
			got = append(got, "account:"+*p.UserId)
		case p.Group != "":
			got = append(got, "group:"+string(p.Group))
		case p.OrganizationArn != nil:
			got = append(got, "org:"+*p.OrganizationArn)
		case p.OrganizationalUnitArn != nil:
			got = append(got, "ou:"+*p.OrganizationalUnitArn)
		}
	}
	sort.Strings(got)
	return got
}

// volumePermissions returns the accounts and groups allowed to create
// volumes from a snapshot, sorted.
func (w *world) volumePermissions(t *testing.T, region, snap string) []string {
	t.Helper()
	out, err := w.clients[region].DescribeSnapshotAttribute(context.Background(), &ec2.DescribeSnapshotAttributeInput{
		SnapshotId: aws.String(snap), Attribute: types.SnapshotAttributeNameCreateVolumePermission,
	})
	if err != nil {
		t.Fatalf("DescribeSnapshotAttribute %s in %s: %v", snap, region, err)
	}
	var got []string
	for _, p := range out.CreateVolumePermissions {
		if p.UserId != nil {
			got = append(got, "account:"+*p.UserId)
		}
		if p.Group != "" {
			got = append(got, "group:"+string(p.Group))
		}
	}
	sort.Strings(got)
	return got
}

// snapshotTags returns the tags of a snapshot.
func (w *world) snapshotTags(t *testing.T, region, snap string) map[string]string {
	t.Helper()
	out, err := w.clients[region].DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
	if err != nil {
		t.Fatalf("DescribeSnapshots %s in %s: %v", snap, region, err)
	}
	if len(out.Snapshots) != 1 {
		t.Fatalf("snapshot %s in %s: %d found", snap, region, len(out.Snapshots))
	}
	return tagMap(out.Snapshots[0].Tags)
}

// leaks lists what exists now in every test region and did not at the
// start of the test.
func (w *world) leaks(t *testing.T) awstest.Leaks {
	t.Helper()
	l, err := awstest.ListLeaks(context.Background(), w.moto.Endpoint, allRegions, w.baseline)
	if err != nil {
		t.Fatalf("list leaks: %v", err)
	}
	return l
}

// accessRaw returns the access options that point the post-processor at
// the proxy.
func (w *world) accessRaw() map[string]any {
	ak, sk := awstest.TestCredentials()
	return map[string]any{
		"region":              srcRegion,
		"access_key":          ak,
		"secret_key":          sk,
		"custom_endpoint_ec2": w.proxy.URL,
		"custom_endpoint_s3":  w.proxy.URL,
		"custom_endpoint_sts": w.proxy.URL,
		"max_retries":         1,
		"aws_polling":         map[string]any{"delay_seconds": 1, "max_attempts": 30},
	}
}

// postProcess configures the post-processor with the access options and
// raw, and runs it on in. It returns the UI's output as well.
func (w *world) postProcess(t *testing.T, ctx context.Context, raw map[string]any, in packersdk.Artifact) (packersdk.Artifact, string, error) {
	t.Helper()
	all := w.accessRaw()
	maps.Copy(all, raw)
	p := &PostProcessor{}
	if err := p.Configure(all); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	var out syncBuffer
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &out, ErrorWriter: &out}
	art, keep, force, err := p.PostProcess(ctx, ui, in)
	if !keep || !force {
		t.Errorf("PostProcess returned keep=%v force=%v; the input artifact must always be kept", keep, force)
	}
	if testing.Verbose() {
		t.Logf("UI output:\n%s", out.String())
	}
	return art, out.String(), err
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func snapshotIDs(img types.Image) []string {
	var ids []string
	for _, bdm := range img.BlockDeviceMappings {
		if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
			ids = append(ids, *bdm.Ebs.SnapshotId)
		}
	}
	sort.Strings(ids)
	return ids
}

func mapsContain(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// readManifest reads a manifest_output file.
func readManifest(t *testing.T, path string) Manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read manifest: %v", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("parse manifest: %v\n%s", err, b)
	}
	return m
}

// regional returns "region:id" strings, as awstest.Leaks lists them.
func regional(region string, ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = region + ":" + id
	}
	return out
}

// sortedCopy returns a sorted copy of s.
func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

func runInput(imageID string) *ec2.RunInstancesInput {
	return &ec2.RunInstancesInput{
		ImageId: aws.String(imageID), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	}
}

func terminateInput(id string) *ec2.TerminateInstancesInput {
	return &ec2.TerminateInstancesInput{InstanceIds: []string{id}}
}

func describeSnapshot(id string) *ec2.DescribeSnapshotsInput {
	return &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}}
}

func deregisterInput(id string) *ec2.DeregisterImageInput {
	return &ec2.DeregisterImageInput{ImageId: aws.String(id)}
}
