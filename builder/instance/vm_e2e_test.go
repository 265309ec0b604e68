//go:build unix

package instance_test

// ami-instance's default copy mode with the real packer, against moto, on a
// Debian VM under qemu as the build instance; the AMI's image is then
// downloaded, unbundled and booted. These tests run with `make test-vm`
// (AMI_VM_TESTS=1).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/crypto/ssh"

	"github.com/amiforge/packer-plugin-ami/builder/instance"
	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/vmtest"
)

// vmBuildKey is the build's SSH key as an EC2 key pair would put it on an
// instance: the private key in a file for ssh_private_key_file, the
// public key appended to the login's authorized_keys.
type vmBuildKey struct {
	path, authorized, body string
}

func newVMBuildKey(t *testing.T) vmBuildKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "build_key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	return vmBuildKey{path: path, authorized: line + " e2e-build", body: strings.Fields(line)[1]}
}

// vmTemplate is an ami-instance template for the VM m as the instance,
// logging in as the image's unprivileged user with sudo.
func vmTemplate(m *vmtest.Machine, key vmBuildKey, name, prefix, keys string) string {
	return fmt.Sprintf(`source "ami-instance" "vm" {
  region         = %q
  instance_type  = "m3.medium"
  local_emulator = true
  source_ami     = %q

  ssh_host             = %q
  ssh_port             = %d
  ssh_username         = %q
  ssh_private_key_file = %q
  ssh_timeout          = "2m"

  ami_name           = %q
  s3_bucket          = %q
  s3_prefix          = %q
  x509_generated_dir = %q
}

build {
  sources = ["source.ami-instance.vm"]

  provisioner "file" {
    content     = "provisioned by packer\n"
    destination = "/home/%s/motd"
  }

  provisioner "shell" {
    inline = [
      "sudo install -m 0644 /home/%s/motd /etc/motd",
      "echo 'sudo cat /etc/shadow' >> ~/.bash_history",
      "echo scratch | sudo tee /tmp/build-scratch >/dev/null",
    ]
  }
}
`, e2eRegion, sourceAMI, m.Host, m.Port, vmtest.User, key.path, name, e2eBucket, prefix, keys, vmtest.User, vmtest.User)
}

// TestVMInstanceBuild builds an instance-store AMI from a booted Debian VM
// with the default copy mode, boots the image the AMI holds and checks it;
// then interrupts a second build while the image streams and checks that
// nothing is left on the VM or in S3.
func TestVMInstanceBuild(t *testing.T) {
	vmtest.SkipUnlessEnabled(t)
	e := newE2EEnv(t)
	img := vmtest.ImageT(t)
	m := vmtest.BootT(t, img, vmtest.BootOptions{ExtraDisksMiB: []int{3072}})
	key := newVMBuildKey(t)
	// The instance-store volume at /mnt, and the key pair's key, as EC2
	// and cloud-init would have them.
	vmtest.RunT(t, m, strings.Join([]string{
		"set -e",
		"mkfs.ext4 -q /dev/disk/by-id/virtio-extra1",
		"mount /dev/disk/by-id/virtio-extra1 /mnt",
		"echo '" + key.authorized + "' >> /home/" + vmtest.User + "/.ssh/authorized_keys",
	}, "\n"))
	machineID := strings.TrimSpace(vmtest.RunT(t, m, "cat /etc/machine-id"))

	const prefix = "vm/copy"
	keys := filepath.Join(t.TempDir(), "keys")
	res := e.packer.RunT(t, packertest.RunOptions{
		Args:     []string{"build", "-machine-readable"},
		Template: vmTemplate(m, key, "vm-copy", prefix, keys),
		Timeout:  20 * time.Minute,
	})
	if res.ExitCode != 0 {
		t.Fatalf("packer build exited %d:\n%s", res.ExitCode, res.Output())
	}
	t.Logf("packer build took %s; %s", res.Duration.Round(time.Second), bundlePhases(res.Stdout))
	if ids := packertest.ArtifactIDs(res.Stdout)["ami-instance.vm"]; len(ids) != 1 {
		t.Fatalf("artifact ids = %q, want one", ids)
	}
	out := res.Output()
	if stray := instance.ChangedOffRoot(out); len(stray) > 0 {
		t.Errorf("tar saw files change outside the root file system; it walked into a mount: %q", stray)
	}
	if left := strings.TrimSpace(vmtest.RunT(t, m, "losetup -a; grep ami-bundle /proc/mounts; ls -A /mnt | grep -v lost+found; true")); left != "" {
		t.Errorf("left on the instance after the build: %s", left)
	}

	// Download and unbundle the AMI's image, then boot it by its label,
	// as Amazon Linux's kernel command line names its root.
	image := unbundleVM(t, e, prefix, keys)
	r := vmtest.BootT(t, img, vmtest.BootOptions{Disk: image, Root: "LABEL=" + img.Label})
	if got := strings.TrimSpace(vmtest.RunT(t, r, "cat /etc/motd")); got != "provisioned by packer" {
		t.Errorf("/etc/motd of the AMI is %q, want the provisioner's", got)
	}
	state, _, _ := r.Run(context.Background(), "systemctl is-system-running --wait")
	if s := strings.TrimSpace(state); s != "running" && s != "degraded" {
		t.Errorf("the AMI's system is %q; failed units: %s", s, vmtest.RunT(t, r, "systemctl --failed --no-legend; true"))
	}
	if got := strings.TrimSpace(vmtest.RunT(t, r, "findmnt -n -o SOURCE / && blkid -o value -s LABEL \"$(findmnt -n -o SOURCE /)\" && blkid -o value -s UUID \"$(findmnt -n -o SOURCE /)\"")); !strings.HasSuffix(got, img.Label+"\n"+img.UUID) {
		t.Errorf("the AMI's root: %q, want label %s and UUID %s", got, img.Label, img.UUID)
	}
	// Hygiene: the AMI's instance is a new machine.
	if bytes.Equal(r.HostKey().Marshal(), m.HostKey().Marshal()) {
		t.Error("the AMI's instance has the build instance's SSH host key")
	}
	if id := strings.TrimSpace(vmtest.RunT(t, r, "cat /etc/machine-id")); id == "" || id == machineID {
		t.Errorf("the AMI's machine-id %q, build instance's %q: want a new one", id, machineID)
	}
	ak := vmtest.RunT(t, r, "cat /home/"+vmtest.User+"/.ssh/authorized_keys")
	if strings.Contains(ak, key.body) {
		t.Errorf("the build's key can log in to the AMI's instances:\n%s", ak)
	}
	if left := strings.TrimSpace(vmtest.RunT(t, r, "ls -d /tmp/build-scratch /home/"+vmtest.User+"/.bash_history 2>/dev/null; true")); left != "" {
		t.Errorf("in the AMI: %s", left)
	}
	r.Close()

	t.Run("interrupted while streaming", func(t *testing.T) {
		const prefix = "vm/interrupted"
		res := e.packer.RunT(t, packertest.RunOptions{
			Args:        []string{"build", "-machine-readable"},
			Template:    vmTemplate(m, key, "vm-interrupted", prefix, filepath.Join(t.TempDir(), "keys")),
			InterruptOn: "bundle: streaming the image",
			Timeout:     20 * time.Minute,
		})
		if res.ExitCode == 0 {
			t.Fatalf("the interrupted build succeeded")
		}
		if left := strings.TrimSpace(vmtest.RunT(t, m, "losetup -a; grep ami-bundle /proc/mounts; ls -A /mnt | grep -v lost+found; pgrep -a -f '^sh -s$'; true")); left != "" {
			t.Errorf("left on the instance after Ctrl-C: %s", left)
		}
		objs, err := e.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(e2eBucket), Prefix: aws.String(prefix + "/")})
		if err != nil {
			t.Fatal(err)
		}
		if len(objs.Contents) > 0 {
			t.Errorf("left in S3 after Ctrl-C: %d objects, e.g. %s", len(objs.Contents), aws.ToString(objs.Contents[0].Key))
		}
	})
}

// unbundleVM downloads the bundle under prefix and writes its image to a
// file.
func unbundleVM(t *testing.T, e *e2eEnv, prefix, keys string) string {
	t.Helper()
	_, key, cert := loadGeneratedKeys(t, keys)
	path := filepath.Join(t.TempDir(), "image.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unbundleImage(t, e, prefix, key, cert, f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// bundlePhases reads the phases of the bundle step from packer's
// machine-readable output (whole seconds) and says how long each took.
func bundlePhases(stdout string) string {
	marks := []struct{ name, text string }{
		{"start", "Bundling the image"},
		{"mkfs", "bundle: making a"},
		{"copy", "bundle: copying / into the image"},
		{"hygiene", "bundle: left out"},
		{"stream", "bundle: streaming the image"},
		{"uploaded", "Uploaded the bundle"},
	}
	at := map[string]int64{}
	for _, line := range strings.Split(stdout, "\n") {
		ts, _, ok := strings.Cut(line, ",")
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			continue
		}
		for _, m := range marks {
			if _, seen := at[m.name]; !seen && strings.Contains(line, m.text) {
				at[m.name] = sec
			}
		}
	}
	var parts []string
	for i := 1; i < len(marks); i++ {
		a, okA := at[marks[i-1].name]
		b, okB := at[marks[i].name]
		if okA && okB {
			parts = append(parts, fmt.Sprintf("%s→%s %ds", marks[i-1].name, marks[i].name, b-a))
		}
	}
	return "bundle phases: " + strings.Join(parts, ", ")
}
