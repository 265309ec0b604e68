//go:build unix

package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// sessionToken is set as AWS_SESSION_TOKEN for every packer run, so that
// every run's output and log can be scanned for it.
const sessionToken = "IQoJb3JpZ2luX2VjE-e2e-session-token-7f3c9a1d5b2e8f60"

// runSpec is one packer invocation.
type runSpec struct {
	Template string
	// TemplateName is the template's file name; empty means
	// template.pkr.hcl (a legacy JSON template needs a .json name).
	TemplateName string
	Args         []string // packer arguments; nil means build -machine-readable
	Fault        awstest.FaultFunc
	InterruptOn  string
	// Interrupt, when not nil, sends SIGINT when it is closed.
	Interrupt <-chan struct{}
	Timeout   time.Duration
	// Env is added to packer's environment.
	Env []string
	// Seed is printed when the test fails, to replay random faults.
	Seed *uint64
}

// run executes packer through the build proxy with the spec's faults,
// counts the run and its faults, and scans its output, debug log and the
// commands run on the "instance" for secrets.
func (w *world) run(t *testing.T, s runSpec) *packertest.Result {
	t.Helper()
	args := s.Args
	if args == nil {
		args = []string{"build", "-machine-readable"}
	}
	w.proxy.Reset()
	w.proxy.SetFault(s.Fault)
	defer w.proxy.SetFault(nil)
	cmdsBefore := len(w.sshd.CommandLog())
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	res, err := w.packer.Run(context.Background(), packertest.RunOptions{
		Args:         args,
		Template:     s.Template,
		TemplateName: s.TemplateName,
		InterruptOn:  s.InterruptOn,
		Interrupt:    s.Interrupt,
		Timeout:      timeout,
		Env:          append([]string{"AWS_SESSION_TOKEN=" + sessionToken}, s.Env...),
	})
	if err != nil {
		t.Fatalf("run packer: %v", err)
	}
	stats.runs.Add(1)
	for _, c := range w.proxy.Calls() {
		if c.Fault != nil {
			stats.faults.Add(1)
		}
	}
	if s.Seed != nil {
		seed := *s.Seed
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("random faults were seeded with %d; replay with AMI_E2E_SEED=%d", seed, seed)
			}
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			var faults []string
			for _, c := range w.proxy.Calls() {
				if c.Fault != nil {
					faults = append(faults, c.String())
				}
			}
			t.Logf("packer %s: exit %d after %s; %d injected faults: %s\noutput:\n%s\ndebug log: %s",
				strings.Join(args, " "), res.ExitCode, res.Duration.Round(time.Millisecond), len(faults),
				strings.Join(faults, "; "), res.Output(), res.LogPath)
		}
	})
	w.scanSecrets(t, res, w.sshd.CommandLog()[cmdsBefore:], nil)
	return res
}

// pemHeaderRE finds PEM private key blocks of any kind.
var pemHeaderRE = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)

// scanSecrets fails the test when the AWS secret key, the session token, a
// PEM private key header, the sshd client key or any of extra appears in
// packer's output, its debug log or the commands run on the instance.
func (w *world) scanSecrets(t *testing.T, res *packertest.Result, commands []string, extra map[string]string) {
	t.Helper()
	log, err := res.Log()
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read packer log: %v", err)
	}
	sshKey, err := os.ReadFile(w.sshd.PrivateKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"AWS secret access key": awstest.TestSecretAccessKey,
		"AWS session token":     sessionToken,
	}
	for i, line := range pemBodyLines(sshKey) {
		secrets[fmt.Sprintf("sshd client key line %d", i)] = line
	}
	for k, v := range extra {
		if v == "" {
			t.Fatalf("empty secret %q", k)
		}
		secrets[k] = v
	}
	places := map[string]string{
		"packer output":            res.Output(),
		"packer debug log":         log,
		"commands on the instance": strings.Join(commands, "\n"),
	}
	for where, text := range places {
		if m := pemHeaderRE.FindString(text); m != "" {
			t.Errorf("%s contains a private key (%q)", where, m)
		}
		for what, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains the %s", where, what)
			}
		}
	}
}

// pemBodyLines returns the base64 lines of PEM data that are long enough
// to be distinctive.
func pemBodyLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if len(l) >= 40 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// baseline lists what exists now in every region and in S3.
func (w *world) baseline(t *testing.T) *awstest.Snapshot {
	t.Helper()
	s, err := awstest.TakeSnapshot(context.Background(), w.moto.Endpoint, allRegions)
	if err != nil {
		t.Fatalf("baseline: %v", err)
	}
	return s
}

// expectNoLeaks fails the test when anything but keep ("region:id" of
// images, snapshots; "bucket/key" of objects) was created since base; it
// counts every leak. It also checks that the decoys are untouched.
func (w *world) expectNoLeaks(t *testing.T, base *awstest.Snapshot, keep ...string) {
	t.Helper()
	l, err := awstest.ListLeaks(context.Background(), w.moto.Endpoint, allRegions, base)
	if err != nil {
		t.Fatalf("list leaks: %v", err)
	}
	for _, ids := range []*[]string{&l.Instances, &l.KeyPairs, &l.SecurityGroups, &l.Images, &l.Snapshots,
		&l.Volumes, &l.S3Buckets, &l.S3Objects, &l.MultipartUploads} {
		*ids = slices.DeleteFunc(*ids, func(id string) bool { return slices.Contains(keep, id) })
	}
	l.Snapshots = w.excuseRegisterSnapshots(t, l.Snapshots)
	if !l.Empty() {
		stats.leaks.Add(int64(l.Count()))
		t.Errorf("the run left behind:\n%s", l)
	}
	w.checkDecoys(t)
}

// artifactKeep returns the "region:id" of each AMI and its snapshots, for
// expectNoLeaks.
func (w *world) artifactKeep(t *testing.T, amis map[string]string) []string {
	t.Helper()
	var keep []string
	for region, id := range amis {
		keep = append(keep, region+":"+id)
		img, ok := w.describeImage(t, region, id)
		if !ok {
			t.Errorf("artifact %s does not exist in %s", id, region)
			continue
		}
		for _, s := range snapshotIDs(img) {
			keep = append(keep, region+":"+s)
		}
	}
	return keep
}

// removeAMIs deregisters AMIs made by a successful run, with their
// snapshots, so that later tests list less.
func (w *world) removeAMIs(t *testing.T, amis map[string]string) {
	t.Helper()
	ctx := context.Background()
	for region, id := range amis {
		img, ok := w.describeImage(t, region, id)
		if !ok {
			continue
		}
		if _, err := w.ec2[region].DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)}); err != nil {
			t.Errorf("deregister %s: %v", id, err)
		}
		for _, s := range snapshotIDs(img) {
			if _, err := w.ec2[region].DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s)}); err != nil {
				t.Errorf("delete %s: %v", s, err)
			}
		}
	}
}

// removeObjects deletes the S3 objects under prefix.
func (w *world) removeObjects(t *testing.T, prefix string) {
	t.Helper()
	ctx := context.Background()
	out, err := w.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
	}
	for _, o := range out.Contents {
		if _, err := w.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
			t.Errorf("delete %s: %v", aws.ToString(o.Key), err)
		}
	}
}

func snapshotIDs(img types.Image) []string {
	var ids []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			ids = append(ids, *m.Ebs.SnapshotId)
		}
	}
	slices.Sort(ids)
	return ids
}

// artifactAMIs returns region → AMI of the artifact of build with the most
// regions (a post-processor's artifact follows the builder's).
func artifactAMIs(t *testing.T, res *packertest.Result, build string) map[string]string {
	t.Helper()
	ids := packertest.ArtifactIDs(res.Stdout)[build]
	best := ""
	for _, id := range ids {
		if strings.Count(id, ",") >= strings.Count(best, ",") {
			best = id
		}
	}
	m := map[string]string{}
	for _, part := range strings.Split(best, ",") {
		region, ami, ok := strings.Cut(part, ":")
		if !ok || !strings.HasPrefix(ami, "ami-") {
			t.Fatalf("artifact ids of %s = %q: %q is not region:ami-…", build, ids, part)
		}
		m[region] = ami
	}
	return m
}

// registerAMI registers an AMI owned by the test account (moto gives it one
// snapshot) and tags it.
func (w *world) registerAMI(t *testing.T, region, name string, tags map[string]string) string {
	t.Helper()
	id, err := registerAMI(context.Background(), w.ec2[region], name, tags)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func registerAMI(ctx context.Context, c *ec2.Client, name string, tags map[string]string) (string, error) {
	out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:           aws.String(name),
		Description:    aws.String("registered by the e2e test"),
		RootDeviceName: aws.String("/dev/xvda"),
		Architecture:   types.ArchitectureValuesX8664,
	})
	if err != nil {
		return "", fmt.Errorf("register %s: %w", name, err)
	}
	id := aws.ToString(out.ImageId)
	if len(tags) > 0 {
		if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ec2Tags(tags)}); err != nil {
			return "", fmt.Errorf("tag %s: %w", id, err)
		}
	}
	return id, nil
}

func ec2Tags(m map[string]string) []types.Tag {
	var ts []types.Tag
	for _, k := range sortedKeys(m) {
		ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return ts
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// uniqueName returns a name no other run uses.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// readObject returns an S3 object's content.
func (w *world) readObject(ctx context.Context, key string) ([]byte, error) {
	out, err := w.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// mustContain fails the test for each want missing from text.
func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not mention %q", what, w)
		}
	}
}

// scratch returns a fresh directory on the "instance".
func (w *world) scratch(t *testing.T) string {
	t.Helper()
	d := filepath.Join(w.workDir, uniqueName("run"))
	if err := os.MkdirAll(d, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// excuseRegisterSnapshots removes from leaked ("region:id") the snapshots
// moto invents for every RegisterImage ("Auto-created snapshot for AMI
// ami-…") whose AMI is gone, deleting them: real instance-store AMIs have
// no snapshots, and deregistering one leaves nothing to delete. It applies
// only when the last run called RegisterImage.
func (w *world) excuseRegisterSnapshots(t *testing.T, leaked []string) []string {
	t.Helper()
	if len(leaked) == 0 || len(w.proxy.CallsFor("ec2", "RegisterImage")) == 0 {
		return leaked
	}
	ctx := context.Background()
	return slices.DeleteFunc(leaked, func(rid string) bool {
		region, id, _ := strings.Cut(rid, ":")
		out, err := w.ec2[region].DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err != nil || len(out.Snapshots) != 1 {
			return false
		}
		ami, ok := strings.CutPrefix(aws.ToString(out.Snapshots[0].Description), "Auto-created snapshot for AMI ")
		if !ok {
			return false
		}
		if _, exists := w.describeImage(t, region, ami); exists {
			return false
		}
		_, err = w.ec2[region].DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
		return err == nil
	})
}
