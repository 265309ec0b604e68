//go:build unix

package awstest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// moto 5.2.1 ignores two parameters of EC2 CopyImage that EC2 documents and
// that safe cleanup relies on:
//
//   - ClientToken: EC2 answers a repeated token (same account and region)
//     with the image the first call made, and makes no second copy; moto
//     makes a new image for every call.
//   - TagSpecifications: EC2 tags the new AMI (ResourceType image) and its
//     new snapshots (ResourceType snapshot) when it makes them; moto drops
//     the tags.
//
// The proxy emulates both for every CopyImage it forwards, unless
// ProxyOptions.RawCopyImage is set: calls with the same ClientToken are
// serialised, the first one that gets an image ID from moto stores it, and
// every later call with that token is answered by the proxy with the same
// ID (recorded with Call.Emulated set). The tags are applied with
// CreateTags (and, for snapshot tags, a DescribeImages to find the copy's
// snapshots) before the client sees the answer, so a client never sees a
// copy without its tags, as with EC2.

// moto 5.2.1 drops RegisterImage's TagSpecifications too; unless
// ProxyOptions.RawRegisterImage, the proxy applies its image tags the same
// way (an instance-store AMI has no snapshots to tag).

// copyToken is the state of one CopyImage ClientToken (see
// Proxy.copyTokens).
type copyToken struct {
	mu      sync.Mutex // held while a call with this token is handled
	imageID string
}

// copyCall is the emulation state of one forwarded CopyImage or
// RegisterImage call.
type copyCall struct {
	token *copyToken // nil without a ClientToken
	tags  map[string][]tagKV
}

type tagKV struct{ key, value string }

var tagSpecRE = regexp.MustCompile(`^TagSpecification\.(\d+)\.(ResourceType|Tag\.(\d+)\.(Key|Value))$`)

// tagSpecs reads TagSpecification.N.ResourceType and
// TagSpecification.N.Tag.M.Key/Value into resource type → tags.
func tagSpecs(params url.Values) map[string][]tagKV {
	type spec struct {
		typ  string
		tags map[int]*tagKV
	}
	specs := map[int]*spec{}
	for k, v := range params {
		m := tagSpecRE.FindStringSubmatch(k)
		if m == nil || len(v) == 0 {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		s := specs[n]
		if s == nil {
			s = &spec{tags: map[int]*tagKV{}}
			specs[n] = s
		}
		if m[2] == "ResourceType" {
			s.typ = v[0]
			continue
		}
		i, _ := strconv.Atoi(m[3])
		kv := s.tags[i]
		if kv == nil {
			kv = &tagKV{}
			s.tags[i] = kv
		}
		if m[4] == "Key" {
			kv.key = v[0]
		} else {
			kv.value = v[0]
		}
	}
	out := map[string][]tagKV{}
	for _, s := range specs {
		idx := make([]int, 0, len(s.tags))
		for i := range s.tags {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		for _, i := range idx {
			out[s.typ] = append(out[s.typ], *s.tags[i])
		}
	}
	return out
}

// startCopyImage prepares the emulation for a CopyImage call. When the
// call repeats a token whose image is known, it answers the call itself and
// returns done. Otherwise the returned unlock must be called once the call
// is finished.
func (p *Proxy) startCopyImage(w http.ResponseWriter, call *Call) (cc *copyCall, unlock func(), done bool) {
	cc = &copyCall{tags: tagSpecs(call.Params)}
	unlock = func() {}
	tok := call.Params.Get("ClientToken")
	if tok == "" {
		return cc, unlock, false
	}
	e := p.copyTokens.entry(call.AccessKeyID + "\x00" + call.Region + "\x00" + tok)
	e.mu.Lock()
	if e.imageID == "" {
		cc.token = e
		return cc, e.mu.Unlock, false
	}
	id := e.imageID
	e.mu.Unlock()
	requestID := fmt.Sprintf("awstest-%08d", call.Seq)
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<CopyImageResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>` + requestID +
		`</requestId><imageId>` + id + `</imageId></CopyImageResponse>`)
	call.Status = http.StatusOK
	call.Emulated = "repeated ClientToken answered with " + id
	p.record(*call)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil, nil, true
}

var (
	imageIDRE    = regexp.MustCompile(`<imageId>(ami-[0-9a-zA-Z]+)</imageId>`)
	snapshotIDRE = regexp.MustCompile(`<snapshotId>(snap-[0-9a-zA-Z]+)</snapshotId>`)
)

// finishCopyImage runs on moto's answer to a forwarded CopyImage or
// RegisterImage: it stores the new image under the call's token (if any)
// and applies the call's tag specifications. It returns a description of
// what it did.
func (p *Proxy) finishCopyImage(resp *http.Response, cc *copyCall) (string, error) {
	if resp.StatusCode != http.StatusOK || resp.Body == nil {
		return "", nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	m := imageIDRE.FindSubmatch(body)
	if m == nil {
		return "", nil
	}
	id := string(m[1])
	if cc.token != nil {
		cc.token.imageID = id
	}
	var did []string
	if tags := cc.tags["image"]; len(tags) > 0 {
		if err := p.createTags(resp.Request, []string{id}, tags); err != nil {
			return "", fmt.Errorf("tag image %s: %w", id, err)
		}
		did = append(did, "image tags applied")
	}
	if tags := cc.tags["snapshot"]; len(tags) > 0 {
		out, err := p.emulatedCall(resp.Request, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {id}})
		if err != nil {
			return "", fmt.Errorf("describe image %s: %w", id, err)
		}
		var snaps []string
		for _, s := range snapshotIDRE.FindAllSubmatch(out, -1) {
			snaps = append(snaps, string(s[1]))
		}
		if len(snaps) > 0 {
			if err := p.createTags(resp.Request, snaps, tags); err != nil {
				return "", fmt.Errorf("tag snapshots of %s: %w", id, err)
			}
		}
		did = append(did, "snapshot tags applied")
	}
	return strings.Join(did, ", "), nil
}

func (p *Proxy) createTags(orig *http.Request, ids []string, tags []tagKV) error {
	v := url.Values{"Action": {"CreateTags"}}
	for i, id := range ids {
		v.Set(fmt.Sprintf("ResourceId.%d", i+1), id)
	}
	for i, t := range tags {
		v.Set(fmt.Sprintf("Tag.%d.Key", i+1), t.key)
		v.Set(fmt.Sprintf("Tag.%d.Value", i+1), t.value)
	}
	_, err := p.emulatedCall(orig, v)
	return err
}

// emulatedCall sends an EC2 query call to the target on behalf of the
// request orig (same credentials scope and x-moto-account-id header, so
// same account and region; moto does not check signatures) and returns the
// answer's body.
func (p *Proxy) emulatedCall(orig *http.Request, v url.Values) ([]byte, error) {
	v.Set("Version", "2016-11-15")
	body := v.Encode()
	ctx := context.WithoutCancel(orig.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target.String(), strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "User-Agent", "X-Moto-Account-Id"} {
		if val := orig.Header.Get(h); val != "" {
			req.Header.Set(h, val)
		}
	}
	req.Host = orig.Host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := p.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d: %.200s", v.Get("Action"), resp.StatusCode, out)
	}
	return out, nil
}
