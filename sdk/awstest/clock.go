//go:build unix

package awstest

import (
	"testing"
	"time"
)

// NextSecond waits until the wall clock reads a later whole second than
// when NextSecond was called. Call it between creating AMIs that must have
// different creation dates: every AMI created before the call has an
// earlier CreationDate than every AMI created after it returns.
//
// EC2, and moto with it, gives an AMI's CreationDate in whole seconds: the
// server's wall clock when it made the AMI, truncated. An AMI whose create
// call had returned before NextSecond was called was stamped no later than
// NextSecond's first clock reading, so its date is at most that second, S.
// A create call sent after NextSecond returns is stamped no earlier than
// NextSecond's last clock reading, which is in second S+1 or later, so its
// date is at least S+1. The argument compares clock readings; it assumes
// nothing about how long a sleep or a request takes, so it holds on a
// loaded machine. It needs the server to read the same clock as the test,
// as a moto on the same machine does.
//
// The wait is until the next second begins: half a second on average. If
// the wall clock does not reach the next second within a few seconds (it
// was set back), NextSecond fails the test.
func NextSecond(t testing.TB) {
	t.Helper()
	start := time.Now()
	next := time.Unix(start.Unix()+1, 0)
	for {
		now := time.Now()
		if now.Unix() > start.Unix() {
			return
		}
		// Monotonic time: a wall clock that moved back does not count.
		if now.Sub(start) > 3*time.Second {
			t.Fatalf("awstest: the wall clock stayed before %s for %s; was it set back?", next.UTC().Format(time.RFC3339), now.Sub(start).Round(time.Millisecond))
		}
		// The wall-clock time left to the next second, at most a second.
		time.Sleep(min(next.Sub(now), time.Second))
	}
}
