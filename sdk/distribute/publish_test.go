//go:build unix

package distribute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

func TestPublishInputValidate(t *testing.T) {
	images := map[string]string{"eu-west-1": "ami-1", "us-east-1": "ami-2"}
	valid := func() *PublishInput {
		return &PublishInput{
			Images:          images,
			Parameters:      []Parameter{{Name: "/golden/web/latest"}, {Name: "plain", Region: "us-east-1"}},
			LaunchTemplates: []LaunchTemplate{{Name: "web"}, {ID: "lt-0123456789abcdef0", Region: "eu-west-1", SourceVersion: "3"}},
		}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid input: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*PublishInput)
		want string
	}{
		{"no images", func(in *PublishInput) { in.Images = nil }, "images: at least one"},
		{"bad region", func(in *PublishInput) { in.Images = map[string]string{"mars-1": "ami-1"} }, `images["mars-1"]`},
		{"bad AMI", func(in *PublishInput) { in.Images = map[string]string{"eu-west-1": "snap-1"} }, `images["eu-west-1"]: "snap-1" is not an AMI ID`},
		{"long run ID", func(in *PublishInput) { in.RunID = strings.Repeat("r", 201) }, "run_id: 201 characters"},
		{"no name", func(in *PublishInput) { in.Parameters[1].Name = "" }, "parameters[1].name: required"},
		{"name too long", func(in *PublishInput) { in.Parameters[0].Name = "/" + strings.Repeat("a", 1011) }, "parameters[0].name: 1012 characters; at most 1011"},
		{"bad character", func(in *PublishInput) { in.Parameters[0].Name = "/golden/web latest" }, "parameters[0].name: \"/golden/web latest\": only a-zA-Z0-9_.-/"},
		{"hierarchy without leading slash", func(in *PublishInput) { in.Parameters[0].Name = "golden/web" }, "parameters[0].name: \"golden/web\": a name in a hierarchy starts with /"},
		{"empty level", func(in *PublishInput) { in.Parameters[0].Name = "/golden//web" }, "every level of the hierarchy needs a name"},
		{"trailing slash", func(in *PublishInput) { in.Parameters[0].Name = "/golden/" }, "every level of the hierarchy needs a name"},
		{"aws prefix", func(in *PublishInput) { in.Parameters[0].Name = "/AWS/service/x" }, "parameters[0].name: \"/AWS/service/x\": names starting with aws or ssm"},
		{"ssm prefix", func(in *PublishInput) { in.Parameters[1].Name = "ssmValue" }, "parameters[1].name: \"ssmValue\": names starting with aws or ssm"},
		{"sixteen levels", func(in *PublishInput) { in.Parameters[0].Name = strings.Repeat("/l", 16) }, "parameters[0].name: \"" + strings.Repeat("/l", 16) + "\": 16 levels; at most 15"},
		{"region not in images", func(in *PublishInput) { in.Parameters[1].Region = "ap-south-1" }, "parameters[1].region: ap-south-1 is not a region of images"},
		{"long description", func(in *PublishInput) { in.Parameters[0].Description = strings.Repeat("d", 1025) }, "parameters[0].description: 1025 characters; at most 1024"},
		{"reserved tag", func(in *PublishInput) { in.Parameters[0].Tags = map[string]string{"aws:x": "1"} }, "parameters[0].tags: key \"aws:x\""},
		{"long tag value", func(in *PublishInput) { in.Parameters[0].Tags = map[string]string{"k": strings.Repeat("v", 257)} }, "parameters[0].tags[\"k\"]: value has 257 characters"},
		{"same parameter twice", func(in *PublishInput) { in.Parameters[1].Name = "/golden/web/latest" }, "parameters[1]: /golden/web/latest in us-east-1 is also written by parameters[0]"},
		{"template without id or name", func(in *PublishInput) { in.LaunchTemplates[0].Name = "" }, "launch_templates[0]: an id or a name is required"},
		{"template with both", func(in *PublishInput) { in.LaunchTemplates[1].Name = "web2" }, "launch_templates[1]: give an id or a name, not both"},
		{"bad template id", func(in *PublishInput) { in.LaunchTemplates[1].ID = "lt-xyz" }, "launch_templates[1].id: \"lt-xyz\""},
		{"id without region", func(in *PublishInput) { in.LaunchTemplates[1].Region = "" }, "launch_templates[1].region: required with an id"},
		{"bad template name", func(in *PublishInput) { in.LaunchTemplates[0].Name = "w b" }, "launch_templates[0].name: \"w b\""},
		{"template region not in images", func(in *PublishInput) { in.LaunchTemplates[1].Region = "ap-south-1" }, "launch_templates[1].region: ap-south-1 is not a region of images"},
		{"bad source version", func(in *PublishInput) { in.LaunchTemplates[0].SourceVersion = "$Newest" }, "launch_templates[0].source_version: \"$Newest\" is not $Default, $Latest or a version number"},
		{"zero source version", func(in *PublishInput) { in.LaunchTemplates[0].SourceVersion = "0" }, "launch_templates[0].source_version: \"0\""},
		{"same template twice", func(in *PublishInput) { in.LaunchTemplates[1] = LaunchTemplate{Name: "web", Region: "eu-west-1"} }, "launch_templates[1]: the template is also updated in eu-west-1 by launch_templates[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := valid()
			in.Parameters, in.LaunchTemplates = slices.Clone(in.Parameters), slices.Clone(in.LaunchTemplates)
			tc.mod(in)
			err := in.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPublishRefusesWithoutClients(t *testing.T) {
	in := &PublishInput{Images: map[string]string{"eu-west-1": "ami-1"}, Parameters: []Parameter{{Name: "/p"}}}
	if _, err := Publish(context.Background(), newPubCloud().clients(), in); err == nil || !strings.Contains(err.Error(), "Options.SSM is nil") {
		t.Fatalf("Publish without SSM clients = %v", err)
	}
	if _, err := PreflightPublish(context.Background(), newPubCloud().clients(), in); err == nil || !strings.Contains(err.Error(), "Options.SSM is nil") {
		t.Fatalf("PreflightPublish without SSM clients = %v", err)
	}
}

// logs collects log lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(s string) bool { return strings.Contains(s, sub) })
}

// pubSetup is two regions, each with the template "web" (versions 1
// t3.micro default, 2 t3.small) and the parameter /golden/web/latest in
// eu-west-1 only.
type pubSetup struct {
	c     *pubCloud
	lts   map[string]string // region → template ID
	log   *logs
	led   *ledger.Ledger
	input *PublishInput
}

func newPubSetup(t *testing.T, regions ...string) *pubSetup {
	t.Helper()
	s := &pubSetup{c: newPubCloud(), lts: map[string]string{}, log: &logs{}, led: &ledger.Ledger{}}
	images := map[string]string{}
	for i, r := range regions {
		images[r] = fmt.Sprintf("ami-new%d", i)
		s.lts[r] = s.c.addLT(r, "web", "t3.micro", "t3.small")
	}
	s.c.putParam(regions[0], "/golden/web/latest", "ami-old")
	s.input = &PublishInput{
		Images: images, RunID: "run1",
		Parameters: []Parameter{{
			Name: "/golden/web/latest", Tags: map[string]string{"team": "web"}, Description: "web AMI",
		}},
		LaunchTemplates: []LaunchTemplate{{Name: "web", SetDefault: true}},
	}
	return s
}

func (s *pubSetup) options(o *Options) {
	o.Logf, o.Ledger, o.SSM = s.log.logf, s.led, s.c.ssmClients()
}

func (s *pubSetup) publish(ctx context.Context) (*PublishOutput, error) {
	return Publish(ctx, s.c.clients(), s.input, s.options)
}

// mustBeAsBefore checks that every region is as newPubSetup left it.
func (s *pubSetup) mustBeAsBefore(t *testing.T) {
	t.Helper()
	for i, r := range sortedRegions(s.lts) {
		p := s.c.param(r, "/golden/web/latest")
		switch {
		case i == 0 && (p == nil || p.value != "ami-old"):
			t.Errorf("%s: parameter %+v, want ami-old", r, p)
		case i > 0 && p != nil:
			t.Errorf("%s: parameter %+v, want none", r, p)
		}
		lt := s.c.lt(r, s.lts[r])
		if lt.def != 1 || len(lt.versions) != 2 {
			t.Errorf("%s: template default %d, %d versions; want 1 and 2", r, lt.def, len(lt.versions))
		}
	}
}

func TestPublishWritesParametersAndTemplateVersions(t *testing.T) {
	for _, tc := range []struct {
		source       string
		wantSource   int64
		wantInstance string
	}{
		{"", 1, "t3.micro"},
		{"$Default", 1, "t3.micro"},
		{"$Latest", 2, "t3.small"},
		{"2", 2, "t3.small"},
	} {
		t.Run("source "+tc.source, func(t *testing.T) {
			s := newPubSetup(t, "eu-west-1", "us-east-1")
			s.input.LaunchTemplates[0].SourceVersion = tc.source
			out, err := s.publish(context.Background())
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			wantParams := []ParameterResult{
				{Region: "eu-west-1", Name: "/golden/web/latest", ImageID: "ami-new0", Version: 2, Previous: "ami-old", Status: PublishWritten},
				{Region: "us-east-1", Name: "/golden/web/latest", ImageID: "ami-new1", Version: 1, Created: true, Status: PublishWritten},
			}
			if !slices.Equal(out.Parameters, wantParams) {
				t.Errorf("parameters:\n got %+v\nwant %+v", out.Parameters, wantParams)
			}
			// Tags and description only on the parameter the run created.
			if p := s.c.param("us-east-1", "/golden/web/latest"); p.value != "ami-new1" || p.dataType != "aws:ec2:image" || p.tags["team"] != "web" || p.description != "web AMI" {
				t.Errorf("created parameter: %+v", p)
			}
			if p := s.c.param("eu-west-1", "/golden/web/latest"); p.value != "ami-new0" || p.dataType != "aws:ec2:image" || p.description != "" {
				t.Errorf("overwritten parameter: %+v", p)
			}
			for _, k := range s.c.Calls("PutParameter") {
				in := k.In.(*ssm.PutParameterInput)
				if aws.ToBool(in.Overwrite) == (in.Tags != nil) {
					t.Errorf("%s: Overwrite %v with tags %v", k, aws.ToBool(in.Overwrite), in.Tags)
				}
			}
			for i, r := range []string{"eu-west-1", "us-east-1"} {
				got := out.LaunchTemplates[i]
				want := LaunchTemplateResult{Region: r, ID: s.lts[r], Name: "web", ImageID: fmt.Sprintf("ami-new%d", i),
					Version: 3, SourceVersion: tc.wantSource, PreviousDefault: 1, Default: true, Status: PublishWritten}
				if got != want {
					t.Errorf("%s template:\n got %+v\nwant %+v", r, got, want)
				}
				lt := s.c.lt(r, s.lts[r])
				v := lt.version(3)
				if lt.def != 3 || v == nil || aws.ToString(v.LaunchTemplateData.ImageId) != want.ImageID ||
					string(v.LaunchTemplateData.InstanceType) != tc.wantInstance || aws.ToString(v.VersionDescription) != "ami-distribute run run1" {
					t.Errorf("%s template: default %d, version 3 %+v", r, lt.def, v)
				}
			}
			for _, k := range s.c.Calls("CreateLaunchTemplateVersion") {
				if tok := aws.ToString(k.In.(*ec2.CreateLaunchTemplateVersionInput).ClientToken); len(tok) == 0 || len(tok) > 64 {
					t.Errorf("%s: client token %q", k, tok)
				}
			}
			wantLedger := []ledger.Resource{
				{Kind: ledger.KindParameter, ID: "/golden/web/latest", Region: "eu-west-1"},
				{Kind: ledger.KindLaunchTemplateVersion, ID: s.lts["eu-west-1"] + ":3", Region: "eu-west-1"},
				{Kind: ledger.KindParameter, ID: "/golden/web/latest", Region: "us-east-1"},
				{Kind: ledger.KindLaunchTemplateVersion, ID: s.lts["us-east-1"] + ":3", Region: "us-east-1"},
			}
			if got := s.led.Resources(); !slices.Equal(got, wantLedger) {
				t.Errorf("ledger:\n got %v\nwant %v", got, wantLedger)
			}
			if !s.log.has("writing /golden/web/latest = ami-new0 in eu-west-1") {
				t.Errorf("log: %q", s.log.lines)
			}
		})
	}
}

func TestPublishParameterHoldingTheAMIIsNotWritten(t *testing.T) {
	s := newPubSetup(t, "eu-west-1")
	s.input.LaunchTemplates = nil
	s.c.putParam("eu-west-1", "/golden/web/latest", "ami-new0")
	out, err := s.publish(context.Background())
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if r := out.Parameters[0]; r.Status != PublishWritten || r.Version != 2 || r.Previous != "ami-new0" {
		t.Errorf("result %+v", r)
	}
	if n := len(s.c.Calls("PutParameter")); n != 0 || s.led.Len() != 0 {
		t.Errorf("%d PutParameter calls, ledger %v", n, s.led.Resources())
	}
}

// errLost is a failure without an answer, as a reset connection gives.
var errLost = errors.New("read tcp: connection reset by peer")

func TestPublishLostPutParameterAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		written bool // whether the PutParameter took effect
	}{
		{"written", true},
		{"not written", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPubSetup(t, "eu-west-1")
			s.input.LaunchTemplates = nil
			hook := func(_ context.Context, k call) error {
				if k.Op == "PutParameter" && len(s.c.Calls("PutParameter")) == 1 {
					return errLost
				}
				return nil
			}
			if tc.written {
				s.c.After = hook
			} else {
				s.c.Before = hook
			}
			out, err := s.publish(context.Background())
			r := out.Parameters[0]
			if tc.written {
				if err != nil || r.Status != PublishWritten || r.Version != 2 {
					t.Fatalf("Publish = %v, result %+v", err, r)
				}
				if p := s.c.param("eu-west-1", "/golden/web/latest"); p.value != "ami-new0" {
					t.Errorf("parameter %+v", p)
				}
				if s.led.Len() != 1 {
					t.Errorf("ledger %v", s.led.Resources())
				}
				return
			}
			if !errors.Is(err, errLost) || r.Status != PublishFailed || !errors.Is(r.Err, errLost) {
				t.Fatalf("Publish = %v, result %+v", err, r)
			}
			if n := len(s.c.Calls("PutParameter")); n != 1 {
				t.Errorf("%d PutParameter calls; nothing was written, so nothing is restored", n)
			}
			s.mustBeAsBefore(t)
		})
	}
}

func TestPublishLedgerUndo(t *testing.T) {
	tests := []struct {
		name string
		// meddle changes things after Publish, as someone else would.
		meddle     func(s *pubSetup)
		setDefault bool
		wantParams map[string]string // region → value after Undo ("" = none)
		wantDef    map[string]int64
		wantVers   map[string]int // number of versions after Undo
		wantLog    string
	}{
		{
			name: "restores previous value, deletes created, restores default, deletes version", setDefault: true,
			wantParams: map[string]string{"eu-west-1": "ami-old", "us-east-1": ""},
			wantDef:    map[string]int64{"eu-west-1": 1, "us-east-1": 1},
			wantVers:   map[string]int{"eu-west-1": 2, "us-east-1": 2},
		},
		{
			name: "leaves parameters changed since", setDefault: true,
			meddle: func(s *pubSetup) {
				s.c.putParam("eu-west-1", "/golden/web/latest", "ami-other")
				s.c.putParam("us-east-1", "/golden/web/latest", "ami-other")
			},
			wantParams: map[string]string{"eu-west-1": "ami-other", "us-east-1": "ami-other"},
			wantDef:    map[string]int64{"eu-west-1": 1, "us-east-1": 1},
			wantVers:   map[string]int{"eu-west-1": 2, "us-east-1": 2},
			wantLog:    "leaving parameter /golden/web/latest in eu-west-1 as it is: it holds ami-other (version 3)",
		},
		{
			name: "leaves a version someone made the default",
			meddle: func(s *pubSetup) {
				s.c.setDefault("eu-west-1", s.lts["eu-west-1"], 3)
			},
			wantParams: map[string]string{"eu-west-1": "ami-old", "us-east-1": ""},
			wantDef:    map[string]int64{"eu-west-1": 3, "us-east-1": 1},
			wantVers:   map[string]int{"eu-west-1": 3, "us-east-1": 2},
			wantLog:    "leaving version 3 of launch template web",
		},
		{
			name: "deletes its version but keeps a default someone else set", setDefault: true,
			meddle: func(s *pubSetup) {
				s.c.setDefault("eu-west-1", s.lts["eu-west-1"], 2)
			},
			wantParams: map[string]string{"eu-west-1": "ami-old", "us-east-1": ""},
			wantDef:    map[string]int64{"eu-west-1": 2, "us-east-1": 1},
			wantVers:   map[string]int{"eu-west-1": 2, "us-east-1": 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newPubSetup(t, "eu-west-1", "us-east-1")
			s.input.LaunchTemplates[0].SetDefault = tc.setDefault
			if _, err := s.publish(context.Background()); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if tc.meddle != nil {
				tc.meddle(s)
			}
			if err := s.led.Undo(context.Background()); err != nil {
				t.Fatalf("Undo: %v", err)
			}
			for r, want := range tc.wantParams {
				p := s.c.param(r, "/golden/web/latest")
				if got := ""; p != nil {
					got = p.value
					if got != want {
						t.Errorf("%s: parameter %q, want %q", r, got, want)
					}
				} else if want != "" {
					t.Errorf("%s: no parameter, want %q", r, want)
				}
			}
			if p := s.c.param("eu-west-1", "/golden/web/latest"); p.value == "ami-old" && p.dataType != "text" {
				t.Errorf("restored parameter has data type %q, want the previous text", p.dataType)
			}
			for r, want := range tc.wantDef {
				lt := s.c.lt(r, s.lts[r])
				if lt.def != want || len(lt.versions) != tc.wantVers[r] {
					t.Errorf("%s: default %d with %d versions; want %d with %d", r, lt.def, len(lt.versions), want, tc.wantVers[r])
				}
			}
			if tc.wantLog != "" && !s.log.has(tc.wantLog) {
				t.Errorf("log lacks %q: %q", tc.wantLog, s.log.lines)
			}
		})
	}
}

func TestPublishLostCreateLaunchTemplateVersionAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		// replayFails makes the repeated call fail without an answer too,
		// so that the version is found by its description.
		replayFails bool
	}{
		{"resolved by repeating the client token", false},
		{"resolved by the version description", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPubSetup(t, "eu-west-1")
			s.input.Parameters = nil
			s.c.After = func(_ context.Context, k call) error {
				if k.Op == "CreateLaunchTemplateVersion" && len(s.c.Calls("CreateLaunchTemplateVersion")) == 1 {
					return errLost
				}
				return nil
			}
			s.c.Before = func(_ context.Context, k call) error {
				if tc.replayFails && k.Op == "CreateLaunchTemplateVersion" && len(s.c.Calls("CreateLaunchTemplateVersion")) == 2 {
					return errLost
				}
				return nil
			}
			out, err := s.publish(context.Background())
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if r := out.LaunchTemplates[0]; r.Status != PublishWritten || r.Version != 3 || !r.Default {
				t.Errorf("result %+v", r)
			}
			calls := s.c.Calls("CreateLaunchTemplateVersion")
			if len(calls) != 2 {
				t.Fatalf("CreateLaunchTemplateVersion calls: %v", opsOf(calls))
			}
			tok := func(i int) string {
				return aws.ToString(calls[i].In.(*ec2.CreateLaunchTemplateVersionInput).ClientToken)
			}
			if tok(0) != tok(1) {
				t.Errorf("tokens %q and %q differ", tok(0), tok(1))
			}
			if lt := s.c.lt("eu-west-1", s.lts["eu-west-1"]); len(lt.versions) != 3 || lt.def != 3 {
				t.Errorf("template has %d versions, default %d; want one made", len(lt.versions), lt.def)
			}
			if n := len(s.c.Calls("DescribeLaunchTemplateVersions")); (n > 0) != tc.replayFails {
				t.Errorf("%d DescribeLaunchTemplateVersions calls", n)
			}
		})
	}
}

func TestPublishRerunWithSameRunIDMakesNoSecondVersion(t *testing.T) {
	s := newPubSetup(t, "eu-west-1", "us-east-1")
	if _, err := s.publish(context.Background()); err != nil {
		t.Fatalf("first Publish: %v", err)
	}
	// The default is now this run's version 3, so $Default resolves to
	// another source than the first time.
	out, err := Publish(context.Background(), s.c.clients(), s.input, func(o *Options) { o.SSM = s.c.ssmClients() })
	if err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	for _, r := range out.LaunchTemplates {
		if r.Version != 3 || r.Status != PublishWritten || !r.Default {
			t.Errorf("%s: %+v", r.Region, r)
		}
		if lt := s.c.lt(r.Region, r.ID); len(lt.versions) != 3 {
			t.Errorf("%s: %d versions, want 3", r.Region, len(lt.versions))
		}
	}
	if n := len(s.c.Calls("PutParameter")); n != 2 {
		t.Errorf("%d PutParameter calls; the second run writes nothing", n)
	}
}

func TestPublishFailureInLastRegionRollsBackEarlierRegions(t *testing.T) {
	s := newPubSetup(t, "eu-west-1", "us-east-1", "us-west-2")
	s.c.Before = func(_ context.Context, k call) error {
		if k.Region == "us-west-2" && k.Op == "CreateLaunchTemplateVersion" {
			return apiErr("UnauthorizedOperation")
		}
		return nil
	}
	out, err := s.publish(context.Background())
	if err == nil || !strings.Contains(err.Error(), "us-west-2") || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Fatalf("Publish = %v", err)
	}
	s.mustBeAsBefore(t)
	wantParam := map[string]PublishStatus{"eu-west-1": PublishRestored, "us-east-1": PublishDeleted, "us-west-2": PublishDeleted}
	for _, r := range out.Parameters {
		if r.Status != wantParam[r.Region] {
			t.Errorf("%s parameter: %s, want %s", r.Region, r.Status, wantParam[r.Region])
		}
	}
	wantLT := map[string]PublishStatus{"eu-west-1": PublishRemoved, "us-east-1": PublishRemoved, "us-west-2": PublishFailed}
	for _, r := range out.LaunchTemplates {
		if r.Status != wantLT[r.Region] || r.Default {
			t.Errorf("%s template: %+v, want %s", r.Region, r, wantLT[r.Region])
		}
	}
	if s.led.Len() != 0 {
		t.Errorf("ledger after a failure: %v", s.led.Resources())
	}
	// Reverse order: the last change is undone first.
	var undone []string
	for _, k := range s.c.Calls("DeleteParameter", "DeleteLaunchTemplateVersions") {
		undone = append(undone, k.Region+" "+k.Op)
	}
	want := []string{"us-west-2 DeleteParameter", "us-east-1 DeleteLaunchTemplateVersions", "us-east-1 DeleteParameter", "eu-west-1 DeleteLaunchTemplateVersions"}
	if !slices.Equal(undone, want) {
		t.Errorf("undo order %v, want %v", undone, want)
	}
}

func TestPublishCancelledFromInsideRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after bool // cancel after the call took effect (its answer lost)
		op    string
	}{
		{"before PutParameter", false, "PutParameter"},
		{"after PutParameter", true, "PutParameter"},
		{"after CreateLaunchTemplateVersion", true, "CreateLaunchTemplateVersion"},
		{"after ModifyLaunchTemplate", true, "ModifyLaunchTemplate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPubSetup(t, "eu-west-1", "us-east-1")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hook := func(hctx context.Context, k call) error {
				if k.Region == "us-east-1" && k.Op == tc.op {
					cancel()
					return hctx.Err()
				}
				return nil
			}
			if tc.after {
				s.c.After = hook
			} else {
				s.c.Before = hook
			}
			_, err := s.publish(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Publish = %v, want context.Canceled", err)
			}
			s.mustBeAsBefore(t)
			if s.led.Len() != 0 {
				t.Errorf("ledger after cancellation: %v", s.led.Resources())
			}
		})
	}
}

func TestPublishResultJSON(t *testing.T) {
	out := PublishOutput{
		Parameters:      []ParameterResult{{Region: "eu-west-1", Name: "/p", ImageID: "ami-1", Version: 2, Status: PublishFailed, Err: errors.New("boom")}},
		LaunchTemplates: []LaunchTemplateResult{{Region: "eu-west-1", ID: "lt-1", ImageID: "ami-1", SourceVersion: 1, Status: PublishLeft}},
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"error":"boom"`, `"image_id":"ami-1"`, `"source_version":1`, `"status":"left"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var back PublishOutput
	if err := json.Unmarshal(b, &back); err != nil || back.Parameters[0].Err == nil || back.Parameters[0].Err.Error() != "boom" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestPublishRollbackReportsAVersionItCouldNotDelete(t *testing.T) {
	s := newPubSetup(t, "eu-west-1", "us-east-1")
	s.c.Before = func(_ context.Context, k call) error {
		switch {
		case k.Region == "us-east-1" && k.Op == "CreateLaunchTemplateVersion":
			return apiErr("UnauthorizedOperation")
		case k.Op == "DeleteLaunchTemplateVersions":
			return serverErr("InternalError")
		}
		return nil
	}
	out, err := s.publish(context.Background())
	if err == nil || !strings.Contains(err.Error(), "roll back") || !strings.Contains(err.Error(), "delete version 3 of launch template web") {
		t.Fatalf("Publish = %v", err)
	}
	r := out.LaunchTemplates[0]
	if r.Region != "eu-west-1" || r.Status != PublishRestored || r.Default || r.Err == nil || !strings.Contains(r.Err.Error(), "InternalError") {
		t.Errorf("result %+v", r)
	}
	if lt := s.c.lt("eu-west-1", s.lts["eu-west-1"]); lt.def != 1 || len(lt.versions) != 3 {
		t.Errorf("template default %d with %d versions; want the default restored and the version left", lt.def, len(lt.versions))
	}
}

// TestPreflightPublishWithoutEC2Clients: launch templates without an EC2
// client function are refused, as Publish refuses them, instead of a call
// through a nil function.
func TestPreflightPublishWithoutEC2Clients(t *testing.T) {
	in := &PublishInput{Images: map[string]string{"eu-west-1": "ami-0123456789abcdef0"}, LaunchTemplates: []LaunchTemplate{{Name: "web"}}}
	_, err := PreflightPublish(context.Background(), ClientFunc(nil), in)
	if err == nil || !strings.Contains(err.Error(), "launch templates are given but no EC2 client function") {
		t.Errorf("PreflightPublish without EC2 clients = %v", err)
	}
}
