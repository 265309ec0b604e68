//go:build unix

package awstest

import (
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// FaultFunc decides, for each request, whether to inject a fault. It
// returns nil to let the request through untouched. call is the parsed
// request (Status is not set yet). A FaultFunc may be called concurrently
// and must not read r.Body.
type FaultFunc func(r *http.Request, call Call) *Fault

// Fault describes what the proxy does instead of (or in addition to)
// forwarding a request. The steps are applied in this order:
//
//  1. Delay: wait before anything else (cut short if the client gives up,
//     unless Detach).
//  2. Forward: send the request to the target and discard its response,
//     so that the operation takes effect but the client sees the fault
//     (a lost response).
//  3. Reset: close the client connection without an answer (TCP RST).
//  4. Status/Code: answer with an AWS-shaped error document for the
//     call's service: EC2 <Response><Errors>..., S3 <Error>..., or the
//     <ErrorResponse> of other query-protocol services such as STS; or,
//     with Body set, answer with Body instead (a stand-in for an API the
//     target lacks).
//
// A Fault with only Delay set adds latency and then forwards normally.
type Fault struct {
	// Name labels the fault in records; empty means a name derived from the
	// other fields.
	Name string
	// Delay is added latency.
	Delay time.Duration
	// Detach forwards the request after Delay even when the client gave up
	// during it, with the answer discarded: a request the client abandoned
	// that AWS still carries out, late.
	Detach bool
	// Forward sends the request to the target before failing it.
	Forward bool
	// Reset closes the connection without a response.
	Reset bool
	// Status is the HTTP status of the error response (default 500 when
	// Code is set).
	Status int
	// Code and Message fill the error document (Message defaults to a
	// generic text naming the injected fault).
	Code, Message string
	// Header holds extra response headers (e.g. Retry-After).
	Header http.Header
	// Body, when not nil, is the whole response body, sent with Status
	// (default 200) and ContentType instead of an error document: an answer
	// of one's own for an API the target does not implement, such as a
	// GetPasswordData result encrypted for a key pair.
	Body []byte
	// ContentType is the Content-Type of Body; empty means that of the
	// service's protocol: application/x-amz-json-1.1 for JSON-protocol
	// services (requests with X-Amz-Target), text/xml otherwise.
	ContentType string
}

// String returns Name, or a description of the fault.
func (f *Fault) String() string {
	if f == nil {
		return "<nil>"
	}
	if f.Name != "" {
		return f.Name
	}
	var parts []string
	if f.Delay > 0 {
		parts = append(parts, "delay "+f.Delay.String())
	}
	if f.Detach {
		parts = append(parts, "detached")
	}
	if f.Forward {
		parts = append(parts, "after forward")
	}
	if f.Reset {
		parts = append(parts, "reset")
	}
	if f.Body != nil {
		parts = append(parts, fmt.Sprintf("answer of %d bytes, %d", len(f.Body), f.status()))
	} else if f.Code != "" || f.Status != 0 {
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s %d", f.Code, f.status())))
	}
	if f.Body != nil {
		parts = append(parts, fmt.Sprintf("body of %d bytes", len(f.Body)))
	}
	return strings.Join(parts, ", ")
}

// fails reports whether the fault replaces the response.
func (f *Fault) fails() bool { return f.Reset || f.Code != "" || f.Status != 0 || f.Body != nil }

func (f *Fault) status() int {
	switch {
	case f.Status != 0:
		return f.Status
	case f.Body != nil:
		return http.StatusOK
	}
	return http.StatusInternalServerError
}

// ErrorFault answers with an AWS error code and HTTP status, e.g.
// ErrorFault("RequestLimitExceeded", 503) or
// ErrorFault("InvalidAMIID.NotFound", 400).
func ErrorFault(code string, status int) *Fault {
	return &Fault{Code: code, Status: status}
}

// LatencyFault delays the request by d and then forwards it.
func LatencyFault(d time.Duration) *Fault {
	return &Fault{Delay: d}
}

// ResetFault closes the connection without answering.
func ResetFault() *Fault {
	return &Fault{Reset: true}
}

// ThrottleFault returns the throttling error of a service as AWS sends it:
// EC2 RequestLimitExceeded (503), S3 SlowDown (503), others Throttling (400).
func ThrottleFault(service string) *Fault {
	switch service {
	case "ec2":
		return ErrorFault("RequestLimitExceeded", http.StatusServiceUnavailable)
	case "s3":
		return ErrorFault("SlowDown", http.StatusServiceUnavailable)
	default:
		return ErrorFault("Throttling", http.StatusBadRequest)
	}
}

// Matches reports whether call is for service and action; an empty
// service or action matches any.
func Matches(call Call, service, action string) bool {
	return (service == "" || call.Service == service) && (action == "" || call.Action == action)
}

// FailFirst injects f into the first n calls matching service and action
// (empty matches any), then lets matching calls through.
func FailFirst(n int, service, action string, f *Fault) FaultFunc {
	var mu sync.Mutex
	seen := 0
	return func(_ *http.Request, c Call) *Fault {
		if !Matches(c, service, action) {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if seen >= n {
			return nil
		}
		seen++
		return f
	}
}

// FailAlways injects f into every call matching service and action.
func FailAlways(service, action string, f *Fault) FaultFunc {
	return func(_ *http.Request, c Call) *Fault {
		if Matches(c, service, action) {
			return f
		}
		return nil
	}
}

// RandomFaults injects one of faults, chosen at random, into a fraction
// rate (0..1) of calls accepted by match (nil accepts every AWS call, i.e.
// every call with a Service other than "moto-api"). The choice is driven
// by a generator seeded with seed, so the same sequence of calls gets the
// same faults.
func RandomFaults(seed uint64, rate float64, match func(Call) bool, faults ...*Fault) FaultFunc {
	if len(faults) == 0 {
		panic("awstest.RandomFaults: no faults given")
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(_ *http.Request, c Call) *Fault {
		if match != nil && !match(c) || match == nil && (c.Service == "" || c.Service == "moto-api") {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if rng.Float64() >= rate {
			return nil
		}
		return faults[rng.IntN(len(faults))]
	}
}

// FirstFault combines fault functions: the first non-nil fault wins. Every
// function is consulted only until one returns a fault.
func FirstFault(fns ...FaultFunc) FaultFunc {
	return func(r *http.Request, c Call) *Fault {
		for _, fn := range fns {
			if fn == nil {
				continue
			}
			if f := fn(r, c); f != nil {
				return f
			}
		}
		return nil
	}
}

// errorBody renders the AWS error document for service.
func errorBody(service, code, message, requestID string) (contentType string, body []byte) {
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	code, message, requestID = esc(code), esc(message), esc(requestID)
	switch service {
	case "s3":
		return "application/xml", []byte(xml.Header + "<Error><Code>" + code + "</Code><Message>" + message +
			"</Message><RequestId>" + requestID + "</RequestId></Error>")
	case "ec2":
		return "text/xml;charset=UTF-8", []byte(xml.Header + "<Response><Errors><Error><Code>" + code + "</Code><Message>" +
			message + "</Message></Error></Errors><RequestID>" + requestID + "</RequestID></Response>")
	default:
		typ := "Sender"
		if code == "" || strings.HasPrefix(code, "Internal") || strings.HasPrefix(code, "ServiceUnavailable") {
			typ = "Receiver"
		}
		return "text/xml", []byte(xml.Header + "<ErrorResponse><Error><Type>" + typ + "</Type><Code>" + code +
			"</Code><Message>" + message + "</Message></Error><RequestId>" + requestID + "</RequestId></ErrorResponse>")
	}
}
