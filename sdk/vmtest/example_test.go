//go:build linux

package vmtest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/vmtest"
)

// Build (or reuse) the default image, boot it with an extra disk and run a
// command as the unprivileged user through sudo.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cacheDir, err := vmtest.CacheDir()
	if err != nil {
		log.Fatal(err)
	}
	img, err := vmtest.Build(ctx, cacheDir, vmtest.DefaultRecipe(), os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	m, err := vmtest.Boot(ctx, img, vmtest.BootOptions{ExtraDisksMiB: []int{64}, Log: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	out, _, err := m.RunAs(ctx, img.User, "sudo -n lsblk -dno NAME,SIZE /dev/vdb")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(out)
}
