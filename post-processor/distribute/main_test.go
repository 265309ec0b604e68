//go:build unix

package distribute

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// motoOnce starts the moto server every moto-backed test of this package
// shares, on first use. Tests keep apart by unique AMI names and compare
// leak listings against their own baselines; they do not run in parallel.
var (
	motoOnce   sync.Once
	sharedMoto *awstest.Moto
	motoErr    error
	motoDir    string
)

// amiFixture replaces moto's preloaded images: one public image the
// builder starts from, which keeps moto's start and listings fast. It has no
// creation_date: moto 5.2.1 parses a fixture's dates in place, so the second
// region it loads the fixture in fails with HTTP 500.
const amiFixture = `[
  {"ami_id": "ami-0d157000000000001", "name": "al2023-ami-2023.6.20241201.0-kernel-6.1-x86_64",
   "description": "base image", "owner_id": "137112412989", "public": true, "state": "available",
   "architecture": "x86_64", "virtualization_type": "hvm", "hypervisor": "xen", "image_type": "machine",
   "root_device_type": "ebs", "root_device_name": "/dev/xvda", "sriov": "simple"}
]`

// motoServer returns the shared moto server, starting it on first use.
func motoServer(t *testing.T) *awstest.Moto {
	t.Helper()
	motoOnce.Do(func() {
		motoDir, motoErr = os.MkdirTemp("", "distribute-test-")
		if motoErr != nil {
			return
		}
		fixture := filepath.Join(motoDir, "amis.json")
		if motoErr = os.WriteFile(fixture, []byte(amiFixture), 0o644); motoErr != nil {
			return
		}
		sharedMoto, motoErr = awstest.StartMoto(context.Background(), awstest.MotoOptions{Env: map[string]string{"MOTO_AMIS_PATH": fixture}})
	})
	if motoErr != nil {
		t.Fatalf("start moto: %v", motoErr)
	}
	return sharedMoto
}

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		// packersdk.BasicUi copies every message to the standard logger.
		log.SetOutput(io.Discard)
	}
	code := m.Run()
	if sharedMoto != nil {
		if err := sharedMoto.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "distribute tests: stop moto:", err)
			code = 1
		}
	}
	if motoDir != "" {
		os.RemoveAll(motoDir)
	}
	os.Exit(code)
}
