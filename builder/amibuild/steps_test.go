//go:build unix

package amibuild

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"golang.org/x/crypto/ssh"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestStepsBuildInstanceLifecycle runs the shared steps in build order
// against moto, checks what each one did, then runs the Cleanups in reverse
// order and checks that every temporary resource is gone.
func TestStepsBuildInstanceLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ictx := interpolate.Context{Funcs: amiconfig.TemplateFuncs}
	gd := &packerbuilderdata.GeneratedData{State: e.state}
	comm := &communicator.Config{Type: "ssh"}
	comm.SSHTemporaryKeyPairName = uniqueName(t)
	comm.SSHTemporaryKeyPairType = "ed25519"
	comm.SSHPort = 22
	run := &RunConfig{
		InstanceType:           "t3.micro",
		TemporarySGSourceCIDRs: []string{"203.0.113.0/24"},
		UserData:               "#!/bin/sh\necho hello\n",
		RunTags:                map[string]string{"Name": "packer from {{ .SourceAMIName }}"},
		RunVolumeTags:          map[string]string{"Build": "{{ .SourceAMI }}"},
		MetadataOptions:        MetadataOptions{HTTPTokens: "required"},
		Comm:                   *comm,
	}

	steps := []multistep.Step{
		&StepCheckRegion{Region: testRegion},
		&StepFindSourceAMI{
			Region: testRegion,
			Filter: amiconfig.SourceAMIFilter{
				Filters:    map[string]string{"name": "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*"},
				Owners:     []string{"099720109477"},
				MostRecent: true,
			},
			RootDeviceType: "ebs",
			GeneratedData:  gd,
		},
		&StepCreateKeyPair{Region: testRegion, Comm: comm},
		&StepCreateSecurityGroup{Region: testRegion, Comm: comm, SourceCIDRs: run.TemporarySGSourceCIDRs},
		&StepRunInstance{Region: testRegion, Config: run, Ctx: ictx},
		&StepStopInstance{Region: testRegion},
		&StepModifyInstance{Region: testRegion, ENASupport: config.TriTrue},
	}
	for _, s := range steps {
		e.run(t, s)
	}

	// StepCheckRegion
	if account, _ := StateAccountID.Get(e.state); account != "123456789012" {
		t.Errorf("account = %q, want moto's 123456789012", account)
	}
	// StepFindSourceAMI
	src, ok := StateSourceImage.Get(e.state)
	if !ok || !strings.HasPrefix(aws.ToString(src.Name), "ubuntu/images/hvm-ssd/ubuntu-xenial") {
		t.Fatalf("source image = %v, %t", aws.ToString(src.Name), ok)
	}
	generated, _ := e.state.Get("generated_data").(map[string]any)
	if generated["SourceAMI"] != aws.ToString(src.ImageId) || generated["SourceAMIName"] != aws.ToString(src.Name) ||
		generated["BuildRegion"] != testRegion || generated["SourceAMIOwner"] != "099720109477" {
		t.Errorf("generated data = %v", generated)
	}
	for _, name := range amiconfig.GeneratedDataNames {
		if _, ok := generated[name]; !ok {
			t.Errorf("generated data lacks %s", name)
		}
	}
	// StepCreateKeyPair
	keyName, _ := StateKeyPairName.Get(e.state)
	if keyName != comm.SSHTemporaryKeyPairName {
		t.Errorf("key pair = %q, want %q", keyName, comm.SSHTemporaryKeyPairName)
	}
	if _, err := ssh.ParsePrivateKey(comm.SSHPrivateKey); err != nil {
		t.Errorf("the communicator did not get a usable private key: %v", err)
	}
	// StepCreateSecurityGroup
	groups, _ := StateSecurityGroupIDs.Get(e.state)
	if len(groups) != 1 {
		t.Fatalf("security groups = %v, want one temporary group", groups)
	}
	sgs, err := e.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: groups})
	if err != nil || len(sgs.SecurityGroups) != 1 {
		t.Fatalf("describe temporary group: %v", err)
	}
	perms := sgs.SecurityGroups[0].IpPermissions
	if len(perms) != 1 || aws.ToInt32(perms[0].FromPort) != 22 || len(perms[0].IpRanges) != 1 || aws.ToString(perms[0].IpRanges[0].CidrIp) != "203.0.113.0/24" {
		t.Errorf("temporary group admits %+v; want port 22 from 203.0.113.0/24", perms)
	}
	// StepRunInstance
	inst, _ := StateInstance.Get(e.state)
	instanceID, _ := StateInstanceID.Get(e.state)
	if instanceID == "" || aws.ToString(inst.InstanceId) != instanceID {
		t.Fatalf("instance state: %q / %q", instanceID, aws.ToString(inst.InstanceId))
	}
	runCalls := e.proxy.CallsFor("ec2", "RunInstances")
	if len(runCalls) != 1 {
		t.Fatalf("%d RunInstances calls, want 1", len(runCalls))
	}
	p := runCalls[0].Params
	userData, _ := base64.StdEncoding.DecodeString(p.Get("UserData"))
	if p.Get("ImageId") != aws.ToString(src.ImageId) || p.Get("KeyName") != keyName || p.Get("SecurityGroupId.1") != groups[0] ||
		p.Get("InstanceType") != "t3.micro" || string(userData) != run.UserData || p.Get("MetadataOptions.HttpTokens") != "required" {
		t.Errorf("RunInstances parameters: %v", p)
	}
	d, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		t.Fatal(err)
	}
	got := d.Reservations[0].Instances[0]
	if name := tagMap(got.Tags)["Name"]; name != "packer from "+aws.ToString(src.Name) {
		t.Errorf("run tag Name = %q; want the rendered template", name)
	}
	// StepStopInstance
	if got.State.Name != types.InstanceStateNameStopped {
		t.Errorf("instance is %s, want stopped", got.State.Name)
	}
	// StepModifyInstance
	mod := e.proxy.CallsFor("ec2", "ModifyInstanceAttribute")
	if len(mod) != 1 || mod[0].Params.Get("EnaSupport.Value") != "true" || mod[0].Params.Get("InstanceId") != instanceID {
		t.Errorf("ModifyInstanceAttribute calls: %v", mod)
	}

	// A successful run: the Cleanups still remove every temporary resource.
	e.proxy.Reset()
	for i := len(steps) - 1; i >= 0; i-- {
		steps[i].Cleanup(e.state)
	}
	if e.ui.ErrorCalled {
		t.Errorf("cleanup reported an error: %s", e.ui.ErrorMessage)
	}
	wantCleanup := []string{"TerminateInstances", "DeleteSecurityGroup", "DeleteKeyPair"}
	for _, a := range wantCleanup {
		if !slices.Contains(e.actions(), a) {
			t.Errorf("cleanup made no %s call; calls: %v", a, e.actions())
		}
	}
	d, err = e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		t.Fatal(err)
	}
	if s := d.Reservations[0].Instances[0].State.Name; s != types.InstanceStateNameTerminated {
		t.Errorf("instance is %s after cleanup, want terminated", s)
	}
	if _, err := e.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: groups}); err == nil {
		t.Errorf("temporary security group %s still exists", groups[0])
	}
	kps, err := e.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kp := range kps.KeyPairs {
		if aws.ToString(kp.KeyName) == keyName {
			t.Errorf("temporary key pair %s still exists", keyName)
		}
	}

	// A second Cleanup has nothing left to do.
	e.proxy.Reset()
	for i := len(steps) - 1; i >= 0; i-- {
		steps[i].Cleanup(e.state)
	}
	if a := e.actions(); len(a) != 0 {
		t.Errorf("second cleanup made calls: %v", a)
	}
}

// TestStepsUseGivenResources checks that nothing temporary is created when
// the user brings a key pair and security groups, or uses no communicator.
func TestStepsUseGivenResources(t *testing.T) {
	e := newTestEnv(t)
	comm := &communicator.Config{Type: "ssh"}
	comm.SSHKeyPairName = "mine"
	comm.SSHPrivateKeyFile = "/nonexistent"
	kp := &StepCreateKeyPair{Region: testRegion, Comm: comm}
	sg := &StepCreateSecurityGroup{Region: testRegion, Comm: comm, SecurityGroupIDs: []string{"sg-0123456789abcdef0"}}
	e.run(t, kp)
	e.run(t, sg)
	if name, _ := StateKeyPairName.Get(e.state); name != "mine" {
		t.Errorf("key pair = %q, want the configured one", name)
	}
	if ids, _ := StateSecurityGroupIDs.Get(e.state); !slices.Equal(ids, []string{"sg-0123456789abcdef0"}) {
		t.Errorf("security groups = %v", ids)
	}
	none := &StepCreateSecurityGroup{Region: testRegion, Comm: &communicator.Config{Type: "none"}}
	StateSecurityGroupIDs.Remove(e.state)
	e.run(t, none)
	if _, ok := StateSecurityGroupIDs.Get(e.state); ok {
		t.Error("communicator none: a security group was set")
	}
	sg.Cleanup(e.state)
	kp.Cleanup(e.state)
	none.Cleanup(e.state)
	if a := e.actions(); len(a) != 0 {
		t.Errorf("steps made AWS calls though nothing was to be created: %v", a)
	}
}

func TestStepFindSourceAMIFailures(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name string
		step *StepFindSourceAMI
		want string
	}{
		{"unknown id", &StepFindSourceAMI{Region: testRegion, SourceAMI: "ami-0000000000000000f"}, "find source AMI in us-east-1"},
		{"no match", &StepFindSourceAMI{Region: testRegion, Filter: amiconfig.SourceAMIFilter{Filters: map[string]string{"name": "no-such-image-*"}, Owners: []string{"self"}}}, "find source AMI in us-east-1"},
		{"instance-store root", &StepFindSourceAMI{Region: testRegion, SourceAMI: "ami-04681a1dbd79675b6", RootDeviceType: "ebs"}, "has root device type \"instance-store\"; this builder needs a source AMI with root device type \"ebs\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.runHalt(t, tc.step)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
			if _, ok := StateSourceImage.Get(e.state); ok {
				t.Error("a source image was stored despite the failure")
			}
		})
	}
}

func TestStepCheckRegion(t *testing.T) {
	e := newTestEnv(t)
	err := e.runHalt(t, &StepCheckRegion{Region: "xx-nowhere-1", SkipCredentialValidation: true})
	if !strings.HasPrefix(err.Error(), "region:") || !strings.Contains(err.Error(), "xx-nowhere-1") {
		t.Errorf("error = %v, want one naming the region", err)
	}
	if slices.Contains(e.actions(), "GetCallerIdentity") || len(e.proxy.CallsFor("sts", "GetCallerIdentity")) != 0 {
		t.Error("skip_credential_validation still called STS")
	}
	if _, ok := StateAccountID.Get(e.state); ok {
		t.Error("account ID stored though credential validation was skipped")
	}
	// The build region and every copy region in one call; a copy region
	// that does not exist is named as one of ami_regions.
	e.proxy.Reset()
	err = e.runHalt(t, &StepCheckRegion{Region: testRegion, SkipCredentialValidation: true, CopyRegions: []string{"eu-west-1", "xx-nowhere-2"}})
	if !strings.HasPrefix(err.Error(), "ami_regions:") || !strings.Contains(err.Error(), "xx-nowhere-2") {
		t.Errorf("error = %v, want one naming ami_regions and the region", err)
	}
	if n := len(e.proxy.CallsFor("ec2", "DescribeRegions")); n != 1 {
		t.Errorf("%d DescribeRegions calls, want 1", n)
	}
}

// TestStepsSameNameAMI covers the name check and force_deregister.
func TestStepsSameNameAMI(t *testing.T) {
	e := newTestEnv(t)
	src := sourceImage(t, e.ec2)
	name := uniqueName(t)
	oldID, oldSnaps := createImage(t, e.ec2, aws.ToString(src.ImageId), name)
	if len(oldSnaps) == 0 {
		t.Fatal("moto image without snapshots")
	}

	err := e.runHalt(t, &StepCheckAMIName{Region: testRegion, AMIName: name})
	for _, w := range []string{"ami_name: an AMI named", oldID, "force_deregister", "-force"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	e.run(t, &StepCheckAMIName{Region: testRegion, AMIName: name, ForceDeregister: true})
	e.run(t, &StepCheckAMIName{Region: testRegion, AMIName: uniqueName(t)})

	// Without force nothing is looked up or deregistered.
	e.proxy.Reset()
	e.run(t, &StepDeregisterExisting{Region: testRegion, AMIName: name})
	if a := e.actions(); len(a) != 0 {
		t.Errorf("StepDeregisterExisting without force made calls: %v", a)
	}
	if !imageExists(t, e.ec2, oldID) {
		t.Fatal("image deregistered without force")
	}

	e.run(t, &StepDeregisterExisting{Region: testRegion, AMIName: name, Force: true, DeleteSnapshots: true})
	if imageExists(t, e.ec2, oldID) {
		t.Errorf("image %s still registered after force_deregister", oldID)
	}
	for _, s := range oldSnaps {
		if snapshotExists(t, e.ec2, s) {
			t.Errorf("snapshot %s kept despite force_delete_snapshot", s)
		}
	}
}

func TestStepDeregisterExistingKeepsSnapshots(t *testing.T) {
	e := newTestEnv(t)
	src := sourceImage(t, e.ec2)
	name := uniqueName(t)
	id, snaps := createImage(t, e.ec2, aws.ToString(src.ImageId), name)
	e.run(t, &StepDeregisterExisting{Region: testRegion, AMIName: name, Force: true})
	if imageExists(t, e.ec2, id) {
		t.Errorf("image %s still registered", id)
	}
	for _, s := range snaps {
		if !snapshotExists(t, e.ec2, s) {
			t.Errorf("snapshot %s deleted without force_delete_snapshot", s)
		}
	}
}

func TestStepDeregisterExistingKeepsGivenSnapshots(t *testing.T) {
	// An AMI built earlier from the same template refers to the snapshot
	// its mappings were given; force_delete_snapshot deletes only the old
	// AMI's other snapshots.
	e := newTestEnv(t)
	src := sourceImage(t, e.ec2)
	name := uniqueName(t)
	id, snaps := createImage(t, e.ec2, aws.ToString(src.ImageId), name)
	if len(snaps) == 0 {
		t.Fatal("moto image without snapshots")
	}
	given := snaps[0]
	e.run(t, &StepDeregisterExisting{Region: testRegion, AMIName: name, Force: true, DeleteSnapshots: true, KeepSnapshotIDs: []string{given}})
	if imageExists(t, e.ec2, id) {
		t.Errorf("image %s still registered", id)
	}
	if !snapshotExists(t, e.ec2, given) {
		t.Errorf("given snapshot %s deleted by force_delete_snapshot", given)
	}
	for _, s := range snaps[1:] {
		if snapshotExists(t, e.ec2, s) {
			t.Errorf("snapshot %s kept despite force_delete_snapshot", s)
		}
	}
}

func TestStepTagImage(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	src := sourceImage(t, e.ec2)
	id, snaps := createImage(t, e.ec2, aws.ToString(src.ImageId), uniqueName(t))
	StateAMIs.Put(e.state, map[string]string{testRegion: id})
	StateBuildInfo.Put(e.state, amiconfig.NewBuildInfo(testRegion, src))

	e.run(t, &StepTagImage{
		Tags:         map[string]string{"Base": "{{ .SourceAMIName }}", "Region": "{{ .BuildRegion }}", "Static": "yes"},
		SnapshotTags: map[string]string{"From": "{{ .SourceAMI }}"},
		Ctx:          interpolate.Context{Funcs: amiconfig.TemplateFuncs},
	})
	img := describeImage(t, e.ec2, id)
	tags := tagMap(img.Tags)
	want := map[string]string{"Base": aws.ToString(src.Name), "Region": testRegion, "Static": "yes"}
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("AMI tag %s = %q, want %q", k, tags[k], v)
		}
	}
	out, err := e.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Snapshots {
		if got := tagMap(s.Tags)["From"]; got != aws.ToString(src.ImageId) {
			t.Errorf("snapshot %s tag From = %q, want %s", aws.ToString(s.SnapshotId), got, aws.ToString(src.ImageId))
		}
	}

	// No tags: no calls.
	e.proxy.Reset()
	e.run(t, &StepTagImage{})
	if a := e.actions(); len(a) != 0 {
		t.Errorf("StepTagImage without tags made calls: %v", a)
	}
	// A template error halts with the option's name.
	err = e.runHalt(t, &StepTagImage{Tags: map[string]string{"k": "{{ .Nope }}"}})
	if !strings.Contains(err.Error(), "tags: render value of \"k\"") {
		t.Errorf("error = %v", err)
	}
}

func TestInstanceAddress(t *testing.T) {
	full := types.Instance{
		InstanceId:       aws.String("i-0123456789abcdef0"),
		PublicIpAddress:  aws.String("54.1.2.3"),
		PrivateIpAddress: aws.String("10.0.0.5"),
		PublicDnsName:    aws.String("ec2-54-1-2-3.compute-1.amazonaws.com"),
		PrivateDnsName:   aws.String("ip-10-0-0-5.ec2.internal"),
	}
	private := types.Instance{InstanceId: aws.String("i-1"), PrivateIpAddress: aws.String("10.0.0.6"), PrivateDnsName: aws.String("ip-10-0-0-6.ec2.internal")}
	tests := []struct {
		name, iface string
		inst        types.Instance
		want, err   string
	}{
		{"default prefers public ip", "", full, "54.1.2.3", ""},
		{"default falls back to private ip", "", private, "10.0.0.6", ""},
		{"public_ip", SSHInterfacePublicIP, full, "54.1.2.3", ""},
		{"private_ip", SSHInterfacePrivateIP, full, "10.0.0.5", ""},
		{"public_dns", SSHInterfacePublicDNS, full, "ec2-54-1-2-3.compute-1.amazonaws.com", ""},
		{"private_dns", SSHInterfacePrivateDNS, full, "ip-10-0-0-5.ec2.internal", ""},
		{"public_ip missing", SSHInterfacePublicIP, private, "", "ssh_interface: build instance i-1 has no public IP address"},
		{"nothing", "", types.Instance{InstanceId: aws.String("i-2")}, "", "build instance i-2 has no address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := InstanceAddress(tc.inst, tc.iface)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("InstanceAddress = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCommHost(t *testing.T) {
	state := new(multistep.BasicStateBag)
	if _, err := CommHost("", "")(state); err == nil {
		t.Error("no instance and no host: want an error")
	}
	StateInstance.Put(state, types.Instance{InstanceId: aws.String("i-1"), PrivateIpAddress: aws.String("10.0.0.7")})
	if h, err := CommHost("127.0.0.1", SSHInterfacePublicIP)(state); err != nil || h != "127.0.0.1" {
		t.Errorf("ssh_host set: got %q, %v; want 127.0.0.1", h, err)
	}
	if h, err := CommHost("", SSHInterfacePrivateIP)(state); err != nil || h != "10.0.0.7" {
		t.Errorf("private_ip: got %q, %v", h, err)
	}
}

func TestHaltAndKeys(t *testing.T) {
	state := new(multistep.BasicStateBag)
	ui := &packersdk.MockUi{}
	boom := errors.New("boom")
	if a := Halt(state, ui, boom); a != multistep.ActionHalt {
		t.Errorf("Halt returned %v", a)
	}
	if err, _ := StateError.Get(state); !errors.Is(err, boom) || ui.ErrorMessage != "boom" {
		t.Errorf("state error %v, UI error %q", err, ui.ErrorMessage)
	}
	// A value of the wrong type under a key reads as absent.
	state.Put(StateInstanceID.Name(), 42)
	if v, ok := StateInstanceID.Get(state); ok || v != "" {
		t.Errorf("wrong-typed value read as %q, %t", v, ok)
	}
	// Without a session, Session and EC2Client fail with an internal error.
	if sess, err := Session(state); sess != nil || !errors.Is(err, errNoSession) {
		t.Errorf("Session of an empty state = %v, %v", sess, err)
	}
	if c, err := EC2Client(state, "eu-west-1"); c != nil || !errors.Is(err, errNoSession) {
		t.Errorf("EC2Client of an empty state = %v, %v", c, err)
	}
	// A key made with NewKey reads and writes the named entry with its
	// type.
	own := NewKey[[]int]("own_key")
	if own.Name() != "own_key" {
		t.Errorf("NewKey name = %q", own.Name())
	}
	own.Put(state, []int{1, 2})
	if raw, _ := state.GetOk("own_key"); !slices.Equal(raw.([]int), []int{1, 2}) {
		t.Errorf("raw value under own_key = %v", raw)
	}
	if v, ok := own.Get(state); !ok || !slices.Equal(v, []int{1, 2}) {
		t.Errorf("Get = %v, %t", v, ok)
	}
	own.Remove(state)
	if _, ok := own.Get(state); ok {
		t.Error("value still there after Remove")
	}
	if RolledBack(state) {
		t.Error("RolledBack without cancel or halt")
	}
	state.Put(multistep.StateHalted, true)
	if !RolledBack(state) {
		t.Error("RolledBack false after a halt")
	}
}

// TestStepsSameNameAMIInCopyRegions covers ami_regions in the name check
// and force_deregister, and skip_save_build_region, which leaves the build
// region alone.
func TestStepsSameNameAMIInCopyRegions(t *testing.T) {
	e := newTestEnv(t)
	const copyRegion = "eu-west-1"
	eu, _ := awstest.Clients(motoSrv.Endpoint, copyRegion)
	name := uniqueName(t)
	out, err := eu.RegisterImage(context.Background(), &ec2.RegisterImageInput{Name: aws.String(name), RootDeviceName: aws.String("/dev/xvda")})
	if err != nil {
		t.Fatal(err)
	}
	euID := aws.ToString(out.ImageId)
	src := sourceImage(t, e.ec2)
	buildID, _ := createImage(t, e.ec2, aws.ToString(src.ImageId), name)

	err = e.runHalt(t, &StepCheckAMIName{Region: testRegion, AMIName: name, CopyRegions: []string{copyRegion}, SkipBuildRegion: true})
	if !strings.Contains(err.Error(), copyRegion) || !strings.Contains(err.Error(), euID) {
		t.Errorf("error %q does not name the copy region and its AMI", err)
	}

	// With the build region too, both regions are looked up, and both
	// problems are told at once.
	e.proxy.Reset()
	err = e.runHalt(t, &StepCheckAMIName{Region: testRegion, AMIName: name, CopyRegions: []string{copyRegion, "ap-south-1"}})
	for _, w := range []string{testRegion, buildID, copyRegion, euID} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
	if strings.Contains(err.Error(), "ap-south-1") {
		t.Errorf("error %q names ap-south-1, where the name is free", err)
	}
	if n := len(e.proxy.CallsFor("ec2", "DescribeImages")); n != 3 {
		t.Errorf("%d DescribeImages calls, want one per region (3)", n)
	}
	e.proxy.Reset()
	e.run(t, &StepDeregisterExisting{Region: testRegion, AMIName: name, Force: true, CopyRegions: []string{copyRegion}, SkipBuildRegion: true})
	if !imageExists(t, e.ec2, buildID) {
		t.Error("the build region's AMI was deregistered although the build region is skipped")
	}
	for _, c := range e.proxy.CallsFor("ec2", "DeregisterImage") {
		if c.Region != copyRegion || c.Params.Get("ImageId") != euID {
			t.Errorf("DeregisterImage %s in %s, want only %s in %s", c.Params.Get("ImageId"), c.Region, euID, copyRegion)
		}
	}
	if len(e.proxy.CallsFor("ec2", "DeregisterImage")) != 1 {
		t.Errorf("DeregisterImage calls: %d, want 1", len(e.proxy.CallsFor("ec2", "DeregisterImage")))
	}
	e.run(t, &StepCheckAMIName{Region: testRegion, AMIName: name, CopyRegions: []string{copyRegion}, SkipBuildRegion: true})
}
