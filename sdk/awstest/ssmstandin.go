//go:build unix

package awstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
)

// SessionManagerStandInToken begins the TokenValue of every session
// [SessionManagerStandIn] starts, so that tests can scan output for it.
const SessionManagerStandInToken = "awstest-ssm-session-token-"

// SessionManagerStandIn answers SSM's StartSession and TerminateSession,
// which moto does not implement, as Session Manager does: StartSession with
// a new session ID, a wss:// stream URL and a token, TerminateSession with
// the session ID it was given. Other calls pass. The calls are recorded as
// usual (with Call.JSON), so that tests assert what was asked.
func SessionManagerStandIn() FaultFunc {
	var n atomic.Int64
	return func(_ *http.Request, c Call) *Fault {
		if c.Service != "ssm" {
			return nil
		}
		var answer any
		switch c.Action {
		case "StartSession":
			i := n.Add(1)
			id := fmt.Sprintf("awstest-%017x", i)
			answer = map[string]string{
				"SessionId":  id,
				"StreamUrl":  fmt.Sprintf("wss://ssmmessages.%s.amazonaws.com/v1/data-channel/%s?role=publish_subscribe", c.Region, id),
				"TokenValue": fmt.Sprintf("%s%d", SessionManagerStandInToken, i),
			}
		case "TerminateSession":
			answer = map[string]string{"SessionId": c.Params.Get("SessionId")}
		default:
			return nil
		}
		body, err := json.Marshal(answer)
		if err != nil {
			panic(err) // a map of strings always encodes
		}
		return &Fault{Name: "Session Manager stand-in", Body: body}
	}
}
