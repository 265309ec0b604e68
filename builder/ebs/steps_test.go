//go:build unix

package ebs

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
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/amiforge/packer-plugin-ami/builder/amibuild"
	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

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

type testEnv struct {
	proxy *awstest.Proxy
	ec2   *ec2.Client // straight to moto, unrecorded
	state *multistep.BasicStateBag
	ui    *packersdk.MockUi
}

// newTestEnv returns a build state wired to a shared moto through a
// recording proxy, with a stopped instance launched from a preloaded image
// (StateInstanceID) and its build data (StateBuildInfo).
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	motoOnce.Do(func() {
		motoSrv, motoErr = awstest.StartMoto(ctx, awstest.MotoOptions{})
	})
	if motoErr != nil {
		t.Fatalf("start moto: %v", motoErr)
	}
	p := awstest.NewProxy(t, motoSrv.Endpoint, awstest.ProxyOptions{})
	key, secret := awstest.TestCredentials()
	sess, err := awscfg.New(ctx, awscfg.Config{
		Region: testRegion, AccessKey: key, SecretKey: secret, MaxAttempts: 1,
		Endpoints: awscfg.Endpoints{EC2: p.URL, STS: p.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := awstest.Clients(motoSrv.Endpoint, testRegion)
	e := &testEnv{proxy: p, ec2: direct, state: new(multistep.BasicStateBag), ui: &packersdk.MockUi{}}
	amibuild.StateUI.Put(e.state, e.ui)
	amibuild.StateSession.Put(e.state, sess)

	imgs, err := direct.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"099720109477"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*"}}},
	})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("find moto's Ubuntu image: %v", err)
	}
	src := imgs.Images[0]
	run, err := direct.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: src.ImageId, InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	t.Cleanup(func() {
		_, _ = direct.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	})
	amibuild.StateInstanceID.Put(e.state, id)
	amibuild.StateBuildInfo.Put(e.state, amiconfig.NewBuildInfo(testRegion, src))
	return e
}

func (e *testEnv) run(t *testing.T, step multistep.Step) {
	t.Helper()
	if a := step.Run(context.Background(), e.state); a != multistep.ActionContinue {
		err, _ := amibuild.StateError.Get(e.state)
		t.Fatalf("%T halted: %v", step, err)
	}
}

func (e *testEnv) imageExists(t *testing.T, id string) bool {
	t.Helper()
	out, err := e.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if strings.Contains(err.Error(), "InvalidAMIID") {
			return false
		}
		t.Fatal(err)
	}
	return len(out.Images) == 1 && out.Images[0].State != types.ImageStateDeregistered
}

func (e *testEnv) snapshotExists(t *testing.T, id string) bool {
	t.Helper()
	out, err := e.ec2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil {
		if strings.Contains(err.Error(), "InvalidSnapshot.NotFound") {
			return false
		}
		t.Fatal(err)
	}
	return len(out.Snapshots) == 1
}

func uniqueName(t *testing.T) string {
	return fmt.Sprintf("ebs-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

func TestStepCreateImage(t *testing.T) {
	tests := []struct {
		name     string
		rollback string // "", multistep.StateHalted or multistep.StateCancelled
		kept     bool
	}{
		{"success keeps the AMI", "", true},
		{"halted run removes it", multistep.StateHalted, false},
		{"cancelled run removes it", multistep.StateCancelled, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			name := uniqueName(t)
			step := &stepCreateImage{
				Region: testRegion,
				Config: &amibuild.AMIConfig{
					AMIName:        name,
					AMIDescription: "from {{ .SourceAMIName }}",
					AMIMappings:    amibuild.BlockDevices{{DeviceName: "/dev/sdf", VolumeSize: 4, VolumeType: "gp3"}},
				},
				Ctx: interpolate.Context{Funcs: amiconfig.TemplateFuncs},
			}
			e.run(t, step)

			id, _ := amibuild.StateImageID.Get(e.state)
			amis, _ := amibuild.StateAMIs.Get(e.state)
			snaps, _ := amibuild.StateSnapshotIDs.Get(e.state)
			if id == "" || amis[testRegion] != id || len(amis) != 1 || len(snaps) == 0 {
				t.Fatalf("state: image %q, amis %v, snapshots %v", id, amis, snaps)
			}
			calls := e.proxy.CallsFor("ec2", "CreateImage")
			if len(calls) != 1 {
				t.Fatalf("%d CreateImage calls", len(calls))
			}
			p := calls[0].Params
			info, _ := amibuild.StateBuildInfo.Get(e.state)
			instanceID, _ := amibuild.StateInstanceID.Get(e.state)
			if p.Get("Name") != name || p.Get("InstanceId") != instanceID || p.Get("Description") != "from "+info.SourceAMIName ||
				p.Get("BlockDeviceMapping.1.DeviceName") != "/dev/sdf" || p.Get("BlockDeviceMapping.1.Ebs.VolumeSize") != "4" {
				t.Errorf("CreateImage parameters: %v", p)
			}

			if tc.rollback != "" {
				e.state.Put(tc.rollback, true)
			}
			step.Cleanup(e.state)
			if got := e.imageExists(t, id); got != tc.kept {
				t.Errorf("after Cleanup the AMI exists = %t, want %t", got, tc.kept)
			}
			for _, s := range snaps {
				if got := e.snapshotExists(t, s); got != tc.kept {
					t.Errorf("after Cleanup snapshot %s exists = %t, want %t", s, got, tc.kept)
				}
			}
			if e.ui.ErrorCalled {
				t.Errorf("cleanup error: %s", e.ui.ErrorMessage)
			}
		})
	}
}

func TestStepCreateImageChecksRenderedDescription(t *testing.T) {
	e := newTestEnv(t)
	info, _ := amibuild.StateBuildInfo.Get(e.state)
	long := *info
	long.SourceAMIName = strings.Repeat("n", 251)
	amibuild.StateBuildInfo.Put(e.state, &long)
	step := &stepCreateImage{
		Region: testRegion,
		Config: &amibuild.AMIConfig{AMIName: uniqueName(t), AMIDescription: "from {{ .SourceAMIName }}"},
		Ctx:    interpolate.Context{Funcs: amiconfig.TemplateFuncs},
	}
	if a := step.Run(context.Background(), e.state); a != multistep.ActionHalt {
		t.Fatalf("Run = %v, want halt", a)
	}
	err, _ := amibuild.StateError.Get(e.state)
	if err == nil || !strings.Contains(err.Error(), "ami_description: 256 characters once rendered; valid is up to 255") {
		t.Errorf("error = %v, want one naming ami_description and its limit", err)
	}
	if calls := e.proxy.CallsFor("ec2", "CreateImage"); len(calls) != 0 {
		t.Errorf("%d CreateImage calls with a description EC2 refuses", len(calls))
	}
}

func TestStepModifyImage(t *testing.T) {
	e := newTestEnv(t)
	amibuild.StateImageID.Put(e.state, "ami-0123456789abcdef0")
	e.run(t, &stepModifyImage{Region: testRegion})
	if calls := e.proxy.CallsFor("ec2", "ModifyImageAttribute"); len(calls) != 0 {
		t.Errorf("ModifyImageAttribute called without imds_support: %v", calls)
	}

	step := &stepCreateImage{Region: testRegion, Config: &amibuild.AMIConfig{AMIName: uniqueName(t)}}
	e.run(t, step)
	id, _ := amibuild.StateImageID.Get(e.state)
	e.run(t, &stepModifyImage{Region: testRegion, IMDSSupport: "v2.0"})
	calls := e.proxy.CallsFor("ec2", "ModifyImageAttribute")
	if len(calls) != 1 || calls[0].Params.Get("ImageId") != id || calls[0].Params.Get("ImdsSupport.Value") != "v2.0" {
		t.Errorf("ModifyImageAttribute calls: %v", calls)
	}
	e.state.Put(multistep.StateHalted, true)
	step.Cleanup(e.state)
}
