//go:build unix

package awstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

func TestFaultErrorResponses(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	const region = "eu-central-1"
	ec2c, s3c := Clients(p.URL, region)
	stsc := STSClient(p.URL, region)

	tests := []struct {
		name     string
		service  string
		action   string
		fault    *Fault
		call     func() error
		wantCode string
		wantHTTP int
	}{
		{
			name: "ec2 throttling", service: "ec2", action: "DescribeKeyPairs", fault: ThrottleFault("ec2"),
			call: func() error {
				_, err := ec2c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
				return err
			},
			wantCode: "RequestLimitExceeded", wantHTTP: 503,
		},
		{
			name: "ec2 eventual consistency", service: "ec2", action: "DescribeImages", fault: ErrorFault("InvalidAMIID.NotFound", 400),
			call: func() error {
				_, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
				return err
			},
			wantCode: "InvalidAMIID.NotFound", wantHTTP: 400,
		},
		{
			name: "s3 slow down", service: "s3", action: "ListBuckets", fault: ThrottleFault("s3"),
			call: func() error {
				_, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{})
				return err
			},
			wantCode: "SlowDown", wantHTTP: 503,
		},
		{
			name: "sts throttling", service: "sts", action: "GetCallerIdentity", fault: ThrottleFault("sts"),
			call: func() error {
				_, err := stsc.GetCallerIdentity(ctx, nil)
				return err
			},
			wantCode: "Throttling", wantHTTP: 400,
		},
		{
			name: "status only", service: "ec2", action: "DescribeVolumes", fault: &Fault{Status: 500},
			call: func() error {
				_, err := ec2c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
				return err
			},
			wantCode: "InternalError", wantHTTP: 500,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.Reset()
			p.SetFault(FailAlways(tc.service, tc.action, tc.fault))
			defer p.SetFault(nil)
			err := tc.call()
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not an API error", err)
			}
			if apiErr.ErrorCode() != tc.wantCode {
				t.Errorf("code = %q, want %q", apiErr.ErrorCode(), tc.wantCode)
			}
			if !strings.Contains(apiErr.ErrorMessage(), "awstest") {
				t.Errorf("message %q does not name the injector", apiErr.ErrorMessage())
			}
			calls := p.Calls()
			if len(calls) != 1 {
				t.Fatalf("calls = %v", calls)
			}
			c := calls[0]
			if c.Fault == nil || c.Status != tc.wantHTTP || c.ErrorCode != tc.wantCode || c.Action != tc.action {
				t.Errorf("recorded %s (fault %v)", c, c.Fault)
			}
		})
	}
}

func TestFaultReset(t *testing.T) {
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Fault: FailAlways("ec2", "", ResetFault())})
	ec2c, _ := Clients(p.URL, "eu-central-1")
	_, err := ec2c.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{})
	if err == nil {
		t.Fatal("call through a resetting proxy succeeded")
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		t.Fatalf("reset surfaced as an API error: %v", err)
	}
	c := p.Calls()
	if len(c) != 1 || c[0].Status != 0 || c[0].Fault == nil || !c[0].Fault.Reset {
		t.Fatalf("calls = %+v", c)
	}
}

func TestFaultLatency(t *testing.T) {
	const d = 300 * time.Millisecond
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Fault: FailAlways("ec2", "DescribeKeyPairs", LatencyFault(d))})
	ec2c, _ := Clients(p.URL, "eu-central-1")
	start := time.Now()
	if _, err := ec2c.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{}); err != nil {
		t.Fatalf("delayed call failed: %v", err)
	}
	if el := time.Since(start); el < d {
		t.Errorf("call took %s, want at least %s", el, d)
	}
	c := p.Calls()[0]
	if c.Status != 200 || c.Fault == nil || c.Fault.Delay != d || c.Duration < d {
		t.Errorf("recorded %+v", c)
	}
}

// TestFaultLatencyAbandoned: a client that gives up during the delay is
// recorded, not forwarded. The client gives up once the proxy holds its
// call, and the test waits for the proxy to record it.
func TestFaultLatencyAbandoned(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recorded := make(chan string, 1)
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{
		Fault: func(*http.Request, Call) *Fault {
			cancel()
			return LatencyFault(time.Hour)
		},
		Logf: func(format string, args ...any) {
			select {
			case recorded <- fmt.Sprintf(format, args...):
			default:
			}
		},
	})
	ec2c, _ := Clients(p.URL, "eu-central-1")
	if _, err := ec2c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("call abandoned during the delay: err = %v, want context.Canceled", err)
	}
	select {
	case <-recorded:
	case <-time.After(10 * time.Second): // reached only by a failing run
		t.Fatal("the abandoned call was never recorded")
	}
	if c := p.Calls(); len(c) != 1 || !strings.Contains(c[0].Err, "client gave up") || c[0].Status != 0 {
		t.Errorf("abandoned call recorded as %+v", c)
	}
}

// TestFaultAfterForward: the operation takes effect but the client sees
// the error, as when a response is lost.
func TestFaultAfterForward(t *testing.T) {
	ctx := context.Background()
	f := &Fault{Forward: true, Code: "InternalError", Status: 500}
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Fault: FailFirst(1, "ec2", "CreateKeyPair", f)})
	const region = "sa-east-1"
	ec2c, _ := Clients(p.URL, region)
	if _, err := ec2c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("lost-response")}); err == nil {
		t.Fatal("CreateKeyPair with a lost response succeeded")
	}
	direct, _ := Clients(sharedMoto.Endpoint, region)
	out, err := direct.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"lost-response"}})
	if err != nil || len(out.KeyPairs) != 1 {
		t.Fatalf("key pair not created behind the fault: %v %v", out, err)
	}
	c := p.CallsFor("ec2", "CreateKeyPair")
	if len(c) != 1 || c[0].Status != 500 || !strings.Contains(c[0].Err, "target answered 200") {
		t.Fatalf("calls = %+v", c)
	}
	if _, err := direct.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("lost-response")}); err != nil {
		t.Fatal(err)
	}
}

func TestFailFirst(t *testing.T) {
	fn := FailFirst(2, "ec2", "CreateImage", ErrorFault("RequestLimitExceeded", 503))
	seq := []Call{
		{Service: "ec2", Action: "DescribeImages"},
		{Service: "ec2", Action: "CreateImage"},
		{Service: "s3", Action: "CreateImage"},
		{Service: "ec2", Action: "CreateImage"},
		{Service: "ec2", Action: "CreateImage"},
		{Service: "ec2", Action: "CreateImage"},
	}
	want := []bool{false, true, false, true, false, false}
	for i, c := range seq {
		if got := fn(nil, c) != nil; got != want[i] {
			t.Errorf("call %d (%s:%s): fault = %v, want %v", i, c.Service, c.Action, got, want[i])
		}
	}
}

func TestFailFirstRetriedBySDK(t *testing.T) {
	// With retries enabled the SDK gets past two throttled attempts.
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Fault: FailFirst(2, "ec2", "DescribeKeyPairs", ThrottleFault("ec2"))})
	ec2c := ec2.NewFromConfig(Config(p.URL, "eu-central-1"), func(o *ec2.Options) {
		o.RetryMaxAttempts = 3
	})
	if _, err := ec2c.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{}); err != nil {
		t.Fatalf("DescribeKeyPairs with 3 attempts: %v", err)
	}
	var statuses []int
	for _, c := range p.CallsFor("ec2", "DescribeKeyPairs") {
		statuses = append(statuses, c.Status)
	}
	if want := []int{503, 503, 200}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
}

func TestRandomFaults(t *testing.T) {
	faults := []*Fault{ThrottleFault("ec2"), ErrorFault("InternalError", 500), ResetFault()}
	run := func(seed uint64) []string {
		fn := RandomFaults(seed, 0.3, nil, faults...)
		out := make([]string, 0, 1000)
		for range 1000 {
			out = append(out, fn(nil, Call{Service: "ec2", Action: "DescribeImages"}).String())
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed gave different fault sequences")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds gave the same fault sequence")
	}
	injected := 0
	kinds := map[string]bool{}
	for _, s := range a {
		if s != "<nil>" {
			injected++
			kinds[s] = true
		}
	}
	if injected < 230 || injected > 370 {
		t.Errorf("injected %d of 1000 at rate 0.3", injected)
	}
	if len(kinds) != len(faults) {
		t.Errorf("used fault kinds %v, want all %d", kinds, len(faults))
	}
	// moto's own API is never faulted by default, and match filters.
	fn := RandomFaults(1, 1, nil, faults...)
	if fn(nil, Call{Service: "moto-api", Action: "/reset"}) != nil {
		t.Error("moto-api call faulted")
	}
	fn = RandomFaults(1, 1, func(c Call) bool { return c.Service == "s3" }, faults...)
	if fn(nil, Call{Service: "ec2"}) != nil || fn(nil, Call{Service: "s3"}) == nil {
		t.Error("match function not honoured")
	}
}

func TestFirstFault(t *testing.T) {
	a := ErrorFault("A", 400)
	b := ErrorFault("B", 400)
	fn := FirstFault(nil, FailAlways("ec2", "X", a), FailAlways("ec2", "", b))
	tests := []struct {
		call Call
		want *Fault
	}{
		{Call{Service: "ec2", Action: "X"}, a},
		{Call{Service: "ec2", Action: "Y"}, b},
		{Call{Service: "s3", Action: "X"}, nil},
	}
	for _, tc := range tests {
		if got := fn(nil, tc.call); got != tc.want {
			t.Errorf("%s:%s -> %v, want %v", tc.call.Service, tc.call.Action, got, tc.want)
		}
	}
}

func TestErrorBodyEscapes(t *testing.T) {
	_, body := errorBody("ec2", "Code<&>", "msg \"quoted\" <b>", "id")
	if strings.Contains(string(body), "<b>") || !strings.Contains(string(body), "Code&lt;&amp;&gt;") {
		t.Errorf("body not escaped: %s", body)
	}
	if _, b := errorBody("ec2", "X", "m", "r"); !strings.Contains(string(b), "<Response><Errors><Error><Code>X</Code>") {
		t.Errorf("ec2 body: %s", b)
	}
	if _, b := errorBody("s3", "X", "m", "r"); !strings.Contains(string(b), "<Error><Code>X</Code>") {
		t.Errorf("s3 body: %s", b)
	}
}

// TestFaultBody stands in for an API with a body of the test's own: the
// client sees a success with that body, and the target is not called.
func TestFaultBody(t *testing.T) {
	body := `<?xml version="1.0" encoding="UTF-8"?>
<GetPasswordDataResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>stand-in</requestId>
  <instanceId>i-0123456789abcdef0</instanceId>
  <timestamp>2024-01-02T03:04:05.000Z</timestamp>
  <passwordData>c3RhbmQtaW4=</passwordData>
</GetPasswordDataResponse>`
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{
		Fault: FailAlways("ec2", "GetPasswordData", &Fault{Name: "password stand-in", Status: http.StatusOK, Body: []byte(body)}),
	})
	ec2c, _ := Clients(p.URL, "eu-central-1")
	out, err := ec2c.GetPasswordData(context.Background(), &ec2.GetPasswordDataInput{InstanceId: aws.String("i-0123456789abcdef0")})
	if err != nil {
		t.Fatalf("GetPasswordData through the stand-in: %v", err)
	}
	if got := aws.ToString(out.PasswordData); got != "c3RhbmQtaW4=" {
		t.Errorf("PasswordData = %q, want the stand-in's", got)
	}
	c := p.Calls()
	if len(c) != 1 || c[0].Status != http.StatusOK || c[0].ErrorCode != "" || c[0].Fault == nil || c[0].Fault.Name != "password stand-in" {
		t.Fatalf("calls = %+v", c)
	}
}

// TestFaultBodyJSON: a fault with a body of its own stands in for an API the
// target lacks, here SSM's StartSession and TerminateSession, which the SDK
// decodes as successful answers.
func TestFaultBodyJSON(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Fault: SessionManagerStandIn()})
	c := ssm.NewFromConfig(Config(p.URL, "eu-west-1"))
	out, err := c.StartSession(ctx, &ssm.StartSessionInput{
		Target:       aws.String("i-0123456789abcdef0"),
		DocumentName: aws.String("AWS-StartPortForwardingSession"),
		Parameters:   map[string][]string{"portNumber": {"22"}, "localPortNumber": {"8022"}},
	})
	if err != nil {
		t.Fatalf("StartSession through the stand-in: %v", err)
	}
	id := aws.ToString(out.SessionId)
	if id == "" || !strings.HasPrefix(aws.ToString(out.StreamUrl), "wss://") || !strings.HasPrefix(aws.ToString(out.TokenValue), SessionManagerStandInToken) {
		t.Errorf("StartSession answered %+v", out)
	}
	again, err := c.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-0123456789abcdef0")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(again.SessionId) == id {
		t.Errorf("two sessions have the same ID %q", id)
	}
	term, err := c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(id)})
	if err != nil {
		t.Fatalf("TerminateSession through the stand-in: %v", err)
	}
	if aws.ToString(term.SessionId) != id {
		t.Errorf("TerminateSession answered session %q, want %q", aws.ToString(term.SessionId), id)
	}

	calls := p.Calls()
	if len(calls) != 3 {
		t.Fatalf("calls = %v", calls)
	}
	start := calls[0]
	if start.Action != "StartSession" || start.Status != http.StatusOK || start.ErrorCode != "" || start.Fault == nil || start.Region != "eu-west-1" {
		t.Errorf("recorded %s", start)
	}
	var req struct{ Parameters map[string][]string }
	if err := json.Unmarshal(start.JSON, &req); err != nil {
		t.Fatalf("recorded body %q: %v", start.JSON, err)
	}
	if got := req.Parameters["localPortNumber"]; !reflect.DeepEqual(got, []string{"8022"}) {
		t.Errorf("recorded localPortNumber %q, want [8022]", got)
	}
	if calls[2].Action != "TerminateSession" || calls[2].Params.Get("SessionId") != id {
		t.Errorf("recorded %s with %v", calls[2], calls[2].Params)
	}
}
