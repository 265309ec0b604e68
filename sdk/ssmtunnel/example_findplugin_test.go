//go:build unix

package ssmtunnel_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/amiforge/packer-plugin-ami/sdk/ssmtunnel"
)

// Look the Session Manager plugin up before anything is started, and tell
// a missing plugin apart from other failures to say how to install it.
func ExampleFindPlugin() {
	oldPath := os.Getenv("PATH")
	defer os.Setenv("PATH", oldPath)
	dir, err := os.MkdirTemp("", "plugin")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer os.RemoveAll(dir)

	// No plugin on PATH.
	os.Setenv("PATH", dir)
	_, err = ssmtunnel.FindPlugin()
	if missing := (*ssmtunnel.PluginNotFoundError)(nil); errors.As(err, &missing) {
		fmt.Println("missing:", missing.Name)
	} else {
		fmt.Println("error:", err)
	}

	// The plugin installed.
	if err := os.WriteFile(filepath.Join(dir, ssmtunnel.PluginName), []byte("#!/bin/sh\n"), 0o755); err != nil {
		fmt.Println("error:", err)
		return
	}
	path, err := ssmtunnel.FindPlugin()
	fmt.Println("found:", path == filepath.Join(dir, ssmtunnel.PluginName), err)
	// Output:
	// missing: session-manager-plugin
	// found: true <nil>
}
