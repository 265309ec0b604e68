//go:build linux

// Package vmtest boots real Linux machines for tests: a minimal Debian
// image built with debootstrap, run under qemu with a copy-on-write
// overlay, reached over SSH on a loopback port. It is usable from any Go
// program or test, not only from this project's.
//
// It provides:
//
//   - [Recipe] and [Build]: the image (Debian bookworm, the cloud kernel,
//     systemd, OpenSSH, sudo) made once and cached under a key that hashes
//     everything that shapes it ([Recipe.Key]). The [Image] is a bare ext4
//     file system image without a partition table, as an instance-store
//     AMI's image is, labelled "root" with a fixed UUID, plus the kernel
//     and initrd to boot it and a generated SSH key authorised for root and
//     for the user "admin" (password-less sudo). The image has no SSH host
//     keys and an empty /etc/machine-id: every machine makes its own at
//     first boot, as EC2 instances do.
//   - [Boot] and [Machine]: a qemu guest booting the image's disk or any
//     other raw disk image of a bare file system (for example an unbundled
//     AMI) on a fresh qcow2 overlay, so the disk is never written; with the
//     root on virtio (with the initrd) or NVMe (also without one, the kernel
//     mounting the root itself), blank extra disks, and the SSH port
//     forwarded from 127.0.0.1. Boot returns once SSH accepts the harness
//     key and records the host key the guest presented; [Machine.Run] runs
//     commands as root or another user; [Machine.Close] kills qemu by its
//     PID and removes the overlay.
//   - Test helpers: [BuildT], [ImageT], [BootT] and [NewT] fail the test
//     (never skip it) when the host cannot build or boot, close machines
//     when the test ends and print the serial console of a failed test's
//     machines. [SkipUnlessEnabled] keeps VM tests out of a plain go test
//     unless AMI_VM_TESTS=1.
//
// # What it needs
//
// Building an image needs root on an amd64 host, the Debian packages
// debootstrap and e2fsprogs, and network access to the Debian mirror
// (deb.debian.org by default; about 75 MB, 1–2 minutes). The packages are
// cached beside the images (debs/, about 70 MiB), so a rebuild downloads
// nothing new. A cached image takes about 250 MiB on the host: a sparse
// 2 GiB disk with about 165 MiB of files, the kernel and the initrd. Images
// of other recipes stay in the cache until removed.
//
// Booting needs qemu-system-x86 and qemu-utils (qemu-system-x86_64 and
// qemu-img), not root. KVM is used when a probe boot shows that KVM guests
// run; otherwise qemu emulates the CPU (TCG), where a machine answers SSH
// 30–100 s after it starts, depending on the load of the host. Set
// AMI_VM_ACCEL=tcg or kvm to skip the probe.
//
// The cache directory is AMI_VM_CACHE, else .cache/vm in the root of the
// Go module that holds the working directory ([CacheDir]).
//
// # The image
//
// Debian's minbase variant with [BasePackages] and the recipe's packages;
// systemd-networkd with DHCP on every Ethernet interface; a oneshot unit
// that makes missing SSH host keys (Ed25519 and ECDSA) before sshd starts;
// /etc/fstab mounting LABEL=root on /; root's password locked. /boot,
// documentation, locales and package lists are removed, and all kernel
// modules but virtio, block devices (loop), the entropy device and XFS.
// The kernel has ext4 and NVMe built in.
package vmtest
