//go:build unix

package awstest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ProxyOptions configures [StartProxy]. The zero value is ready to use.
type ProxyOptions struct {
	// Fault is the initial fault function (see [Proxy.SetFault]).
	Fault FaultFunc
	// Logf, when set, receives one line per call.
	Logf func(format string, args ...any)
	// RawCopyImage turns off the emulation of EC2's CopyImage ClientToken
	// and TagSpecifications (see [Proxy]), so that calls reach the target
	// exactly as sent.
	RawCopyImage bool
	// RawRegisterImage turns off the emulation of EC2's RegisterImage
	// TagSpecifications, which moto drops (copyimage.go).
	RawRegisterImage bool
	// RawCreateLaunchTemplateVersion turns off the emulation of EC2's
	// CreateLaunchTemplateVersion ClientToken (launchtemplate.go).
	RawCreateLaunchTemplateVersion bool
	// RawDeleteLaunchTemplateVersions turns off the emulation of EC2's
	// DeleteLaunchTemplateVersions and of its effect on the other launch
	// template calls (launchtemplate.go).
	RawDeleteLaunchTemplateVersions bool
	// RawCrossAccountCopy turns off the emulation of CopyImage and
	// DescribeImages for AMIs that another account shared with the caller
	// (crossaccount.go).
	RawCrossAccountCopy bool
	// Model, when set, makes EC2 instances and AMIs take time to change
	// state, as on AWS (timemodel.go). nil passes moto's final states on at
	// once.
	Model *TimeModel
}

// Proxy is a recording reverse proxy on 127.0.0.1 in front of a target
// endpoint (usually a [Moto]). Point SDK clients or a subprocess at URL
// instead of the target. It is safe for concurrent use.
//
// Unless ProxyOptions.RawCopyImage, it makes EC2 CopyImage behave as EC2
// documents where moto does not: a repeated ClientToken is answered with
// the first call's image, and TagSpecifications are applied before the
// answer reaches the client (copyimage.go); so are RegisterImage's, unless
// ProxyOptions.RawRegisterImage. It also emulates, unless
// switched off in ProxyOptions, CreateLaunchTemplateVersion's ClientToken
// and DeleteLaunchTemplateVersions (launchtemplate.go), and CopyImage and
// DescribeImages of an AMI another account shared (crossaccount.go). With
// ProxyOptions.Model it makes instances and AMIs take time to change state
// (timemodel.go).
type Proxy struct {
	// URL is the proxy's base URL, http://127.0.0.1:PORT.
	URL string

	target *url.URL
	rp     *httputil.ReverseProxy
	base   *http.Transport // to the target, without emulation
	srv    *http.Server
	ln     net.Listener
	logf   func(string, ...any)
	seq    atomic.Int64
	fault  atomic.Pointer[FaultFunc]

	rawCopyImage     bool
	rawRegisterImage bool
	copyTokens       tokenTable[copyToken] // account, region and ClientToken → the image made for it

	rawCreateLaunchTemplateVersion  bool
	rawDeleteLaunchTemplateVersions bool
	rawCrossAccount                 bool
	accounts                        accounts
	launchTemplates                 launchTemplates
	model                           *TimeModel

	mu       sync.Mutex
	calls    []Call
	inflight int        // requests being handled
	idle     *sync.Cond // signalled when inflight drops to 0 (L is &mu)
}

type ctxKey struct{}

// callState travels with a forwarded request so that the reverse proxy's
// hooks can complete and record its Call.
type callState struct {
	call    Call
	discard bool      // response is discarded (Fault.Forward); do not record
	status  int       // upstream status when discarded
	copy    *copyCall // CopyImage emulation, when on

	em       *emulation // other emulations (emulate.go)
	emulated string     // what em.respond did
}

// StartProxy starts a recording proxy in front of target (a base URL such
// as a Moto's Endpoint).
func StartProxy(target string, opts ProxyOptions) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("start proxy: bad target URL %q", target)
	}
	if opts.Model != nil {
		if err := opts.Model.start(); err != nil {
			return nil, fmt.Errorf("start proxy: %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start proxy: %w", err)
	}
	p := &Proxy{
		URL:    "http://" + ln.Addr().String(),
		target: u,
		ln:     ln,
		logf:   opts.Logf,

		rawCopyImage:     opts.RawCopyImage,
		rawRegisterImage: opts.RawRegisterImage,

		rawCreateLaunchTemplateVersion:  opts.RawCreateLaunchTemplateVersion,
		rawDeleteLaunchTemplateVersions: opts.RawDeleteLaunchTemplateVersions,
		rawCrossAccount:                 opts.RawCrossAccountCopy,
		model:                           opts.Model,
	}
	p.idle = sync.NewCond(&p.mu)
	if opts.Fault != nil {
		p.SetFault(opts.Fault)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.MaxIdleConnsPerHost = 32
	p.base = transport
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.target)
			// Keep the Host the client signed; moto builds URLs from it.
			pr.Out.Host = pr.In.Host
			// The inbound server already answered Expect: 100-continue.
			pr.Out.Header.Del("Expect")
		},
		Transport:      emulatingTransport{base: transport},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serveHTTP), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// NewProxy starts a proxy for a test and closes it in t.Cleanup.
func NewProxy(t testing.TB, target string, opts ProxyOptions) *Proxy {
	t.Helper()
	p, err := StartProxy(target, opts)
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Close stops the proxy and closes all its connections.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.base.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// SetFault installs the fault function consulted for every request; nil
// removes it.
func (p *Proxy) SetFault(f FaultFunc) {
	if f == nil {
		p.fault.Store(nil)
		return
	}
	p.fault.Store(&f)
}

// Calls returns a copy of the recorded calls in the order they were
// received. A call is recorded before its response header reaches the
// client, so a call the client has seen answered is always included.
func (p *Proxy) Calls() []Call {
	p.mu.Lock()
	out := append([]Call(nil), p.calls...)
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// CallsFor returns the recorded calls for service and action; an empty
// service or action matches any.
func (p *Proxy) CallsFor(service, action string) []Call {
	var out []Call
	for _, c := range p.Calls() {
		if Matches(c, service, action) {
			out = append(out, c)
		}
	}
	return out
}

// Actions returns "service:Action" for every recorded call, in order;
// handy for asserting a sequence.
func (p *Proxy) Actions() []string {
	calls := p.Calls()
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Service + ":" + c.Action
	}
	return out
}

// Reset forgets the recorded calls.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.calls = nil
	p.mu.Unlock()
}

func (p *Proxy) record(c Call) {
	c.Duration = time.Since(c.Time)
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
	if p.logf != nil {
		p.logf("awstest proxy: %s", c)
	}
}

// WaitIdle blocks until the proxy handles no request, including requests
// whose client gave up but that the proxy still carries out (Fault.Detach).
// Call it before listing what a run left behind, so that an abandoned
// request cannot land after the listing.
func (p *Proxy) WaitIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.inflight > 0 {
		p.idle.Wait()
	}
}

// serveHTTP records one request and answers it: forwarded to the target
// with the emulations that apply to it, or delayed or replaced as the
// installed fault says.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.begin()
	defer p.end()
	call, err := parseCall(r)
	call.Seq = int(p.seq.Add(1))
	call.Time = time.Now()
	if err != nil {
		call.Status, call.Err = http.StatusBadRequest, err.Error()
		p.record(call)
		http.Error(w, "awstest proxy: "+err.Error(), http.StatusBadRequest)
		return
	}
	pc := &pendingCall{call: call}
	release, answered := p.emulate(w, r, pc)
	if answered {
		return
	}
	defer release()
	var fault *Fault
	if fn := p.fault.Load(); fn != nil {
		fault = (*fn)(r, pc.call)
	}
	if fault == nil {
		p.forward(w, r, pc.state(false))
		return
	}
	p.serveFault(w, r, pc, fault)
}

// begin counts a request in flight, so that WaitIdle waits for it.
func (p *Proxy) begin() {
	p.mu.Lock()
	p.inflight++
	p.mu.Unlock()
}

// end counts a request out and wakes WaitIdle when none is left.
func (p *Proxy) end() {
	p.mu.Lock()
	if p.inflight--; p.inflight == 0 {
		p.idle.Broadcast()
	}
	p.mu.Unlock()
}

// pendingCall is a parsed call whose emulations are set up, while the
// proxy decides how to answer it.
type pendingCall struct {
	call Call
	copy *copyCall  // CopyImage or RegisterImage emulation, when on
	em   *emulation // other emulations (emulate.go)
}

// state is what a forwarded request of the call carries to the reverse
// proxy's hooks; discard marks a forward whose answer the client never
// sees.
func (pc *pendingCall) state(discard bool) *callState {
	return &callState{call: pc.call, discard: discard, copy: pc.copy, em: pc.em}
}

// emulate sets up the emulations that apply to pc's call (see [Proxy]).
// answered reports that the call needs nothing more: a repeated CopyImage
// ClientToken was answered and recorded already. Otherwise release must be
// called once the call is finished, to let the next call with the same
// token through.
func (p *Proxy) emulate(w http.ResponseWriter, r *http.Request, pc *pendingCall) (release func(), answered bool) {
	unlockCopy := func() {}
	switch {
	case !p.rawCopyImage && pc.call.Service == "ec2" && pc.call.Action == "CopyImage":
		var done bool
		if pc.copy, unlockCopy, done = p.startCopyImage(w, &pc.call); done {
			return nil, true
		}
	case !p.rawRegisterImage && pc.call.Service == "ec2" && pc.call.Action == "RegisterImage":
		pc.copy = &copyCall{tags: tagSpecs(pc.call.Params)}
	}
	p.accounts.see(pc.call.AccessKeyID, r.Header.Get("X-Moto-Account-Id"))
	pc.em = p.emulationFor(r, &pc.call)
	return func() {
		if pc.em != nil && pc.em.unlock != nil {
			pc.em.unlock()
		}
		unlockCopy()
	}, false
}

// serveFault answers pc's call as fault says: after the fault's delay it
// forwards the call, or fails it with a reset connection or an error
// answer, forwarding it first with Fault.Forward so that the target acts
// on it all the same.
func (p *Proxy) serveFault(w http.ResponseWriter, r *http.Request, pc *pendingCall, fault *Fault) {
	fc := *fault
	pc.call.Fault = &fc
	if fault.Delay > 0 && !p.delay(r, pc, fault) {
		return
	}
	if !fault.fails() {
		p.forward(w, r, pc.state(false))
		return
	}
	if fault.Forward {
		st := pc.state(true)
		ctx, done := p.outboundContext(r, st)
		p.rp.ServeHTTP(discardWriter{h: http.Header{}}, r.WithContext(ctx))
		done()
		pc.call.Err = fmt.Sprintf("target answered %d; response replaced by fault", st.status)
		pc.call.Emulated = st.call.Emulated
	}
	if fault.Reset {
		pc.call.Status = 0
		p.record(pc.call)
		resetConn(w)
		return
	}
	p.writeFault(w, r, &pc.call, fault)
}

// delay waits out the fault's delay and reports whether the call is still
// to be answered. A client that gives up meanwhile ends the call, which is
// recorded as such; with Fault.Detach the call is then carried out all the
// same once the delay is over, as a request already on its way would be,
// and the target's answer is discarded.
func (p *Proxy) delay(r *http.Request, pc *pendingCall, fault *Fault) bool {
	t := time.NewTimer(fault.Delay)
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	}
	gaveUp := r.Context().Err()
	if !fault.Detach {
		t.Stop()
		pc.call.Err = "client gave up during injected delay: " + gaveUp.Error()
		p.record(pc.call)
		return false
	}
	<-t.C
	st := pc.state(true)
	p.rp.ServeHTTP(discardWriter{h: http.Header{}}, r.WithContext(context.WithValue(context.WithoutCancel(r.Context()), ctxKey{}, st)))
	pc.call.Err = fmt.Sprintf("client gave up during injected delay (%v); forwarded afterwards, target answered %d", gaveUp, st.status)
	pc.call.Emulated = st.call.Emulated
	p.record(pc.call)
	return false
}

// writeFault records call and sends the failure fault describes: the
// fault's own body, or an AWS error document in the service's protocol.
func (p *Proxy) writeFault(w http.ResponseWriter, r *http.Request, call *Call, fault *Fault) {
	status := fault.status()
	requestID := fmt.Sprintf("awstest-%08d", call.Seq)
	ctype, body := faultBody(r, call, fault, status, requestID)
	p.record(*call)
	for k, v := range fault.Header {
		w.Header()[k] = append([]string(nil), v...)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Amzn-Requestid", requestID)
	if call.Service == "s3" {
		w.Header().Set("X-Amz-Request-Id", requestID)
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// faultBody returns the body a failing fault answers with and its content
// type, and sets call's status and error code to match, so that the
// record shows what the client got.
func faultBody(r *http.Request, call *Call, fault *Fault, status int, requestID string) (ctype string, body []byte) {
	if fault.Body != nil {
		call.Status = status
		switch {
		case fault.ContentType != "":
			return fault.ContentType, fault.Body
		case r.Header.Get("X-Amz-Target") != "":
			return "application/x-amz-json-1.1", fault.Body
		}
		return "text/xml;charset=UTF-8", fault.Body
	}
	code := cmp.Or(fault.Code, defaultErrorCode(status))
	msg := cmp.Or(fault.Message, "fault injected by awstest proxy: "+fault.String())
	ctype, body = errorBody(call.Service, code, msg, requestID)
	call.Status, call.ErrorCode = status, code
	return ctype, body
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, st *callState) {
	ctx, done := p.outboundContext(r, st)
	defer done()
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// outboundContext is the context of the request to the target. An emulated
// CopyImage, once forwarded, is carried out even when its client gives up,
// as a request that has reached EC2 is: its image is then known under its
// token, and a replay is answered with it. (The detached context still has
// a Done channel: without one, httputil.ReverseProxy cancels the outbound
// request itself when the client goes away.)
func (p *Proxy) outboundContext(r *http.Request, st *callState) (context.Context, context.CancelFunc) {
	ctx, done := r.Context(), context.CancelFunc(func() {})
	if st.copy != nil || (st.em != nil && st.em.detach) {
		ctx, done = context.WithCancel(context.WithoutCancel(ctx))
	}
	return context.WithValue(ctx, ctxKey{}, st), done
}

var errorCodeRE = regexp.MustCompile(`<Code>([^<]*)</Code>`)

func (p *Proxy) modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(ctxKey{}).(*callState)
	if st == nil {
		return nil
	}
	did := st.emulated
	if st.em != nil && st.em.after != nil {
		d, err := st.em.after(resp)
		if err != nil {
			return fmt.Errorf("awstest proxy: %s emulation: %w", st.call.Action, err)
		}
		did = joinDid(did, d)
	}
	if st.copy != nil {
		d, err := p.finishCopyImage(resp, st.copy)
		if err != nil {
			return fmt.Errorf("awstest proxy: %s emulation: %w", st.call.Action, err)
		}
		did = joinDid(did, d)
	}
	if p.model != nil {
		d, err := p.model.observe(p, resp, &st.call, !st.discard)
		if err != nil {
			return fmt.Errorf("awstest proxy: %s time model: %w", st.call.Action, err)
		}
		did = joinDid(did, d)
	}
	st.call.Emulated = did
	if st.discard {
		st.status = resp.StatusCode
		return nil
	}
	st.call.Status = resp.StatusCode
	if resp.StatusCode >= 400 && resp.Body != nil && resp.Body != http.NoBody {
		// Peek at the error document for its code, then restore the body.
		head, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if m := errorCodeRE.FindSubmatch(head); m != nil {
			st.call.ErrorCode = string(m[1])
		}
		rest := resp.Body
		if err != nil {
			rest = io.NopCloser(errReader{err})
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), rest), resp.Body}
	}
	p.record(st.call)
	return nil
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st, _ := r.Context().Value(ctxKey{}).(*callState)
	if st != nil && st.discard {
		st.status = http.StatusBadGateway
		return
	}
	if st != nil {
		st.call.Status = http.StatusBadGateway
		st.call.Err = err.Error()
		p.record(st.call)
	}
	w.WriteHeader(http.StatusBadGateway)
}

func defaultErrorCode(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusInternalServerError:
		return "InternalError"
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusNotFound:
		return "NotFound"
	}
	return "InternalError"
}

// resetConn closes the client connection abruptly (RST when possible).
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}
