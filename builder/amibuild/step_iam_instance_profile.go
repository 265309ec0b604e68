package amibuild

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"github.com/hashicorp/packer-plugin-sdk/uuid"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/sdk/iamprofile"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// StateIAMInstanceProfile is the instance profile the build instance is
// launched with when the build made it (temporary), with how long the
// launch waits for EC2 to know it.
var StateIAMInstanceProfile = NewKey[*LaunchProfile]("ami_iam_instance_profile")

// LaunchProfile is an instance profile made for the build.
type LaunchProfile struct {
	// Name of the instance profile.
	Name string
	// Wait bounds how long the launch is retried while EC2 does not know
	// the profile yet.
	Wait time.Duration
}

// temporaryProfileWait bounds how long the launch waits for EC2 to know a
// temporary instance profile (IAM is eventually consistent).
const temporaryProfileWait = 2 * time.Minute

// StepIAMInstanceProfile checks the instance profile named by
// iam_instance_profile (unless skip_profile_validation), or, with
// temporary_iam_instance_profile_policy_document, creates a role, its
// inline policy and an instance profile for the build. Cleanup always
// removes what it created.
//
// State used: StateSession, StateUI, StateSourceImage, StateBuildInfo.
// State produced: StateIAMInstanceProfile (temporary profile only).
type StepIAMInstanceProfile struct {
	// Region is the build region (for the build data of run_tags).
	Region string
	// Config is the run configuration.
	Config *RunConfig
	// Ctx renders run_tags, which also go on the role and the profile.
	Ctx interpolate.Context

	created ledger.Ledger
}

// Run implements multistep.Step.
func (s *StepIAMInstanceProfile) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := s.Config
	doc := cfg.TemporaryIamInstanceProfilePolicyDocument
	if doc == nil && (cfg.IamInstanceProfile == "" || cfg.SkipProfileValidation) {
		return multistep.ActionContinue
	}
	u := UI(state)
	sess, err := Session(state)
	if err != nil {
		return Halt(state, u, err)
	}
	if doc == nil {
		u.Sayf("Checking instance profile %s...", cfg.IamInstanceProfile)
		if _, err := iamprofile.Check(ctx, sess.IAM(), &iamprofile.CheckInput{Profile: cfg.IamInstanceProfile}); err != nil {
			return Halt(state, u, fmt.Errorf("iam_instance_profile: %w (set skip_profile_validation to launch without this check)", err))
		}
		return multistep.ActionContinue
	}

	policy, err := doc.JSON()
	if err != nil {
		return Halt(state, u, err)
	}
	info, _ := StateBuildInfo.Get(state)
	if info == nil {
		src, _ := StateSourceImage.Get(state)
		info = amiconfig.NewBuildInfo(s.Region, src)
	}
	tags, err := amiconfig.RenderTags(s.Ctx, "run_tags", cfg.RunTags, info)
	if err != nil {
		return Halt(state, u, err)
	}
	name := "packer-" + uuid.TimeOrderedUUID()
	u.Sayf("Creating temporary instance profile %s (role, inline policy and profile)...", name)
	out, err := iamprofile.Create(ctx, sess.IAM(), &iamprofile.CreateInput{
		Name:           name,
		PolicyDocument: policy,
		Description:    "Temporary role of a Packer build",
		Tags:           tags,
	}, func(o *iamprofile.Options) { o.Ledger = &s.created })
	if err != nil {
		return Halt(state, u, fmt.Errorf("create the temporary instance profile: %w", err))
	}
	StateIAMInstanceProfile.Put(state, &LaunchProfile{Name: out.ProfileName, Wait: temporaryProfileWait})
	return multistep.ActionContinue
}

// Cleanup removes the temporary role, policy and instance profile,
// whatever the outcome of the run.
func (s *StepIAMInstanceProfile) Cleanup(state multistep.StateBag) {
	if s.created.Len() == 0 {
		return
	}
	u := UI(state)
	ctx, cancel := amiconfig.CleanupContext()
	defer cancel()
	u.Say("Deleting the temporary instance profile, its role and policy...")
	if err := s.created.Undo(ctx); err != nil {
		u.Error(fmt.Sprintf("Error deleting the temporary instance profile; delete what is left by hand: %v", err))
	}
}
