//go:build unix

package awstest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file holds what the EC2 emulations of launchtemplate.go and
// crossaccount.go share: the hooks a forwarded call can carry, the accounts
// behind access keys, calls to the target made on a caller's behalf, and
// editing of EC2 XML answers.

// emulation is what the proxy does in the target's place for one call.
type emulation struct {
	// respond, when set, answers the request that would go to the target.
	// It may forward it, changed or not, with p.base. did describes what
	// was emulated ("" when nothing).
	respond func(req *http.Request) (resp *http.Response, did string, err error)
	// after, when set, runs on the answer (the target's or respond's)
	// before the client sees it, and may change it.
	after func(resp *http.Response) (did string, err error)
	// unlock, when set, is called once the call is finished.
	unlock func()
	// detach carries the call out even when its client goes away, as a
	// request that reached EC2 is.
	detach bool
}

// emulatingTransport sends a request to the target unless the call's
// emulation answers it.
type emulatingTransport struct{ base http.RoundTripper }

func (t emulatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(ctxKey{}).(*callState)
	if st == nil || st.em == nil || st.em.respond == nil {
		return t.base.RoundTrip(req)
	}
	resp, did, err := st.em.respond(req)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, fmt.Errorf("%s emulation made no answer", st.call.Action)
	}
	resp.Request = req
	st.emulated = joinDid(st.emulated, did)
	return resp, nil
}

// emulationFor returns the emulation of call, or nil. Its respond runs in
// the target's place, after faults are consulted, so that a fault applies
// to an emulated call as to any other.
func (p *Proxy) emulationFor(r *http.Request, call *Call) *emulation {
	if call.Service != "ec2" {
		return nil
	}
	switch call.Action {
	case "CopyImage", "DescribeImages":
		if !p.rawCrossAccount {
			return p.crossAccountEmulation(call)
		}
	case "CreateLaunchTemplateVersion", "DescribeLaunchTemplateVersions", "DescribeLaunchTemplates",
		"ModifyLaunchTemplate", "DeleteLaunchTemplateVersions":
		return p.launchTemplateEmulation(r, call)
	}
	return nil
}

// tokenTable hands out one entry per idempotency token key, made on
// first use and kept for the proxy's lifetime, so that every call with a
// token finds the state of the first call with it.
type tokenTable[T any] struct {
	mu      sync.Mutex
	entries map[string]*T
}

// entry returns the entry of key, making it when there is none yet.
func (t *tokenTable[T]) entry(key string) *T {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil {
		t.entries = map[string]*T{}
	}
	e := t.entries[key]
	if e == nil {
		e = new(T)
		t.entries[key] = e
	}
	return e
}

func joinDid(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ", " + b
}

// xmlResponse is an answer made by the proxy.
func xmlResponse(status int, body []byte) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "text/xml;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
}

// ec2Error is an EC2 error answer.
func ec2Error(status int, code, message string) *http.Response {
	return xmlResponse(status, ec2ErrorBody(code, message))
}

func ec2ErrorBody(code, message string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Response><Errors><Error><Code>")
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(message))
	b.WriteString("</Message></Error></Errors><RequestID>awstest-emulated</RequestID></Response>")
	return b.Bytes()
}

// readBody reads resp's body and puts an equivalent one back.
func readBody(resp *http.Response) ([]byte, error) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return body, err
}

// setBody replaces resp's status and body.
func setBody(resp *http.Response, status int, body []byte) {
	resp.StatusCode = status
	resp.Status = fmt.Sprintf("%d %s", status, http.StatusText(status))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Del("Content-Encoding")
	resp.Header.Set("Content-Type", "text/xml;charset=UTF-8")
}

// errorCodeOf returns the AWS error code of an error answer's body.
func errorCodeOf(body []byte) string {
	if m := errorCodeRE.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// forwardForm sends req to the target with its form parameters replaced
// by v.
func (p *Proxy) forwardForm(req *http.Request, v url.Values) (*http.Response, error) {
	body := v.Encode()
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(strings.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	out.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return p.base.RoundTrip(out)
}

// caller names who a call to the target is made as: the access key (moto
// takes the account of the key), the region, and an account that overrides
// the key's (moto's x-moto-account-id header).
type caller struct {
	key, region, account string
}

func callerOf(req *http.Request) caller {
	key, region, _ := parseCredentialScope(credentialFromAuth(req.Header.Get("Authorization")))
	return caller{key: key, region: region, account: req.Header.Get("X-Moto-Account-Id")}
}

// query sends an EC2 or STS query call to the target as c and returns the
// answer's status and body. moto does not check signatures, so the request
// only names the key in its credential scope.
func (p *Proxy) query(ctx context.Context, c caller, service string, v url.Values) (int, []byte, error) {
	switch service {
	case "ec2":
		v.Set("Version", "2016-11-15")
	case "sts":
		v.Set("Version", "2011-06-15")
	}
	body := v.Encode()
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, p.target.String(), strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	now := time.Now().UTC()
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=host;x-amz-date, Signature=%064d",
		c.key, now.Format("20060102"), c.region, service, 0))
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if c.account != "" {
		req.Header.Set("X-Moto-Account-Id", c.account)
	}
	resp, err := p.base.RoundTrip(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s in %s: %w", service, v.Get("Action"), c.region, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s in %s: read answer: %w", service, v.Get("Action"), c.region, err)
	}
	return resp.StatusCode, out, nil
}

// queryOK is query for calls that must succeed.
func (p *Proxy) queryOK(ctx context.Context, c caller, service string, v url.Values) ([]byte, error) {
	status, body, err := p.query(ctx, c, service, v)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%s %s in %s answered %d: %.300s", service, v.Get("Action"), c.region, status, body)
	}
	return body, nil
}

// accounts remembers the access keys and accounts the proxy has seen and
// the account of each key, which it learns once from STS
// GetCallerIdentity through the target.
type accounts struct {
	mu      sync.Mutex
	keys    map[string]string // access key → account ("" until resolved)
	headers map[string]bool   // accounts named by x-moto-account-id
}

var accountRE = regexp.MustCompile(`<Account>(\d+)</Account>`)

// see notes the key and header account of a call.
func (a *accounts) see(key, account string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.keys == nil {
		a.keys, a.headers = map[string]string{}, map[string]bool{}
	}
	if _, ok := a.keys[key]; key != "" && !ok {
		a.keys[key] = ""
	}
	if account != "" {
		a.headers[account] = true
	}
}

// accountOf returns the account c acts as.
func (p *Proxy) accountOf(ctx context.Context, c caller) (string, error) {
	if c.account != "" {
		return c.account, nil
	}
	p.accounts.see(c.key, "")
	p.accounts.mu.Lock()
	acct := p.accounts.keys[c.key]
	p.accounts.mu.Unlock()
	if acct != "" {
		return acct, nil
	}
	body, err := p.queryOK(ctx, caller{key: c.key, region: "us-east-1"}, "sts", url.Values{"Action": {"GetCallerIdentity"}})
	if err != nil {
		return "", fmt.Errorf("account of access key %s: %w", c.key, err)
	}
	m := accountRE.FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("account of access key %s: no account in %.200s", c.key, body)
	}
	p.accounts.mu.Lock()
	p.accounts.keys[c.key] = string(m[1])
	p.accounts.mu.Unlock()
	return string(m[1]), nil
}

// knownAccounts returns every account the proxy has seen, sorted.
func (p *Proxy) knownAccounts(ctx context.Context) ([]string, error) {
	p.accounts.mu.Lock()
	var keys []string
	set := map[string]bool{}
	for k := range p.accounts.keys {
		keys = append(keys, k)
	}
	for a := range p.accounts.headers {
		set[a] = true
	}
	p.accounts.mu.Unlock()
	var errs []error
	for _, k := range keys {
		a, err := p.accountOf(ctx, caller{key: k})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set[a] = true
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out, errors.Join(errs...)
}

// itemSpan is the byte range of one <item> directly inside a set element.
type itemSpan struct{ start, end int }

// items finds the <item> elements directly inside the first element named
// set of an XML document.
func items(body []byte, set string) ([]itemSpan, error) {
	var spans []itemSpan
	err := walkItems(body, set, true, func(start, end int) error {
		spans = append(spans, itemSpan{start, end})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return spans, nil
}

// walkItems calls fn with the byte range of each <item> directly inside an
// element named set, in document order: inside the first such element only
// when first is set, else inside every one. It stops at fn's first error.
func walkItems(body []byte, set string, first bool, fn func(start, end int) error) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth, setDepth, start := 0, -1, 0
	for {
		off := int(d.InputOffset())
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("parse answer: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case setDepth < 0 && t.Name.Local == set:
				setDepth = depth
			case setDepth > 0 && depth == setDepth+1 && t.Name.Local == "item":
				start = off
			}
		case xml.EndElement:
			switch {
			case setDepth > 0 && depth == setDepth+1 && t.Name.Local == "item":
				if err := fn(start, int(d.InputOffset())); err != nil {
					return err
				}
			case depth == setDepth && first:
				return nil
			case depth == setDepth:
				setDepth = -1
			}
			depth--
		}
	}
}

// rewriteItems replaces each <item> directly inside the first element named
// set with what edit returns for it (nil drops it).
func rewriteItems(body []byte, set string, edit func(item []byte) []byte) ([]byte, error) {
	spans, err := items(body, set)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	last := 0
	for _, s := range spans {
		out.Write(body[last:s.start])
		out.Write(edit(body[s.start:s.end]))
		last = s.end
	}
	out.Write(body[last:])
	return out.Bytes(), nil
}
