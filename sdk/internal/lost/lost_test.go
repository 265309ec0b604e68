package lost

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		live := context.Background()
		if got, cancel := Context(live); got != live {
			t.Error("Context of a live context is another context")
		} else {
			cancel()
		}

		done, cancelDone := context.WithCancel(context.Background())
		cancelDone()
		rctx, cancel := Context(done)
		defer cancel()
		if rctx.Err() != nil {
			t.Fatalf("Context of a done context is done: %v", rctx.Err())
		}
		start := time.Now()
		<-rctx.Done()
		if got := time.Since(start); got != Timeout {
			t.Errorf("the recovery context ended after %v, want %v", got, Timeout)
		}
	})
}

func TestFind(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name       string
		callerDone bool
		answers    [][]string // one per call; the last repeats
		err        error
		cutShort   bool // ctx ends during the settle delay
		want       []string
		wantCalls  int
		wantWait   time.Duration
		wantErr    error
	}{
		{name: "found at once", answers: [][]string{{"a"}}, want: []string{"a"}, wantCalls: 1},
		{name: "none, caller there: one look", answers: [][]string{nil, {"a"}}, wantCalls: 1},
		{name: "none, caller done: a second look", callerDone: true, answers: [][]string{nil, {"a"}}, want: []string{"a"}, wantCalls: 2, wantWait: SettleDelay},
		{name: "caller done, found at once", callerDone: true, answers: [][]string{{"a", "b"}}, want: []string{"a", "b"}, wantCalls: 1},
		{name: "error: no second look", callerDone: true, err: boom, wantCalls: 1, wantErr: boom},
		{name: "context ends while settling", callerDone: true, answers: [][]string{nil, {"a"}}, cutShort: true, wantCalls: 1, wantWait: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				if tc.cutShort {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, time.Second)
					defer cancel()
				}
				calls := 0
				find := func() ([]string, error) {
					calls++
					if tc.err != nil {
						return nil, tc.err
					}
					return tc.answers[min(calls, len(tc.answers))-1], nil
				}
				start := time.Now()
				got, err := Find(ctx, tc.callerDone, find)
				if !errors.Is(err, tc.wantErr) || !slices.Equal(got, tc.want) {
					t.Errorf("Find = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
				}
				if calls != tc.wantCalls || time.Since(start) != tc.wantWait {
					t.Errorf("%d lookups over %v, want %d over %v", calls, time.Since(start), tc.wantCalls, tc.wantWait)
				}
			})
		})
	}
}

func TestFindOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		thing := "made"
		calls := 0
		got, err := FindOne(context.Background(), true, func() (*string, error) {
			calls++
			if calls == 1 {
				return nil, nil
			}
			return &thing, nil
		})
		if err != nil || got != &thing || calls != 2 {
			t.Errorf("FindOne = %v, %v after %d lookups; want the thing after 2", got, err, calls)
		}

		calls = 0
		got, err = FindOne(context.Background(), false, func() (*string, error) { calls++; return nil, nil })
		if err != nil || got != nil || calls != 1 {
			t.Errorf("FindOne with the caller there = %v, %v after %d lookups; want nil after 1", got, err, calls)
		}
	})
}

func TestRetried(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int // connection failures before the answer
		want     bool
	}{
		{"first attempt answered", 0, false},
		{"answered after a retry", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Retried(callMetadata(t, tc.failures)); got != tc.want {
				t.Errorf("Retried = %v, want %v", got, tc.want)
			}
		})
	}
	if Retried(middleware.Metadata{}) {
		t.Error("Retried without attempt results = true, want false")
	}
}

// callMetadata makes a call through the SDK's retry middleware whose
// first failures attempts fail to connect, and returns the metadata of its
// answer.
func callMetadata(t *testing.T, failures int) middleware.Metadata {
	t.Helper()
	stack := middleware.NewStack("call", smithyhttp.NewStackRequest)
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
	if err := stack.Finalize.Add(retry.NewAttemptMiddleware(retryer, smithyhttp.RequestCloner), middleware.After); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	client := smithyhttp.ClientDoFunc(func(*http.Request) (*http.Response, error) {
		attempts++
		if attempts <= failures {
			return nil, errors.New("connection reset")
		}
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}, nil
	})
	_, md, err := middleware.DecorateHandler(smithyhttp.NewClientHandlerWithOptions(client), stack).Handle(context.Background(), struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// fakeMade is a Made over a fixed set of resources, with a log of what it
// was asked to do.
type fakeMade struct {
	made        []string        // what Find returns
	findErr     error           // what Find fails with
	removeErr   map[string]bool // the IDs Remove fails on
	log         []string
	removedLate []error // the context's error at each removal
}

func (f *fakeMade) Made() Made {
	return Made{
		Find: func(context.Context) ([]string, error) {
			f.log = append(f.log, "find")
			return slices.Clone(f.made), f.findErr
		},
		Remove: func(ctx context.Context, id string) error {
			f.log = append(f.log, "remove "+id)
			f.removedLate = append(f.removedLate, ctx.Err())
			if f.removeErr[id] {
				f.log = append(f.log, "record "+id)
				return fmt.Errorf("%s stays", id)
			}
			return nil
		},
		Record:     func(id string) { f.log = append(f.log, "record "+id) },
		Adopted:    func(id string) { f.log = append(f.log, "adopt "+id) },
		LookFailed: func(err error) error { return fmt.Errorf("look failed: %w", err) },
		RemovedAll: func(callErr error, id string) error { return fmt.Errorf("%w (%s removed)", callErr, id) },
	}
}

func TestRecover(t *testing.T) {
	callErr := errors.New("call failed")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		f       fakeMade
		wantID  string
		wantErr string // "" means none
		wantLog []string
	}{
		{
			name: "made one: used", f: fakeMade{made: []string{"a"}},
			wantID: "a", wantLog: []string{"find", "adopt a"},
		},
		{
			name: "made several: the oldest used, the others removed", f: fakeMade{made: []string{"a", "b", "c"}},
			wantID: "a", wantLog: []string{"find", "adopt a", "remove b", "remove c"},
		},
		{
			name: "a duplicate stays: the used one recorded, error", f: fakeMade{made: []string{"a", "b", "c"}, removeErr: map[string]bool{"b": true}},
			wantErr: "b stays", wantLog: []string{"find", "adopt a", "remove b", "record b", "remove c", "record a"},
		},
		{
			name: "made nothing", f: fakeMade{},
			wantErr: "call failed", wantLog: []string{"find"},
		},
		{
			name: "lookup failed", f: fakeMade{findErr: errors.New("denied")},
			wantErr: "call failed\nlook failed: denied", wantLog: []string{"find"},
		},
		{
			name: "caller gone: all removed", ctx: done, f: fakeMade{made: []string{"a", "b"}},
			wantErr: "call failed (a removed)", wantLog: []string{"find", "remove a", "remove b"},
		},
		{
			name: "caller gone, one stays", ctx: done, f: fakeMade{made: []string{"a", "b"}, removeErr: map[string]bool{"a": true}},
			wantErr: "call failed\na stays", wantLog: []string{"find", "remove a", "record a", "remove b"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := cmp.Or(tc.ctx, context.Background())
			id, err := tc.f.Made().Recover(ctx, callErr)
			if id != tc.wantID || errString(err) != tc.wantErr {
				t.Errorf("Recover = %q, %v; want %q, %q", id, err, tc.wantID, tc.wantErr)
			}
			if tc.wantErr == "call failed" && !errors.Is(err, callErr) {
				t.Errorf("error %v does not wrap the call's", err)
			}
			if !slices.Equal(tc.f.log, tc.wantLog) {
				t.Errorf("log %q, want %q", tc.f.log, tc.wantLog)
			}
			for _, err := range tc.f.removedLate {
				if err != nil {
					t.Errorf("a removal ran in a done context: %v", err)
				}
			}
		})
	}
}

// TestRecoverLooksAgain: when the caller gave up, a lookup that finds
// nothing is repeated once after SettleDelay, and what the second finds is
// removed.
func TestRecoverLooksAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		done, cancel := context.WithCancel(context.Background())
		cancel()
		f := &fakeMade{}
		m := f.Made()
		find := m.Find
		m.Find = func(ctx context.Context) ([]string, error) {
			got, err := find(ctx)
			f.made = []string{"late"}
			return got, err
		}
		start := time.Now()
		_, err := m.Recover(done, errors.New("call failed"))
		if errString(err) != "call failed (late removed)" || time.Since(start) != SettleDelay {
			t.Errorf("Recover = %v after %v, want the late one removed after %v", err, time.Since(start), SettleDelay)
		}
		if want := []string{"find", "find", "remove late"}; !slices.Equal(f.log, want) {
			t.Errorf("log %q, want %q", f.log, want)
		}
	})
}

func TestRemoveDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       fakeMade
		wantErr string
		wantLog []string
	}{
		{name: "only the answer's", f: fakeMade{made: []string{"a"}}, wantLog: []string{"find"}},
		{name: "others removed", f: fakeMade{made: []string{"x", "a", "y"}}, wantLog: []string{"find", "remove x", "remove y"}},
		{
			name: "one stays: the answer's recorded", f: fakeMade{made: []string{"x", "a"}, removeErr: map[string]bool{"x": true}},
			wantErr: "x stays", wantLog: []string{"find", "remove x", "record x", "record a"},
		},
		{name: "lookup failed: the answer's recorded", f: fakeMade{findErr: errors.New("denied")}, wantErr: "denied", wantLog: []string{"find", "record a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Made().RemoveDuplicates(context.Background(), "a")
			if errString(err) != tc.wantErr || !slices.Equal(tc.f.log, tc.wantLog) {
				t.Errorf("RemoveDuplicates = %v, log %q; want %q, log %q", err, tc.f.log, tc.wantErr, tc.wantLog)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimSpace(err.Error())
}
