//go:build unix

// Command sessionmanagerplugin stands in for AWS's session-manager-plugin
// in tests, where there is no Session Manager to carry a session. It takes
// the arguments the AWS CLI (and Packer) pass to the real plugin for a
// port-forwarding session:
//
//	session-manager-plugin <StartSession answer as JSON> <region> StartSession <profile> <StartSession input as JSON> <SSM endpoint>
//
// checks them, and forwards connections to 127.0.0.1:localPortNumber to
// 127.0.0.1:portNumber, as if this machine were the instance. Each run is
// recorded in the directory "runs" beside the executable, as <pid>.json
// with the process ID and the arguments, before the port is opened. It
// runs until it receives SIGINT or SIGTERM.
//
// Build it with awstest.BuildSessionManagerPlugin.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

type startOutput struct {
	SessionID  string `json:"SessionId"`
	StreamURL  string `json:"StreamUrl"`
	TokenValue string `json:"TokenValue"`
}

type startInput struct {
	Target       string
	DocumentName string
	Parameters   map[string][]string
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println("1.2.0.0-awstest")
		return
	}
	// run serves until a signal ends the process; it returns only on
	// failure.
	err := run(os.Args)
	fmt.Fprintln(os.Stderr, "stand-in session-manager-plugin:", err)
	os.Exit(2)
}

func run(args []string) error {
	if len(args) != 7 {
		return fmt.Errorf("got %d arguments, want 6: answer, region, operation, profile, input, endpoint", len(args)-1)
	}
	var out startOutput
	if err := json.Unmarshal([]byte(args[1]), &out); err != nil {
		return fmt.Errorf("argument 1, the StartSession answer: %w", err)
	}
	if out.SessionID == "" || out.StreamURL == "" || out.TokenValue == "" {
		return errors.New("argument 1, the StartSession answer: SessionId, StreamUrl and TokenValue are required")
	}
	if args[2] == "" {
		return errors.New("argument 2, the region: empty")
	}
	if args[3] != "StartSession" {
		return fmt.Errorf("argument 3, the operation: %q, want StartSession", args[3])
	}
	var in startInput
	if err := json.Unmarshal([]byte(args[5]), &in); err != nil {
		return fmt.Errorf("argument 5, the StartSession input: %w", err)
	}
	if in.Target == "" || in.DocumentName != "AWS-StartPortForwardingSession" {
		return fmt.Errorf("argument 5, the StartSession input: target %q, document %q; want a target and AWS-StartPortForwardingSession", in.Target, in.DocumentName)
	}
	remote, err := port(in.Parameters, "portNumber")
	if err != nil {
		return err
	}
	local, err := port(in.Parameters, "localPortNumber")
	if err != nil {
		return err
	}
	if args[6] == "" {
		return errors.New("argument 6, the SSM endpoint: empty")
	}
	if err := record(args); err != nil {
		return err
	}

	fmt.Printf("\nStarting session with SessionId: %s\n", out.SessionID)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
	if err != nil {
		return err
	}
	fmt.Printf("Port %d opened for sessionId %s.\nWaiting for connections...\n", local, out.SessionID)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println("Terminate signal received, exiting.")
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fmt.Printf("Connection accepted for session [%s]\n", out.SessionID)
		go forward(c, remote)
	}
}

// port reads a port parameter of the StartSession input.
func port(params map[string][]string, name string) (int, error) {
	v := params[name]
	if len(v) != 1 {
		return 0, fmt.Errorf("argument 5, the StartSession input: parameter %s is %q, want one value", name, v)
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("argument 5, the StartSession input: parameter %s is %q, want a port number", name, v[0])
	}
	return n, nil
}

// record writes runs/<pid>.json beside the executable.
func record(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Join(filepath.Dir(exe), "runs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(struct {
		PID  int
		Args []string
	}{os.Getpid(), args[1:]})
	if err != nil {
		return err
	}
	name := filepath.Join(dir, strconv.Itoa(os.Getpid())+".json")
	if err := os.WriteFile(name+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}

// forward copies between c and 127.0.0.1:remote until either side closes.
func forward(c net.Conn, remote int) {
	defer c.Close()
	r, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(remote)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "connect to port %d: %v\n", remote, err)
		return
	}
	defer r.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(r, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, r); done <- struct{}{} }()
	<-done
}
