//go:build linux

package vmtest

import "strings"

// harnessKeyInRoot is where Build puts the harness's public key in the new
// root for configureScript, which installs it and removes the file.
const harnessKeyInRoot = "/tmp/vmtest-harness.pub"

// configureScript runs with /bin/sh in a chroot of the freshly bootstrapped
// root. It makes the root bootable by the harness: DHCP on every Ethernet
// interface, SSH host keys made at boot (none in the image), root mounted by
// label, a machine id made at first boot, the user admin with password-less
// sudo, and the harness key authorised for root and admin.
const configureScript = `set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

echo vmtest >/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvmtest\n::1\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts

# DHCP on every Ethernet interface.
mkdir -p /etc/systemd/network
cat >/etc/systemd/network/80-dhcp.network <<'UNIT'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
UNIT
systemctl enable systemd-networkd.service

# No SSH host keys in the image: every boot of an image without them makes
# new ones before sshd starts, as cloud-init does on EC2. Only Ed25519 and
# ECDSA keys: an RSA key costs ~17 s of emulated CPU at every first boot.
rm -f /etc/ssh/ssh_host_*
cat >/usr/local/sbin/ssh-host-keys <<'SCRIPT'
#!/bin/sh
# Makes the SSH host keys that are missing.
set -e
for t in ed25519 ecdsa; do
	f=/etc/ssh/ssh_host_${t}_key
	[ -e "$f" ] || ssh-keygen -q -t "$t" -N '' -C "root@$(hostname)" -f "$f"
done
SCRIPT
chmod 0755 /usr/local/sbin/ssh-host-keys
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n' >/etc/ssh/sshd_config.d/10-host-keys.conf
cat >/etc/systemd/system/ssh-host-keys.service <<'UNIT'
[Unit]
Description=Make missing SSH host keys
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ssh-host-keys
RemainAfterExit=yes

[Install]
RequiredBy=ssh.service
UNIT
systemctl enable ssh-host-keys.service

# The root file system by label; a new machine id at every first boot.
echo 'LABEL=root / ext4 defaults 0 1' >/etc/fstab
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id

# Users: root only by key, admin with password-less sudo.
passwd -l root >/dev/null
useradd --create-home --shell /bin/bash admin
echo 'admin ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/90-admin
chmod 0440 /etc/sudoers.d/90-admin
for home in /root /home/admin; do
	owner=$(stat -c %U "$home")
	install -d -m 0700 -o "$owner" -g "$owner" "$home/.ssh"
	install -m 0600 -o "$owner" -g "$owner" /tmp/vmtest-harness.pub "$home/.ssh/authorized_keys"
done
rm -f /tmp/vmtest-harness.pub
`

// keepModules are the kernel modules (paths under /lib/modules/VERSION, as
// shell case patterns, in which * matches "/" too) an image keeps: virtio
// block, network and entropy devices, loop, and XFS with what it needs
// (checksums and the accelerated crypto it may use).
// Every other module is removed. Patterns name files, not only directories.
var keepModules = []string{
	"kernel/drivers/block/*",
	"kernel/drivers/virtio/*",
	"kernel/drivers/net/virtio_net.ko*",
	"kernel/drivers/net/net_failover.ko*",
	"kernel/net/core/failover.ko*",
	"kernel/drivers/char/hw_random/*",
	"kernel/fs/xfs/*",
	"kernel/lib/*",
	"kernel/crypto/*",
	"kernel/arch/x86/crypto/*",
}

// pruneModulesFunc defines prune_modules DIR: it removes every file under
// DIR/kernel that no keepModules pattern matches, then empty directories.
func pruneModulesFunc() string {
	return `prune_modules() (
	cd "$1"
	find kernel -type f | while IFS= read -r f; do
		case "$f" in
		` + strings.Join(keepModules, "|") + `) ;;
		*) rm -f "$f" ;;
		esac
	done
	find kernel -depth -type d -empty -delete
)
`
}

// pruneScript runs with /bin/sh in a chroot of the configured root after the
// kernel and initrd were copied out of /boot. It points DNS at qemu's user
// network, removes /boot, documentation, locales, package caches and lists
// and all kernel modules but keepModules, and rebuilds the module index.
func pruneScript() string {
	return `set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
` + pruneModulesFunc() + `
# qemu's user network answers DNS on 10.0.2.3.
rm -f /etc/resolv.conf
echo 'nameserver 10.0.2.3' >/etc/resolv.conf

rm -rf /boot/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/* /usr/share/info/* \
	/var/cache/apt/* /var/lib/apt/lists/*
for dir in /lib/modules/*/; do
	prune_modules "$dir"
	depmod -a "$(basename "$dir")"
done
`
}
