//go:build unix

package amibuild

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// The step tests share one moto server, started on first use: moto's state
// is global, so each test works on resources it made itself (unique names,
// the IDs it got back).

const testRegion = "us-east-1"

var (
	motoOnce sync.Once
	motoSrv  *awstest.Moto
	motoErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if motoSrv != nil {
		if err := motoSrv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop moto:", err)
		}
	}
	os.Exit(code)
}

// testEnv is a build state wired to moto through a recording proxy.
type testEnv struct {
	proxy *awstest.Proxy
	sess  *awscfg.Session
	ec2   *ec2.Client // straight to moto, unrecorded
	state *multistep.BasicStateBag
	ui    *packersdk.MockUi
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	motoOnce.Do(func() {
		motoSrv, motoErr = awstest.StartMoto(context.Background(), awstest.MotoOptions{})
	})
	if motoErr != nil {
		t.Fatalf("start moto: %v", motoErr)
	}
	p := awstest.NewProxy(t, motoSrv.Endpoint, awstest.ProxyOptions{})
	key, secret := awstest.TestCredentials()
	sess, err := awscfg.New(context.Background(), awscfg.Config{
		Region:      testRegion,
		AccessKey:   key,
		SecretKey:   secret,
		MaxAttempts: 1,
		Endpoints:   awscfg.Endpoints{EC2: p.URL, STS: p.URL, S3: p.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := awstest.Clients(motoSrv.Endpoint, testRegion)
	e := &testEnv{proxy: p, sess: sess, ec2: direct, state: new(multistep.BasicStateBag), ui: &packersdk.MockUi{}}
	StateUI.Put(e.state, e.ui)
	StateSession.Put(e.state, sess)
	return e
}

// run runs step and fails the test unless it continues.
func (e *testEnv) run(t *testing.T, step multistep.Step) {
	t.Helper()
	if action := step.Run(context.Background(), e.state); action != multistep.ActionContinue {
		err, _ := StateError.Get(e.state)
		t.Fatalf("%T halted: %v", step, err)
	}
}

// runHalt runs step, expects it to halt, and returns the error it recorded.
func (e *testEnv) runHalt(t *testing.T, step multistep.Step) error {
	t.Helper()
	StateError.Remove(e.state)
	if action := step.Run(context.Background(), e.state); action != multistep.ActionHalt {
		t.Fatalf("%T continued; want it to halt", step)
	}
	err, ok := StateError.Get(e.state)
	if !ok || err == nil {
		t.Fatalf("%T halted without recording an error", step)
	}
	t.Logf("%T halted: %v", step, err)
	if !e.ui.ErrorCalled || e.ui.ErrorMessage != err.Error() {
		t.Errorf("UI error = %q, want the recorded error %q", e.ui.ErrorMessage, err)
	}
	return err
}

// actions returns the EC2 actions the proxy saw, in order.
func (e *testEnv) actions() []string {
	var out []string
	for _, c := range e.proxy.Calls() {
		if c.Service == "ec2" {
			out = append(out, c.Action)
		}
	}
	return out
}

// sourceImage finds moto's preloaded Ubuntu 16.04 image.
func sourceImage(t *testing.T, api *ec2.Client) types.Image {
	t.Helper()
	out, err := api.DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners:  []string{"099720109477"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*"}}},
	})
	if err != nil || len(out.Images) == 0 {
		t.Fatalf("find moto's Ubuntu image: %v (%d images)", err, len(out.Images))
	}
	return out.Images[0]
}

// runInstance launches and stops an instance directly in moto, for tests
// that need one without the steps.
func runInstance(t *testing.T, api *ec2.Client, imageID string) string {
	t.Helper()
	ctx := context.Background()
	out, err := api.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(imageID), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	t.Cleanup(func() {
		_, _ = api.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	})
	return id
}

// createImage makes an AMI named name directly in moto and returns its ID
// and snapshot IDs.
func createImage(t *testing.T, api *ec2.Client, sourceAMI, name string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	instanceID := runInstance(t, api, sourceAMI)
	out, err := api.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(instanceID), Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ImageId)
	img := describeImage(t, api, id)
	var snaps []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			snaps = append(snaps, *m.Ebs.SnapshotId)
		}
	}
	return id, snaps
}

// describeImage returns the image, failing the test if it does not exist.
func describeImage(t *testing.T, api *ec2.Client, id string) types.Image {
	t.Helper()
	out, err := api.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("describe image %s: %v", id, err)
	}
	return out.Images[0]
}

// imageExists reports whether id is still registered.
func imageExists(t *testing.T, api *ec2.Client, id string) bool {
	t.Helper()
	out, err := api.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if strings.Contains(err.Error(), "InvalidAMIID") {
			return false
		}
		t.Fatalf("describe image %s: %v", id, err)
	}
	return len(out.Images) > 0 && out.Images[0].State != types.ImageStateDeregistered
}

// snapshotExists reports whether snapshot id exists.
func snapshotExists(t *testing.T, api *ec2.Client, id string) bool {
	t.Helper()
	out, err := api.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil {
		if strings.Contains(err.Error(), "InvalidSnapshot.NotFound") {
			return false
		}
		t.Fatalf("describe snapshot %s: %v", id, err)
	}
	return len(out.Snapshots) > 0
}

// uniqueName returns a name no other test uses.
func uniqueName(t *testing.T) string {
	return fmt.Sprintf("test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

// tagMap converts EC2 tags to a map.
func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, tg := range tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}
