package distribute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// launchTemplateToken returns the ClientToken of the
// CreateLaunchTemplateVersion call of one run for one template, region and
// AMI: a repeated call of the run is answered with the version the first
// one made.
func launchTemplateToken(runID, region, templateID, imageID string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{"launch-template-version/v1", runID, region, templateID, imageID}, "\x00")))
	return "amiforge-" + hex.EncodeToString(h[:20])
}

// ltWrite is what is known of one launch template version, for its undo.
type ltWrite struct {
	api                     LaunchTemplateAPI
	o                       Options
	region, id, name, image string
	version                 int64
	// made: this call made the version (not an earlier call of the run).
	made bool
	// setDefault: this run makes the version the default.
	setDefault  bool
	prevDefault int64
}

func (w *ltWrite) String() string {
	return fmt.Sprintf("launch template %s (%s) in %s", w.name, w.id, w.region)
}

// writeLaunchTemplate gives the launch template of s a version with the
// AMI of its region, made the default when asked, and records the undo of
// what it changed.
func (p *publisher) writeLaunchTemplate(ctx context.Context, s publishStep) error {
	r := &p.out.LaunchTemplates[s.index]
	api := p.clients(s.region)
	fail := func(st PublishStatus, err error) error {
		r.Status, r.Err = st, err
		return err
	}
	w, latest, err := p.startWrite(ctx, api, s, r)
	if err != nil {
		return fail(PublishFailed, err)
	}
	p.o.logf("making a version of launch template %s (%s) in %s from version %d with %s", w.name, w.id, s.region, r.SourceVersion, s.image)
	v, known, err := p.createVersion(ctx, api, p.versionRequest(w, r.SourceVersion), w, latest)
	if v != 0 {
		// Recorded even when the run stops here (ctx ended while the
		// version was made), so that the rollback removes it.
		p.noteVersion(w, r, v, latest, s.lt.SetDefault)
	}
	if err != nil {
		st := PublishFailed
		if !known {
			st = PublishUnknown
		}
		return fail(st, err)
	}
	if w.setDefault {
		p.o.logf("making version %d the default of launch template %s (%s) in %s", v, w.name, w.id, s.region)
		if err := w.setDefaultVersion(ctx, v); err != nil {
			return fail(PublishFailed, fmt.Errorf("make version %d the default of launch template %s (%s) in %s: %w", v, w.name, w.id, s.region, err))
		}
		r.Default = true
	}
	r.Status = PublishWritten
	return nil
}

// startWrite describes the launch template of s and resolves the version
// the new one is to be based on, and records both in r. It returns what
// the undo needs to know of the template, and its latest version.
func (p *publisher) startWrite(ctx context.Context, api LaunchTemplateAPI, s publishStep, r *LaunchTemplateResult) (*ltWrite, int64, error) {
	lt := s.lt
	ref := lt.ID + lt.Name // exactly one is set
	t, err := describeLaunchTemplate(ctx, api, lt.ID, lt.Name)
	if err != nil {
		return nil, 0, fmt.Errorf("describe launch template %s in %s: %w", ref, s.region, err)
	}
	w := &ltWrite{
		api: api, o: p.o, region: s.region, image: s.image,
		id: aws.ToString(t.LaunchTemplateId), name: aws.ToString(t.LaunchTemplateName),
		prevDefault: aws.ToInt64(t.DefaultVersionNumber),
	}
	latest := aws.ToInt64(t.LatestVersionNumber)
	r.ID, r.Name, r.PreviousDefault = w.id, w.name, w.prevDefault
	sv, _ := parseSourceVersion(lt.SourceVersion) // checked by Validate
	r.SourceVersion = sv.resolve(w.prevDefault, latest)
	return w, latest, nil
}

// versionRequest is this run's request for a version of w with its AMI,
// based on version src. The source is sent as the number it resolved to,
// so that the new version is based on the version reported.
func (p *publisher) versionRequest(w *ltWrite, src int64) *ec2.CreateLaunchTemplateVersionInput {
	return &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId:   aws.String(w.id),
		SourceVersion:      aws.String(strconv.FormatInt(src, 10)),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(w.image)},
		VersionDescription: aws.String(versionDescription(p.runID)),
		ClientToken:        aws.String(launchTemplateToken(p.runID, w.region, w.id, w.image)),
	}
}

// noteVersion records in w and r that version v (the template's latest
// was latest before) holds this run's AMI, and, when this run made it or
// is to make it the default, records the undo for the rollback.
func (p *publisher) noteVersion(w *ltWrite, r *LaunchTemplateResult, v, latest int64, setDefault bool) {
	w.version, w.made = v, v > latest
	w.setDefault = setDefault && w.prevDefault != v
	r.Version, r.Default = v, w.prevDefault == v
	if !w.made {
		p.o.logf("%s has version %d with %s from this run already", w, v, w.image)
	}
	if !w.made && !w.setDefault {
		return
	}
	set := undoOutcome(&r.Status, &r.Err)
	p.record(undoEntry{
		res:  r.Resource(),
		undo: w.undo,
		set: func(st PublishStatus, err error) {
			set(st, err)
			if st == PublishRemoved || st == PublishRestored {
				r.Default = false
			}
		},
	})
}

// setDefaultVersion makes version v the template's default version.
func (w *ltWrite) setDefaultVersion(ctx context.Context, v int64) error {
	_, err := w.api.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{
		LaunchTemplateId: aws.String(w.id), DefaultVersion: aws.String(strconv.FormatInt(v, 10)),
	})
	return err
}

// createVersion makes the version cin asks for and returns its number.
// known is false when a call was interrupted and it could not be found out
// whether it made a version.
//
// A call without an answer is repeated with the same ClientToken (with a
// fresh context when ctx has ended), which EC2 answers with the version
// the first call made, or makes it now. When that fails too, the versions
// after latest are searched for this run's description and AMI. A token
// EC2 knows with other parameters (IdempotentParameterMismatch: a re-run
// whose source version resolved differently) means that the version exists:
// it is searched for among all versions.
func (p *publisher) createVersion(ctx context.Context, api LaunchTemplateAPI, cin *ec2.CreateLaunchTemplateVersionInput, w *ltWrite, latest int64) (v int64, known bool, err error) {
	desc := aws.ToString(cin.VersionDescription)
	out, err := api.CreateLaunchTemplateVersion(ctx, cin)
	if err == nil {
		return versionOf(out), true, nil
	}
	cerr := fmt.Errorf("create a version of %s: %w", w, err)
	if awserr.Code(err) == "IdempotentParameterMismatch" {
		v, ferr := findVersion(ctx, api, w.id, 1, desc, w.image)
		switch {
		case ferr != nil:
			return 0, true, errors.Join(cerr, fmt.Errorf("look for the version of this run: %w", ferr))
		case v == 0:
			return 0, true, cerr
		}
		return v, true, nil
	}
	if awserr.IsRefusal(err) {
		return 0, true, cerr
	}
	cctx, cancel := p.checkContext(ctx)
	defer cancel()
	p.o.logf("the answer to making a version of %s was lost (%v); asking again with the same client token", w, err)
	out, rerr := api.CreateLaunchTemplateVersion(cctx, cin)
	if rerr == nil {
		v := versionOf(out)
		if ctx.Err() != nil {
			// Made now or before: either way this run's, to be undone.
			return v, true, fmt.Errorf("create a version of %s: %w", w, context.Cause(ctx))
		}
		return v, true, nil
	}
	v, ferr := findVersion(cctx, api, w.id, latest+1, desc, w.image)
	switch {
	case ferr == nil && v != 0:
		if ctx.Err() != nil {
			return v, true, fmt.Errorf("create a version of %s: %w", w, context.Cause(ctx))
		}
		return v, true, nil
	case ferr == nil && awserr.IsRefusal(rerr):
		return 0, true, cerr
	}
	return 0, false, fmt.Errorf("%w; could not find out whether it made a version (look for versions of %s described %q with %s): %w",
		cerr, w, desc, w.image, errors.Join(rerr, ferr))
}

func versionOf(out *ec2.CreateLaunchTemplateVersionOutput) int64 {
	if out == nil || out.LaunchTemplateVersion == nil {
		return 0
	}
	return aws.ToInt64(out.LaunchTemplateVersion.VersionNumber)
}

// undo makes the previous default version the default again when this run
// made its version the default and it still is, then deletes the version
// this run made. A version someone else made the default is left.
func (w *ltWrite) undo(ctx context.Context) (PublishStatus, error) {
	t, err := describeLaunchTemplate(ctx, w.api, w.id, "")
	if err != nil {
		if isLaunchTemplateNotFound(err) {
			w.o.logf("leaving %s: it was deleted", w)
			return PublishLeft, nil
		}
		return "", fmt.Errorf("describe %s: %w", w, err)
	}
	restored := false
	if aws.ToInt64(t.DefaultVersionNumber) == w.version {
		if !w.setDefault {
			w.o.logf("leaving version %d of %s: someone made it the default", w.version, w)
			return PublishLeft, nil
		}
		if err := w.setDefaultVersion(ctx, w.prevDefault); err != nil {
			return "", fmt.Errorf("make version %d the default of %s again: %w", w.prevDefault, w, err)
		}
		w.o.logf("made version %d the default of %s again", w.prevDefault, w)
		restored = true
	}
	if !w.made {
		if restored {
			return PublishRestored, nil
		}
		return "", nil
	}
	out, err := w.api.DeleteLaunchTemplateVersions(ctx, &ec2.DeleteLaunchTemplateVersionsInput{
		LaunchTemplateId: aws.String(w.id), Versions: []string{strconv.FormatInt(w.version, 10)},
	})
	if err == nil {
		for _, f := range out.UnsuccessfullyDeletedLaunchTemplateVersions {
			if f.ResponseError != nil && f.ResponseError.Code != types.LaunchTemplateErrorCodeLaunchTemplateVersionDoesNotExist {
				err = fmt.Errorf("%s: %s", f.ResponseError.Code, aws.ToString(f.ResponseError.Message))
				break
			}
		}
	}
	if err != nil {
		var st PublishStatus
		if restored {
			st = PublishRestored
		}
		return st, fmt.Errorf("delete version %d of %s: %w", w.version, w, err)
	}
	w.o.logf("deleted version %d of %s", w.version, w)
	return PublishRemoved, nil
}

// errLaunchTemplateNotFound reports a launch template missing from an
// answer of DescribeLaunchTemplates.
var errLaunchTemplateNotFound = errors.New("no such launch template")

// describeLaunchTemplate returns the template with the given ID or name.
func describeLaunchTemplate(ctx context.Context, api LaunchTemplateAPI, id, name string) (types.LaunchTemplate, error) {
	in := &ec2.DescribeLaunchTemplatesInput{}
	if id != "" {
		in.LaunchTemplateIds = []string{id}
	} else {
		in.LaunchTemplateNames = []string{name}
	}
	out, err := api.DescribeLaunchTemplates(ctx, in)
	if err != nil {
		return types.LaunchTemplate{}, err
	}
	for _, t := range out.LaunchTemplates {
		if id != "" && aws.ToString(t.LaunchTemplateId) == id || id == "" && aws.ToString(t.LaunchTemplateName) == name {
			if t.DefaultVersionNumber == nil || t.LatestVersionNumber == nil {
				return types.LaunchTemplate{}, errors.New("the answer lacks the default or latest version number")
			}
			return t, nil
		}
	}
	return types.LaunchTemplate{}, errLaunchTemplateNotFound
}

func isLaunchTemplateNotFound(err error) bool {
	c := awserr.Code(err)
	return errors.Is(err, errLaunchTemplateNotFound) || strings.HasPrefix(c, "InvalidLaunchTemplate") && strings.Contains(c, "NotFound")
}

// findVersion returns the number of the version from min on that has the
// description desc and the AMI image, or 0 when there is none.
func findVersion(ctx context.Context, api LaunchTemplateAPI, id string, min int64, desc, image string) (int64, error) {
	in := &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id)}
	if min > 1 {
		in.MinVersion = aws.String(strconv.FormatInt(min, 10))
	}
	pg := ec2.NewDescribeLaunchTemplateVersionsPaginator(api, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		for _, v := range page.LaunchTemplateVersions {
			if aws.ToString(v.VersionDescription) != desc || v.LaunchTemplateData == nil || aws.ToString(v.LaunchTemplateData.ImageId) != image {
				continue
			}
			if n := aws.ToInt64(v.VersionNumber); n >= min {
				return n, nil
			}
		}
	}
	return 0, nil
}
