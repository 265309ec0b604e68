//go:build unix

package awstest

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// moto 5.2.1 lacks two behaviours of EC2 launch templates that publishing
// AMIs to launch templates, and rolling that back, rely on:
//
//   - CreateLaunchTemplateVersion ClientToken: EC2 answers a repeated token
//     (same account, region and token) with the version the first call made
//     and makes no second version; moto makes a new version for every call.
//     Unless ProxyOptions.RawCreateLaunchTemplateVersion, the proxy
//     serialises calls with the same token, stores the first successful
//     answer, and answers every later call with that token with the same
//     body (recorded with Call.Emulated set).
//   - DeleteLaunchTemplateVersions: moto has no implementation (HTTP 500).
//     Unless ProxyOptions.RawDeleteLaunchTemplateVersions, the proxy answers
//     it in EC2's shape and keeps the deleted (account, region, template ID,
//     version) set itself; moto keeps every version. The template may be
//     named by ID or name (resolved with DescribeLaunchTemplates). A version
//     that is not a number, that moto never made or that is already deleted
//     is reported in unsuccessfullyDeletedLaunchTemplateVersionSet with
//     launchTemplateVersionDoesNotExist, an unknown template with
//     launchTemplateIdDoesNotExist or launchTemplateNameDoesNotExist, and a
//     request that names the default version fails as a whole with
//     InvalidParameterValue, deleting nothing (EC2 documents that the
//     default cannot be deleted; the exact answer is not documented).
//     The deletion is then made visible: DescribeLaunchTemplateVersions
//     answers leave deleted versions out, a request for a deleted version
//     number fails with InvalidLaunchTemplateId.VersionNotFound, $Latest
//     means the highest version not deleted, and latestVersionNumber in
//     DescribeLaunchTemplates and ModifyLaunchTemplate answers is the
//     highest version not deleted. ModifyLaunchTemplate with a deleted
//     SetDefaultVersion fails with InvalidLaunchTemplateId.VersionNotFound.
//
// Limits: the token is not checked against the request's other parameters
// (EC2 answers IdempotentParameterMismatch); a deleted version is still
// used by RunInstances, by CreateLaunchTemplateVersion's SourceVersion and
// by $Latest anywhere but DescribeLaunchTemplateVersions; DeleteLaunchTemplate
// and a new template with the old name start afresh because templates are
// keyed by ID. The account of a call is the one its x-moto-account-id
// header names, or else its access key's, learnt once from STS
// GetCallerIdentity through the target (emulate.go); a key whose account
// cannot be learnt keys its tokens by the key itself.

// launchTemplates is the proxy's launch template state.
type launchTemplates struct {
	tokens tokenTable[versionToken] // account, region and ClientToken → the first answer

	mu      sync.Mutex
	deleted map[string]map[int64]bool // account, region, template ID → deleted versions
}

type versionToken struct {
	mu   sync.Mutex // held while a call with this token is handled
	body []byte     // the first successful answer
}

// anyDeleted reports whether any version was deleted; while none was, the
// describe calls need no change.
func (lt *launchTemplates) anyDeleted() bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return len(lt.deleted) > 0
}

// deletedOf returns a copy of the deleted versions of a template.
func (lt *launchTemplates) deletedOf(key string) map[int64]bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	out := map[int64]bool{}
	for v := range lt.deleted[key] {
		out[v] = true
	}
	return out
}

func templateKey(account, region, id string) string {
	return account + "\x00" + region + "\x00" + id
}

// highestKept is the highest version up to latest that is not deleted.
func highestKept(latest int64, deleted map[int64]bool) int64 {
	for v := latest; v > 0; v-- {
		if !deleted[v] {
			return v
		}
	}
	return 0
}

func (p *Proxy) launchTemplateEmulation(r *http.Request, call *Call) *emulation {
	if call.Action == "CreateLaunchTemplateVersion" {
		if p.rawCreateLaunchTemplateVersion || call.Params.Get("ClientToken") == "" {
			return nil
		}
		return p.versionTokenEmulation(r, call)
	}
	if p.rawDeleteLaunchTemplateVersions {
		return nil
	}
	switch call.Action {
	case "DeleteLaunchTemplateVersions":
		return &emulation{respond: func(req *http.Request) (*http.Response, string, error) {
			return p.deleteVersions(req, call)
		}}
	case "DescribeLaunchTemplateVersions":
		return &emulation{
			respond: func(req *http.Request) (*http.Response, string, error) { return p.describeVersionsRequest(req, call) },
			after:   p.hideDeletedVersions,
		}
	case "ModifyLaunchTemplate":
		return &emulation{
			respond: func(req *http.Request) (*http.Response, string, error) { return p.modifyTemplateRequest(req, call) },
			after: func(resp *http.Response) (string, error) {
				return p.fixLatest(resp, func(body []byte, fix func([]byte) []byte) ([]byte, error) { return fix(body), nil })
			},
		}
	case "DescribeLaunchTemplates":
		return &emulation{after: func(resp *http.Response) (string, error) {
			return p.fixLatest(resp, func(body []byte, fix func([]byte) []byte) ([]byte, error) {
				return rewriteItems(body, "launchTemplates", fix)
			})
		}}
	}
	return nil
}

func (p *Proxy) versionTokenEmulation(r *http.Request, call *Call) *emulation {
	c := callerOf(r)
	acct, err := p.accountOf(r.Context(), c)
	if err != nil {
		acct = "key " + c.key
	}
	e := p.launchTemplates.tokens.entry(acct + "\x00" + call.Region + "\x00" + call.Params.Get("ClientToken"))
	e.mu.Lock()
	if body := e.body; body != nil {
		did := "repeated ClientToken answered with the first call's version"
		if m := versionNumberRE.FindSubmatch(body); m != nil {
			did = "repeated ClientToken answered with version " + string(m[1])
		}
		return &emulation{unlock: e.mu.Unlock, respond: func(*http.Request) (*http.Response, string, error) {
			return xmlResponse(http.StatusOK, body), did, nil
		}}
	}
	return &emulation{unlock: e.mu.Unlock, detach: true, after: func(resp *http.Response) (string, error) {
		if resp.StatusCode != http.StatusOK {
			return "", nil
		}
		body, err := readBody(resp)
		if err != nil {
			return "", err
		}
		e.body = body
		return "", nil
	}}
}

var (
	versionNumberRE  = regexp.MustCompile(`<versionNumber>(\d+)</versionNumber>`)
	templateIDRE     = regexp.MustCompile(`<launchTemplateId>([^<]+)</launchTemplateId>`)
	latestVersionRE  = regexp.MustCompile(`<latestVersionNumber>(\d+)</latestVersionNumber>`)
	versionParamRE   = regexp.MustCompile(`^LaunchTemplateVersion\.(\d+)$`)
	templateNotFound = regexp.MustCompile(`^InvalidLaunchTemplate(Id|Name)\.(NotFound|NotFoundException)$`)
)

// templateInfo is a launch template as DescribeLaunchTemplates gives it.
type templateInfo struct {
	ID      string `xml:"launchTemplateId"`
	Name    string `xml:"launchTemplateName"`
	Default int64  `xml:"defaultVersionNumber"`
	Latest  int64  `xml:"latestVersionNumber"` // moto's: no version is deleted there
}

// describeTemplate asks the target for the template with id, or else
// name; nil when there is none.
func (p *Proxy) describeTemplate(ctx context.Context, c caller, id, name string) (*templateInfo, error) {
	v := url.Values{"Action": {"DescribeLaunchTemplates"}}
	what := id
	if id != "" {
		v.Set("LaunchTemplateId.1", id)
	} else {
		v.Set("LaunchTemplateName.1", name)
		what = name
	}
	status, body, err := p.query(ctx, c, "ec2", v)
	if err != nil {
		return nil, fmt.Errorf("describe launch template %s: %w", what, err)
	}
	if status != http.StatusOK {
		if templateNotFound.MatchString(errorCodeOf(body)) {
			return nil, nil
		}
		return nil, fmt.Errorf("describe launch template %s in %s: answered %d: %.300s", what, c.region, status, body)
	}
	spans, err := items(body, "launchTemplates")
	if err != nil {
		return nil, fmt.Errorf("describe launch template %s: %w", what, err)
	}
	if len(spans) == 0 {
		return nil, nil
	}
	var info templateInfo
	if err := xml.Unmarshal(body[spans[0].start:spans[0].end], &info); err != nil {
		return nil, fmt.Errorf("describe launch template %s: %w", what, err)
	}
	return &info, nil
}

// resolveTemplate finds the template a call names by id or name, and the
// key its deleted versions are kept under (account, region and template
// ID); info is nil when the target knows no such template.
func (p *Proxy) resolveTemplate(req *http.Request, id, name string) (info *templateInfo, key string, err error) {
	ctx := req.Context()
	c := callerOf(req)
	acct, err := p.accountOf(ctx, c)
	if err != nil {
		return nil, "", err
	}
	if info, err = p.describeTemplate(ctx, c, id, name); err != nil || info == nil {
		return nil, "", err
	}
	return info, templateKey(acct, c.region, info.ID), nil
}

// indexed returns the values of the parameters matching re (whose first
// group is the index) in index order, with their names.
func indexed(params url.Values, re *regexp.Regexp) (names, values []string) {
	type kv struct {
		i    int
		k, v string
	}
	var all []kv
	for k, v := range params {
		if m := re.FindStringSubmatch(k); m != nil && len(v) > 0 {
			i, _ := strconv.Atoi(m[1])
			all = append(all, kv{i, k, v[0]})
		}
	}
	sort.Slice(all, func(a, b int) bool { return all[a].i < all[b].i })
	for _, e := range all {
		names, values = append(names, e.k), append(values, e.v)
	}
	return names, values
}

type deletedVersion struct {
	ID      string        `xml:"launchTemplateId,omitempty"`
	Name    string        `xml:"launchTemplateName,omitempty"`
	Version *int64        `xml:"versionNumber,omitempty"`
	Error   *versionError `xml:"responseError,omitempty"`
}

type versionError struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

// failedVersion is the entry of a version that could not be deleted, with
// the error code and message EC2 gives.
func failedVersion(id, name, version, code, message string) deletedVersion {
	d := deletedVersion{ID: id, Name: name, Error: &versionError{code, message}}
	if n, err := strconv.ParseInt(version, 10, 64); err == nil {
		d.Version = &n
	}
	return d
}

type deleteVersionsResponse struct {
	XMLName   xml.Name         `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DeleteLaunchTemplateVersionsResponse"`
	RequestID string           `xml:"requestId"`
	Deleted   []deletedVersion `xml:"successfullyDeletedLaunchTemplateVersionSet>item"`
	Failed    []deletedVersion `xml:"unsuccessfullyDeletedLaunchTemplateVersionSet>item"`
}

// deleteVersions answers DeleteLaunchTemplateVersions.
func (p *Proxy) deleteVersions(req *http.Request, call *Call) (*http.Response, string, error) {
	id, name := call.Params.Get("LaunchTemplateId"), call.Params.Get("LaunchTemplateName")
	_, versions := indexed(call.Params, versionParamRE)
	if refusal := refuseDeleteVersions(id, name, versions); refusal != nil {
		return refusal, "answered", nil
	}
	info, key, err := p.resolveTemplate(req, id, name)
	if err != nil {
		return nil, "", fmt.Errorf("delete launch template versions: %w", err)
	}
	out := deleteVersionsResponse{RequestID: fmt.Sprintf("awstest-%08d", call.Seq)}
	var deleted []string
	switch {
	case info == nil && id != "":
		for _, v := range versions {
			out.Failed = append(out.Failed, failedVersion(id, name, v, "launchTemplateIdDoesNotExist", fmt.Sprintf("The launch template ID %s does not exist.", id)))
		}
	case info == nil:
		for _, v := range versions {
			out.Failed = append(out.Failed, failedVersion(id, name, v, "launchTemplateNameDoesNotExist", fmt.Sprintf("The launch template name %s does not exist.", name)))
		}
	default:
		if refusal := refuseDefaultVersion(info, versions); refusal != nil {
			return refusal, "answered", nil
		}
		deleted = p.launchTemplates.remove(key, info, versions, &out)
	}
	body, err := xml.Marshal(out)
	if err != nil {
		return nil, "", fmt.Errorf("delete launch template versions: %w", err)
	}
	did := "answered, nothing deleted"
	if len(deleted) > 0 {
		did = fmt.Sprintf("answered, deleted version %s of %s", strings.Join(deleted, ", "), info.ID)
	}
	return xmlResponse(http.StatusOK, append([]byte(xml.Header), body...)), did, nil
}

// refuseDeleteVersions is EC2's error answer to a
// DeleteLaunchTemplateVersions that does not name one template and at
// least one version; nil when the request is well formed.
func refuseDeleteVersions(id, name string, versions []string) *http.Response {
	switch {
	case id == "" && name == "":
		return ec2Error(http.StatusBadRequest, "MissingParameter", "The request must name a launch template with LaunchTemplateId or LaunchTemplateName.")
	case id != "" && name != "":
		return ec2Error(http.StatusBadRequest, "InvalidParameterCombination", "The request must name the launch template with LaunchTemplateId or LaunchTemplateName, not both.")
	case len(versions) == 0:
		return ec2Error(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter LaunchTemplateVersion.")
	}
	return nil
}

// refuseDefaultVersion is the error answer to a request that would delete
// the template's default version, which fails as a whole; nil when it
// names no such version.
func refuseDefaultVersion(info *templateInfo, versions []string) *http.Response {
	for _, v := range versions {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n == info.Default {
			return ec2Error(http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf(
				"Version %d is the default version of launch template %s and cannot be deleted; make another version the default first.", n, info.ID))
		}
	}
	return nil
}

// remove records versions of the template info, kept under key, as
// deleted, and enters each in out: as deleted, or as failed when it is
// not a number, was never made or is deleted already. It returns the
// versions it deleted.
func (lt *launchTemplates) remove(key string, info *templateInfo, versions []string, out *deleteVersionsResponse) (deleted []string) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.deleted == nil {
		lt.deleted = map[string]map[int64]bool{}
	}
	gone := lt.deleted[key]
	if gone == nil {
		gone = map[int64]bool{}
		lt.deleted[key] = gone
	}
	for _, v := range versions {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > info.Latest || gone[n] {
			out.Failed = append(out.Failed, failedVersion(info.ID, info.Name, v, "launchTemplateVersionDoesNotExist", fmt.Sprintf("Version %s of launch template %s does not exist.", v, info.ID)))
			continue
		}
		gone[n] = true
		out.Deleted = append(out.Deleted, deletedVersion{ID: info.ID, Name: info.Name, Version: &n})
		deleted = append(deleted, v)
	}
	return deleted
}

// describeVersionsRequest refuses a DescribeLaunchTemplateVersions for a
// deleted version and resolves $Latest to the highest version not deleted;
// otherwise it forwards the request as it is.
func (p *Proxy) describeVersionsRequest(req *http.Request, call *Call) (*http.Response, string, error) {
	names, versions := indexed(call.Params, versionParamRE)
	id, name := call.Params.Get("LaunchTemplateId"), call.Params.Get("LaunchTemplateName")
	if len(versions) == 0 || (id == "" && name == "") || !p.launchTemplates.anyDeleted() {
		resp, err := p.base.RoundTrip(req)
		return resp, "", err
	}
	info, key, err := p.resolveTemplate(req, id, name)
	if err != nil {
		return nil, "", fmt.Errorf("describe launch template versions: %w", err)
	}
	if info == nil {
		resp, err := p.base.RoundTrip(req)
		return resp, "", err
	}
	gone := p.launchTemplates.deletedOf(key)
	if len(gone) == 0 {
		resp, err := p.base.RoundTrip(req)
		return resp, "", err
	}
	v := url.Values{}
	for k, vals := range call.Params {
		v[k] = vals
	}
	changed := false
	for i, ver := range versions {
		if strings.EqualFold(ver, "$Latest") {
			v.Set(names[i], strconv.FormatInt(highestKept(info.Latest, gone), 10))
			changed = true
			continue
		}
		if n, err := strconv.ParseInt(ver, 10, 64); err == nil && gone[n] {
			return ec2Error(http.StatusBadRequest, "InvalidLaunchTemplateId.VersionNotFound", fmt.Sprintf(
				"Could not find the specified version %d for the launch template with ID %s.", n, info.ID)), "version deleted", nil
		}
	}
	if !changed {
		resp, err := p.base.RoundTrip(req)
		return resp, "", err
	}
	resp, err := p.forwardForm(req, v)
	return resp, "$Latest resolved past deleted versions", err
}

// hideDeletedVersions leaves deleted versions out of a
// DescribeLaunchTemplateVersions answer.
func (p *Proxy) hideDeletedVersions(resp *http.Response) (string, error) {
	if resp.StatusCode != http.StatusOK || !p.launchTemplates.anyDeleted() {
		return "", nil
	}
	acct, err := p.accountOf(resp.Request.Context(), callerOf(resp.Request))
	if err != nil {
		return "", err
	}
	region := callerOf(resp.Request).region
	body, err := readBody(resp)
	if err != nil {
		return "", err
	}
	hidden := 0
	out, err := rewriteItems(body, "launchTemplateVersionSet", func(item []byte) []byte {
		var v struct {
			ID      string `xml:"launchTemplateId"`
			Version int64  `xml:"versionNumber"`
		}
		if xml.Unmarshal(item, &v) == nil && p.launchTemplates.deletedOf(templateKey(acct, region, v.ID))[v.Version] {
			hidden++
			return nil
		}
		return item
	})
	if err != nil || hidden == 0 {
		return "", err
	}
	setBody(resp, resp.StatusCode, out)
	return fmt.Sprintf("%d deleted versions left out", hidden), nil
}

// modifyTemplateRequest refuses a ModifyLaunchTemplate that makes a
// deleted version the default.
func (p *Proxy) modifyTemplateRequest(req *http.Request, call *Call) (*http.Response, string, error) {
	n, err := strconv.ParseInt(call.Params.Get("SetDefaultVersion"), 10, 64)
	if err != nil || !p.launchTemplates.anyDeleted() {
		resp, err := p.base.RoundTrip(req)
		return resp, "", err
	}
	info, key, err := p.resolveTemplate(req, call.Params.Get("LaunchTemplateId"), call.Params.Get("LaunchTemplateName"))
	if err != nil {
		return nil, "", fmt.Errorf("modify launch template: %w", err)
	}
	if info != nil && p.launchTemplates.deletedOf(key)[n] {
		return ec2Error(http.StatusBadRequest, "InvalidLaunchTemplateId.VersionNotFound", fmt.Sprintf(
			"The launch template version %d is not found for the specified launch template.", n)), "version deleted", nil
	}
	resp, err := p.base.RoundTrip(req)
	return resp, "", err
}

// fixLatest sets latestVersionNumber in an answer to the highest version
// not deleted; edit applies the fix to the parts of the body that describe
// one template each.
func (p *Proxy) fixLatest(resp *http.Response, edit func(body []byte, fix func([]byte) []byte) ([]byte, error)) (string, error) {
	if resp.StatusCode != http.StatusOK || !p.launchTemplates.anyDeleted() {
		return "", nil
	}
	c := callerOf(resp.Request)
	acct, err := p.accountOf(resp.Request.Context(), c)
	if err != nil {
		return "", err
	}
	body, err := readBody(resp)
	if err != nil {
		return "", err
	}
	fixed := 0
	out, err := edit(body, func(part []byte) []byte {
		id, latest := templateIDRE.FindSubmatch(part), latestVersionRE.FindSubmatchIndex(part)
		if id == nil || latest == nil {
			return part
		}
		n, _ := strconv.ParseInt(string(part[latest[2]:latest[3]]), 10, 64)
		gone := p.launchTemplates.deletedOf(templateKey(acct, c.region, string(id[1])))
		kept := highestKept(n, gone)
		if kept == n {
			return part
		}
		fixed++
		return []byte(string(part[:latest[2]]) + strconv.FormatInt(kept, 10) + string(part[latest[3]:]))
	})
	if err != nil || fixed == 0 {
		return "", err
	}
	setBody(resp, resp.StatusCode, out)
	return "latestVersionNumber set past deleted versions", nil
}
