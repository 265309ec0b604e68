//go:build unix

package ssmtunnel_test

import (
	"context"
	"log"
	"net"
	"os"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/ssmtunnel"
)

// Reach port 22 of an instance in a private subnet through Session
// Manager, and end the session whatever happens.
func Example() {
	ctx := context.Background()
	sess, err := awscfg.New(ctx, awscfg.Config{Region: "eu-west-1"})
	if err != nil {
		log.Fatal(err)
	}
	// Fail early, before anything is started, when the plugin is missing.
	plugin, err := ssmtunnel.FindPlugin()
	if err != nil {
		log.Fatal(err)
	}
	tun, err := ssmtunnel.Start(ctx, sess.SSM(""), &ssmtunnel.StartInput{
		InstanceID: "i-0123456789abcdef0",
		Port:       22,
		Profile:    sess.Profile(),
		PluginPath: plugin,
		Output:     os.Stderr,
	}, func(o *ssmtunnel.Options) { o.Logf = log.Printf })
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := tun.Close(closeCtx); err != nil {
			log.Print(err)
		}
	}()

	conn, err := net.Dial("tcp", tun.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	// conn now reaches the instance's SSH server.
}
