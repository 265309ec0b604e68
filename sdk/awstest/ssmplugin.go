//go:build unix

package awstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// SessionManagerPluginName is the name of AWS's Session Manager plugin
// executable, which the stand-in built by [BuildSessionManagerPlugin]
// takes.
const SessionManagerPluginName = "session-manager-plugin"

const standInPackage = "github.com/amiforge/packer-plugin-ami/sdk/awstest/sessionmanagerplugin"

var (
	standInOnce sync.Once
	standInPath string
	standInErr  error
)

// BuildSessionManagerPlugin puts a stand-in for AWS's session-manager-plugin
// into dir, as dir/session-manager-plugin, and returns its path. Put dir on
// PATH for the code under test. The stand-in (package
// sdk/awstest/sessionmanagerplugin) forwards the session's local port to
// the same port number on 127.0.0.1 that the session asks for on the
// instance, and records every run in dir/runs (see
// [SessionManagerPluginRuns]). It is compiled once per test process with the
// go command, from within this module.
func BuildSessionManagerPlugin(dir string) (string, error) {
	standInOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "awstest-ssm-plugin-")
		if err != nil {
			standInErr = err
			return
		}
		out := filepath.Join(tmp, SessionManagerPluginName)
		cmd := exec.Command("go", "build", "-o", out, standInPackage)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			standInErr = fmt.Errorf("build the stand-in %s: %w\n%s", SessionManagerPluginName, err, log.Bytes())
			return
		}
		standInPath = out
	})
	if standInErr != nil {
		return "", standInErr
	}
	b, err := os.ReadFile(standInPath)
	if err != nil {
		return "", fmt.Errorf("copy the stand-in %s: %w", SessionManagerPluginName, err)
	}
	dst := filepath.Join(dir, SessionManagerPluginName)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		return "", fmt.Errorf("copy the stand-in %s: %w", SessionManagerPluginName, err)
	}
	return dst, nil
}

// SessionManagerPluginRun is one run of the stand-in session-manager-plugin.
type SessionManagerPluginRun struct {
	// PID is the process ID of the run.
	PID int
	// Args are its arguments, without the program name: the StartSession
	// answer (JSON), the region, "StartSession", the profile, the
	// StartSession input (JSON) and the SSM endpoint.
	Args []string
}

// Running reports whether the process of the run still exists (and is not
// a zombie waiting to be reaped).
func (r SessionManagerPluginRun) Running() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.PID))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z") && !strings.HasPrefix(s[i+1:], " X")
}

// SessionID returns the session ID in the run's StartSession answer.
func (r SessionManagerPluginRun) SessionID() string {
	if len(r.Args) == 0 {
		return ""
	}
	var out struct{ SessionId string }
	_ = json.Unmarshal([]byte(r.Args[0]), &out)
	return out.SessionId
}

// SessionManagerPluginRuns lists the runs of the stand-in in dir (see
// [BuildSessionManagerPlugin]), in process ID order.
func SessionManagerPluginRuns(dir string) ([]SessionManagerPluginRun, error) {
	files, err := filepath.Glob(filepath.Join(dir, "runs", "*.json"))
	if err != nil {
		return nil, err
	}
	var runs []SessionManagerPluginRun
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read run record: %w", err)
		}
		var r SessionManagerPluginRun
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("read run record %s: %w", f, err)
		}
		if strconv.Itoa(r.PID)+".json" != filepath.Base(f) {
			return nil, errors.New("run record " + f + " names another process")
		}
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].PID < runs[j].PID })
	return runs, nil
}
