//go:build unix

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/crypto/ssh"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
	"github.com/amiforge/packer-plugin-ami/sdk/vmtest"
)

// vmStage is the Debian VM of the vm example, standing in for the build
// instance.
type vmStage struct {
	img     *vmtest.Image
	m       *vmtest.Machine
	keyPath string // the build's SSH key (ssh_private_key_file)
	keyBody string // its public key, base64
	id      string // the VM's machine-id
}

// startVM builds (or takes from the cache) the Debian image, boots it with
// a second disk mounted at /mnt as an instance-store volume would be, and
// authorises a new build key for the image's unprivileged user, as an EC2
// key pair would be.
func startVM(ctx context.Context, work string, w io.Writer) (*vmStage, error) {
	step(w, "building or reusing the Debian VM image (sdk/vmtest; the first time takes about a minute)")
	cache, err := vmtest.CacheDir()
	if err != nil {
		return nil, err
	}
	v := &vmStage{}
	if v.img, err = vmtest.Build(ctx, cache, vmtest.DefaultRecipe(), nil); err != nil {
		return nil, err
	}
	step(w, "booting the VM under qemu as the build instance")
	if v.m, err = vmtest.Boot(ctx, v.img, vmtest.BootOptions{ExtraDisksMiB: []int{3072}, WorkDir: work}); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "    %s@%s, SSH after %s\n", v.img.User, v.m.Addr(), v.m.BootTime.Round(time.Second))
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		v.close()
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		v.close()
		return nil, err
	}
	v.keyPath = filepath.Join(work, "build_key")
	if err := os.WriteFile(v.keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		v.close()
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		v.close()
		return nil, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	v.keyBody = strings.Fields(line)[1]
	setup := strings.Join([]string{
		"set -e",
		"mkfs.ext4 -q /dev/disk/by-id/virtio-extra1",
		"mount /dev/disk/by-id/virtio-extra1 /mnt",
		"echo '" + line + " demo-build' >> /home/" + v.img.User + "/.ssh/authorized_keys",
		"cat /etc/machine-id",
	}, "\n")
	out, _, err := v.m.Run(ctx, setup)
	if err != nil {
		v.close()
		return nil, fmt.Errorf("prepare the VM: %w", err)
	}
	v.id = strings.TrimSpace(out)
	return v, nil
}

func (v *vmStage) close() {
	if v.m != nil {
		v.m.Close()
	}
}

// checkVMImage downloads and unbundles the bundle of the vm example,
// boots the image it holds and prints what it checks.
func checkVMImage(ctx context.Context, v *vmStage, s3c *s3.Client, bucket, out string, w io.Writer) error {
	step(w, "downloading and unbundling the AMI's image")
	path := filepath.Join(out, "image.img")
	if err := unbundleVMImage(ctx, s3c, bucket, out, path); err != nil {
		return err
	}
	step(w, "booting the AMI's image by its label (root=LABEL="+v.img.Label+")")
	r, err := vmtest.Boot(ctx, v.img, vmtest.BootOptions{Disk: path, Root: "LABEL=" + v.img.Label, WorkDir: out})
	if err != nil {
		return fmt.Errorf("boot the AMI's image: %w", err)
	}
	defer r.Close()
	fmt.Fprintf(w, "    SSH after %s\n", r.BootTime.Round(time.Second))
	if failed := v.checkBooted(ctx, r, w); failed > 0 {
		return fmt.Errorf("%d checks of the AMI's image failed", failed)
	}
	return nil
}

// unbundleVMImage downloads the vm example's bundle into out with the
// build's bundle keys (in out/keys) and unbundles its image to path.
func unbundleVMImage(ctx context.Context, s3c *s3.Client, bucket, out, path string) error {
	keys := filepath.Join(out, "keys")
	keyPEM, err := os.ReadFile(filepath.Join(keys, "x509-key.pem"))
	if err != nil {
		return err
	}
	key, err := bundle.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return err
	}
	cert, err := bundle.LoadCertificate(filepath.Join(keys, "x509-cert.pem"))
	if err != nil {
		return err
	}
	dl := filepath.Join(out, "bundle")
	if err := os.MkdirAll(dl, 0o700); err != nil {
		return err
	}
	down, err := bundlestore.Download(ctx, s3c, &bundlestore.DownloadInput{Bucket: bucket, Prefix: "demo-vm", Name: "image", Dir: dl})
	if err != nil {
		return fmt.Errorf("download the bundle: %w", err)
	}
	manifest, err := os.ReadFile(down.ManifestPath)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := bundle.Unbundle(ctx, &bundle.UnbundleInput{Manifest: manifest, Source: bundle.Dir(dl), UserKey: key, UserCert: cert}, f); err != nil {
		f.Close()
		return fmt.Errorf("unbundle: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.RemoveAll(dl)
}

// checkBooted checks, on r booted from the AMI's image, that the image is
// the provisioned build instance made fit to share: the provisioner's
// change and the root file system's identity are kept, while the host key,
// machine-id, build key and shell history are not. It prints every check
// on w and returns how many failed.
func (v *vmStage) checkBooted(ctx context.Context, r *vmtest.Machine, w io.Writer) (failed int) {
	run := func(cmd string) string {
		o, _, _ := r.Run(ctx, cmd)
		return strings.TrimSpace(o)
	}
	check := func(ok bool, what, detail string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "    %s %s: %s\n", mark, what, detail)
	}
	motd := run("cat /etc/motd")
	check(motd == "provisioned by packer", "provisioner's change", "/etc/motd = "+motd)
	state := run("systemctl is-system-running --wait")
	check(state == "running" || state == "degraded", "system state", state)
	root := run(`d=$(findmnt -n -o SOURCE /); echo "$d label=$(blkid -o value -s LABEL "$d") uuid=$(blkid -o value -s UUID "$d")"`)
	check(strings.HasSuffix(root, "label="+v.img.Label+" uuid="+v.img.UUID), "root label and UUID as on the build instance", root)
	check(string(r.HostKey().Marshal()) != string(v.m.HostKey().Marshal()), "SSH host key", "made anew at first boot: "+ssh.FingerprintSHA256(r.HostKey()))
	id := run("cat /etc/machine-id")
	check(id != "" && id != v.id, "machine-id", "new: "+id)
	ak := run("cat /home/" + v.img.User + "/.ssh/authorized_keys")
	check(!strings.Contains(ak, v.keyBody), "build's SSH key", "not in /home/"+v.img.User+"/.ssh/authorized_keys")
	hist := run("ls /home/" + v.img.User + "/.bash_history 2>/dev/null")
	check(hist == "", "shell history", "no /home/"+v.img.User+"/.bash_history")
	return failed
}
