package distribute

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// imageDataType is the SSM data type of a parameter that holds an AMI ID.
const imageDataType = "aws:ec2:image"

// paramWrite is what is known of one parameter write, for its undo.
type paramWrite struct {
	api                 SSMAPI
	o                   Options
	region, name, image string
	// version is the version that holds image; 0 while the outcome of an
	// interrupted PutParameter is not known.
	version int64
	created bool
	// The parameter before the write (when it existed).
	previous, prevDataType string
	prevVersion            int64
}

func (p *publisher) writeParameter(ctx context.Context, s publishStep) error {
	r := &p.out.Parameters[s.index]
	api := p.o.SSM(s.region)
	name := s.param.Name
	fail := func(st PublishStatus, err error) error {
		r.Status, r.Err = st, err
		return err
	}
	cur, err := getParameter(ctx, api, name)
	if err != nil {
		return fail(PublishFailed, fmt.Errorf("read parameter %s in %s: %w", name, s.region, err))
	}
	w := &paramWrite{api: api, o: p.o, region: s.region, name: name, image: s.image}
	in := &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(s.image),
		Type: ssmtypes.ParameterTypeString, DataType: aws.String(imageDataType),
	}
	if cur != nil {
		if cur.Type != ssmtypes.ParameterTypeString {
			return fail(PublishFailed, fmt.Errorf("parameter %s in %s is of type %s; only a String parameter can hold an AMI", name, s.region, cur.Type))
		}
		w.previous, w.prevDataType, w.prevVersion = aws.ToString(cur.Value), aws.ToString(cur.DataType), cur.Version
		r.Previous = w.previous
		if w.previous == s.image {
			p.o.logf("parameter %s in %s holds %s already", name, s.region, s.image)
			r.Version, r.Status = cur.Version, PublishWritten
			return nil
		}
		in.Overwrite = aws.Bool(true)
	} else {
		w.created, r.Created = true, true
		in.Tags = ssmTags(s.param.Tags)
		if s.param.Description != "" {
			in.Description = aws.String(s.param.Description)
		}
	}

	p.o.logf("writing %s = %s in %s", name, s.image, s.region)
	out, err := api.PutParameter(ctx, in)
	if err == nil {
		w.version = out.Version
		r.Version, r.Status = out.Version, PublishWritten
		p.recordParameter(w, r)
		return nil
	}
	werr := fmt.Errorf("write parameter %s = %s in %s: %w", name, s.image, s.region, err)
	if awserr.IsRefusal(err) {
		return fail(PublishFailed, werr)
	}
	// No answer: the value may have been written. The undo is recorded
	// now; it acts only if the parameter holds this run's AMI.
	p.recordParameter(w, r)
	cctx, cancel := p.checkContext(ctx)
	defer cancel()
	got, gerr := getParameter(cctx, api, name)
	switch {
	case gerr != nil:
		return fail(PublishUnknown, fmt.Errorf("%w; could not find out whether it was written (check whether %s in %s holds %s): %w",
			werr, name, s.region, s.image, gerr))
	case got != nil && aws.ToString(got.Value) == s.image:
		// AMI IDs are unique: the value is this run's.
		w.version = got.Version
		r.Version, r.Status = got.Version, PublishWritten
		p.o.logf("the answer to writing %s in %s was lost; it holds %s (version %d)", name, s.region, s.image, got.Version)
		if ctx.Err() != nil {
			return fmt.Errorf("write parameter %s in %s: %w", name, s.region, context.Cause(ctx))
		}
		return nil
	default:
		return fail(PublishFailed, werr)
	}
}

// recordParameter notes the write w for rollback and hand-over.
func (p *publisher) recordParameter(w *paramWrite, r *ParameterResult) {
	p.record(undoEntry{res: r.Resource(), undo: w.undo, set: undoOutcome(&r.Status, &r.Err)})
}

// undo puts the previous value back, or deletes the parameter when the
// write created it, if the parameter still holds the value written;
// otherwise it leaves the parameter as it is.
func (w *paramWrite) undo(ctx context.Context) (PublishStatus, error) {
	cur, err := getParameter(ctx, w.api, w.name)
	if err != nil {
		return "", fmt.Errorf("read parameter %s in %s: %w", w.name, w.region, err)
	}
	ours := cur != nil && aws.ToString(cur.Value) == w.image && (w.version == 0 || cur.Version == w.version)
	if !ours {
		if w.version == 0 && (cur == nil && w.created || cur != nil && !w.created && cur.Version == w.prevVersion) {
			// The interrupted write did not take effect.
			return PublishFailed, nil
		}
		now := "it was deleted"
		if cur != nil {
			now = fmt.Sprintf("it holds %s (version %d)", aws.ToString(cur.Value), cur.Version)
		}
		w.o.logf("leaving parameter %s in %s as it is: %s, changed since this run wrote %s", w.name, w.region, now, w.image)
		return PublishLeft, nil
	}
	if w.created {
		if _, err := w.api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(w.name)}); err != nil && !isParameterNotFound(err) {
			return "", fmt.Errorf("delete parameter %s in %s: %w", w.name, w.region, err)
		}
		w.o.logf("deleted parameter %s in %s, which this run created", w.name, w.region)
		return PublishDeleted, nil
	}
	in := &ssm.PutParameterInput{
		Name: aws.String(w.name), Value: aws.String(w.previous),
		Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
	}
	if w.prevDataType != "" {
		in.DataType = aws.String(w.prevDataType)
	}
	if _, err := w.api.PutParameter(ctx, in); err != nil {
		return "", fmt.Errorf("restore parameter %s in %s to %s: %w", w.name, w.region, w.previous, err)
	}
	w.o.logf("restored parameter %s in %s to %s", w.name, w.region, w.previous)
	return PublishRestored, nil
}

// getParameter returns the parameter, or nil when it does not exist.
func getParameter(ctx context.Context, api SSMAPI, name string) (*ssmtypes.Parameter, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		if isParameterNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if out.Parameter == nil {
		return nil, errors.New("GetParameter answered without the parameter")
	}
	return out.Parameter, nil
}

func isParameterNotFound(err error) bool {
	var nf *ssmtypes.ParameterNotFound
	return errors.As(err, &nf) || awserr.Code(err) == "ParameterNotFound"
}

func ssmTags(tags map[string]string) []ssmtypes.Tag {
	var out []ssmtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// checkContext returns ctx, or a fresh context bounded by
// Options.CleanupTimeout when ctx has ended, for finding out what an
// interrupted call did.
func (p *publisher) checkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), p.o.CleanupTimeout)
}
