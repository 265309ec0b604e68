//go:build unix

package ebs_test

// ami-ebs provisioning a Debian VM under qemu (sdk/vmtest) as an
// unprivileged user who becomes root with sudo, as on most AMIs. The test
// runs with `make test-vm` (AMI_VM_TESTS=1).

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/vmtest"
)

func TestVMProvisionWithSudo(t *testing.T) {
	vmtest.SkipUnlessEnabled(t)
	e := newE2EEnv(t)
	img := vmtest.ImageT(t)
	m := vmtest.BootT(t, img, vmtest.BootOptions{})

	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	if err := os.MkdirAll(filepath.Join(files, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files, "conf.d", "app.conf"), []byte("listen = 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "install.sh")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
set -eu
install -d -m 0755 /etc/app
install -m 0640 /home/admin/files/conf.d/app.conf /etc/app/app.conf
id -un > /etc/app/installed-by
printf '%s\n' "$GREETING" > /etc/app/greeting
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl := `source "ami-ebs" "vm" {
  region        = "` + e2eRegion + `"
  instance_type = "t3.micro"
  source_ami    = "` + wantSourceAMI + `"

  ssh_host             = "` + m.Host + `"
  ssh_port             = ` + strconv.Itoa(m.Port) + `
  ssh_username         = "` + vmtest.User + `"
  ssh_private_key_file = "` + img.KeyPath + `"
  ssh_timeout          = "2m"

  ami_name = "vm-sudo-{{timestamp}}"
}

build {
  sources = ["source.ami-ebs.vm"]

  provisioner "file" {
    source      = "` + files + `"
    destination = "/home/` + vmtest.User + `"
  }

  provisioner "shell" {
    inline = ["id -un > ~/provisioned-as"]
  }

  provisioner "shell" {
    script           = "` + script + `"
    environment_vars = ["GREETING=hello from packer"]
    execute_command  = "chmod +x {{ .Path }}; sudo -n env {{ .Vars }} {{ .Path }}"
  }
}
`
	res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable"}, Template: tpl, Timeout: 10 * time.Minute})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d:\n%s", res.ExitCode, res.Output())
	}
	if ids := packertest.ArtifactIDs(res.Stdout)["ami-ebs.vm"]; len(ids) != 1 {
		t.Fatalf("artifact ids = %q, want one", ids)
	}
	got := vmtest.RunT(t, m, strings.Join([]string{
		"stat -c '%U %a' /home/admin/provisioned-as /home/admin/files/conf.d/app.conf /etc/app/app.conf",
		"cat /home/admin/provisioned-as /etc/app/installed-by /etc/app/greeting /etc/app/app.conf",
	}, "; "))
	want := "admin 644\nadmin 644\nroot 640\nadmin\nroot\nhello from packer\nlisten = 8080\n"
	if got != want {
		t.Errorf("on the instance:\n%s\nwant:\n%s", got, want)
	}
}
