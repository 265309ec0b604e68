//go:build unix

package ssmtunnel_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/amiforge/packer-plugin-ami/sdk/ssmtunnel"
)

// sessions plays Systems Manager: StartSession answers with a session and
// TerminateSession records the sessions it ends. Any narrow client works
// with the SDK.
type sessions struct{ ended []string }

func (s *sessions) StartSession(context.Context, *ssm.StartSessionInput, ...func(*ssm.Options)) (*ssm.StartSessionOutput, error) {
	id := "builder-0123456789abcdef0"
	return &ssm.StartSessionOutput{
		SessionId:  aws.String(id),
		StreamUrl:  aws.String("wss://ssmmessages.eu-west-1.amazonaws.com/v1/data-channel/" + id),
		TokenValue: aws.String("session-token"),
	}, nil
}

func (s *sessions) TerminateSession(_ context.Context, in *ssm.TerminateSessionInput, _ ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error) {
	s.ended = append(s.ended, aws.ToString(in.SessionId))
	return &ssm.TerminateSessionOutput{SessionId: in.SessionId}, nil
}

// standInPlugin plays AWS's session-manager-plugin: it reads the local
// port from its fifth argument (the StartSession input as JSON), announces
// it as the plugin does, and runs until it is stopped. It forwards nothing.
const standInPlugin = `#!/bin/sh
port=$(printf '%s' "$5" | sed 's/.*"localPortNumber":\["\([0-9]*\)"\].*/\1/')
echo "Starting session with SessionId: builder-0123456789abcdef0"
echo "Port $port opened for sessionId builder-0123456789abcdef0."
exec sleep 60
`

// Reach port 22 of an instance through Session Manager, then end the
// session and stop the plugin. Here a fake client plays SSM and a shell
// script plays the plugin, so the example runs offline.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "ssmtunnel")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer os.RemoveAll(dir)
	plugin := filepath.Join(dir, ssmtunnel.PluginName)
	if err := os.WriteFile(plugin, []byte(standInPlugin), 0o755); err != nil {
		fmt.Println("error:", err)
		return
	}

	ctx := context.Background()
	client := &sessions{}
	tun, err := ssmtunnel.Start(ctx, client, &ssmtunnel.StartInput{
		InstanceID: "i-0123456789abcdef0",
		Port:       22,
		// A client other than *ssm.Client needs the region and endpoint
		// that the plugin is handed.
		Region:     "eu-west-1",
		Endpoint:   "https://ssm.eu-west-1.amazonaws.com",
		PluginPath: plugin,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("session", tun.SessionID, "to", tun.InstanceID, "in", tun.Region)
	fmt.Println("local address on 127.0.0.1:", strings.HasPrefix(tun.Addr(), "127.0.0.1:"))

	err = tun.Close(ctx)
	<-tun.Done()
	fmt.Println("closed:", err, "ended:", client.ended)
	// Output:
	// session builder-0123456789abcdef0 to i-0123456789abcdef0 in eu-west-1
	// local address on 127.0.0.1: true
	// closed: <nil> ended: [builder-0123456789abcdef0]
}
