//go:build unix

package amibuild

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/iamprofile"
)

// iamEnv is a testEnv whose session also sends IAM calls through the proxy.
func iamEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_IAM", e.proxy.URL)
	key, secret := awstest.TestCredentials()
	sess, err := awscfg.New(context.Background(), awscfg.Config{
		Region: testRegion, AccessKey: key, SecretKey: secret, MaxAttempts: 1,
		Endpoints: awscfg.Endpoints{EC2: e.proxy.URL, STS: e.proxy.URL, S3: e.proxy.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	StateSession.Put(e.state, sess)
	return e
}

func TestStepIAMInstanceProfileChecksTheProfile(t *testing.T) {
	e := iamEnv(t)
	existing := uniqueName(t)
	direct := awstest.IAMClient(motoSrv.Endpoint, testRegion)
	if _, err := direct.CreateInstanceProfile(context.Background(), &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(existing)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cfg       RunConfig
		wantErr   string
		wantCalls int
	}{
		{name: "existing profile", cfg: RunConfig{IamInstanceProfile: existing}, wantCalls: 1},
		{name: "existing profile by ARN", cfg: RunConfig{IamInstanceProfile: "arn:aws:iam::" + awstest.TestAccountID + ":instance-profile/" + existing}, wantCalls: 1},
		{name: "missing profile", cfg: RunConfig{IamInstanceProfile: "missing-" + existing}, wantErr: "iam_instance_profile: look up IAM instance profile \"missing-", wantCalls: 1},
		{name: "missing profile, not checked", cfg: RunConfig{IamInstanceProfile: "missing-" + existing,
			TemporaryIAMProfileConfig: TemporaryIAMProfileConfig{SkipProfileValidation: true}}},
		{name: "no profile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.Reset()
			step := &StepIAMInstanceProfile{Region: testRegion, Config: &tc.cfg}
			if tc.wantErr == "" {
				e.run(t, step)
			} else if err := e.runHalt(t, step); !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "skip_profile_validation") {
				t.Errorf("error = %v, want it to contain %q and name skip_profile_validation", err, tc.wantErr)
			}
			if n := len(e.proxy.CallsFor("iam", "GetInstanceProfile")); n != tc.wantCalls || len(e.proxy.Calls()) != tc.wantCalls {
				t.Errorf("calls %v, want %d GetInstanceProfile", e.proxy.Actions(), tc.wantCalls)
			}
			if _, ok := StateIAMInstanceProfile.Get(e.state); ok {
				t.Error("a temporary profile is in the state")
			}
			step.Cleanup(e.state)
		})
	}
}

func TestStepIAMInstanceProfileTemporary(t *testing.T) {
	e := iamEnv(t)
	src := sourceImage(t, e.ec2)
	StateSourceImage.Put(e.state, src)
	cfg := &RunConfig{
		RunTags: map[string]string{"Build": "{{ .SourceAMI }}"},
		TemporaryIAMProfileConfig: TemporaryIAMProfileConfig{TemporaryIamInstanceProfilePolicyDocument: &PolicyDocument{
			Version:   "2012-10-17",
			Statement: []Statement{{Effect: "Allow", Action: []string{"logs:*"}, Resource: []string{"*"}}},
		}},
	}
	step := &StepIAMInstanceProfile{Region: testRegion, Config: cfg}
	e.run(t, step)
	p, ok := StateIAMInstanceProfile.Get(e.state)
	if !ok || !strings.HasPrefix(p.Name, "packer-") || p.Wait <= 0 {
		t.Fatalf("launch profile in state = %+v", p)
	}
	direct := awstest.IAMClient(motoSrv.Endpoint, testRegion)
	ctx := context.Background()
	got, err := direct.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(p.Name)})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range got.InstanceProfile.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["Build"] != aws.ToString(src.ImageId) || tags[iamprofile.CreateTokenTag] == "" {
		t.Errorf("profile tags = %v, want the rendered run_tags and the create token", tags)
	}
	if len(got.InstanceProfile.Roles) != 1 || aws.ToString(got.InstanceProfile.Roles[0].RoleName) != p.Name {
		t.Errorf("roles of the profile = %v", got.InstanceProfile.Roles)
	}

	step.Cleanup(e.state)
	if _, err := direct.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(p.Name)}); err == nil {
		t.Error("the profile is still there after Cleanup")
	}
	if _, err := direct.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(p.Name)}); err == nil {
		t.Error("the role is still there after Cleanup")
	}
}
