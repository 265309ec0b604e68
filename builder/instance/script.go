package instance

import (
	"fmt"
	"path"
	"strings"
)

// The bundle script runs on the build instance with POSIX sh and tools every
// Linux AMI has (coreutils, tar, gzip, mount, mkfs). It is piped to
// `sh -s`, so it never appears on a command line, and it contains nothing
// secret: only paths and sizes. It writes diagnostics to standard error and,
// on standard output, one header line
//
//	AMI-BUNDLE-SIZE <bytes>
//
// followed by the image compressed with gzip, which the Packer side
// decompresses, bundles and uploads as it arrives.

// sizeHeader starts the first line of the script's standard output.
const sizeHeader = "AMI-BUNDLE-SIZE "

// scriptOptions describe what the bundle script bundles.
type scriptOptions struct {
	// Source is BundleSourceCopy or an absolute path of a block device or
	// image file.
	Source string
	// ScratchDir is where copy mode makes the image.
	ScratchDir string
	// SizeMB is the copy-mode image size; 0 sizes it from the used space.
	SizeMB int
	// Exclude lists absolute paths copy mode leaves out.
	Exclude []string
}

// shellQuote quotes s for POSIX sh as one word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// bundleCommand is the command line that runs the script read from
// standard input, with prefix (for example "sudo -n") in front.
func bundleCommand(prefix string) string {
	prefix = strings.TrimSpace(prefix)
	if prefix == "" {
		return "sh -s"
	}
	return prefix + " sh -s"
}

// bundleScript returns the script for o.
func bundleScript(o scriptOptions) string {
	var b strings.Builder
	b.WriteString(scriptHeader)
	fmt.Fprintf(&b, "max_size=%d\n", maxBundleSizeMB<<20)
	if o.Source == BundleSourceCopy {
		scratch := path.Clean(o.ScratchDir)
		fmt.Fprintf(&b, "scratch=%s\n", shellQuote(scratch))
		fmt.Fprintf(&b, "size_mb=%d\n", o.SizeMB)
		// Paths left out of the copy: the scratch directory and the
		// user's excludes, as tar member names (./path) and as a case
		// pattern list for the mount point loop.
		excl := append([]string{scratch}, o.Exclude...)
		b.WriteString("set -- ")
		for _, p := range excl {
			b.WriteString(shellQuote("--exclude=." + path.Clean(p)))
			b.WriteByte(' ')
		}
		b.WriteString("\nexcluded() {\n\tcase \"$1\" in\n")
		for _, p := range excl {
			q := shellQuote(path.Clean(p))
			fmt.Fprintf(&b, "\t%s|%s/*) return 0 ;;\n", q, q)
		}
		b.WriteString("\tesac\n\treturn 1\n}\n")
		b.WriteString(copyMode)
		b.WriteString("copy_image \"$@\" </dev/null\n")
	} else {
		fmt.Fprintf(&b, "src=%s\n", shellQuote(o.Source))
		b.WriteString(sourceMode)
		b.WriteString("source_image </dev/null\n")
	}
	return b.String()
}

// scriptHeader sets up the shell: fail on errors and unset variables, no
// globbing (paths are literal), private files, and standard output moved to
// descriptor 3 so that only the header and the image go there.
const scriptHeader = `# Bundle script of the ami-instance builder (packer-plugin-ami).
# It reads the image and writes it to standard output; it holds no secret.
set -eu
set -f
umask 077
exec 3>&1 1>&2
export LC_ALL=C

# emit FILE SIZE: the size header, then FILE compressed with gzip.
emit() {
	if [ "$2" -le 0 ] || [ "$2" -gt "$max_size" ]; then
		echo "bundle: $1 is $2 bytes; an AMI bundle holds 1 byte to 10 GiB"
		exit 3
	fi
	printf 'AMI-BUNDLE-SIZE %s\n' "$2" >&3
	gzip -1 -c <"$1" >&3
}
`

// sourceMode bundles a block device or an image file as it is.
const sourceMode = `
source_image() {
	if [ -b "$src" ]; then
		size=$(blockdev --getsize64 "$src")
	elif [ -f "$src" ]; then
		size=$(stat -c %s "$src" 2>/dev/null || wc -c <"$src")
	else
		echo "bundle: bundle_source $src is neither a block device nor a regular file"
		exit 2
	fi
	echo "bundle: streaming $src ($size bytes)"
	emit "$src" "$size"
}
`

// copyMode makes a fresh file system image of the root file system, like
// ec2-bundle-vol: same type, label and UUID; the contents of other mounts,
// the scratch directory and the excludes are left out; mount points are
// recreated empty.
const copyMode = `
copy_image() {
	img="$scratch/ami-bundle.$$.img"
	mnt="$scratch/ami-bundle.$$.mnt"
	st="$scratch/ami-bundle.$$.status"
	mounted=
	cleanup() {
		if [ -n "$mounted" ]; then umount "$mnt" || umount -l "$mnt" || true; fi
		rmdir "$mnt" 2>/dev/null || true
		rm -f "$img" "$st"
	}
	trap cleanup EXIT
	trap 'exit 130' HUP INT TERM
	mkdir -p "$scratch"

	rootdev=
	fstype=
	while read -r dev mp fs rest; do
		if [ "$mp" = / ]; then rootdev=$dev; fstype=$fs; fi
	done </proc/mounts
	case "$fstype" in
	ext2|ext3|ext4|xfs) ;;
	*) echo "bundle: root file system type '$fstype' is not ext2, ext3, ext4 or xfs; making ext4"; fstype=ext4 ;;
	esac
	label=
	uuid=
	if [ -b "$rootdev" ] && command -v blkid >/dev/null 2>&1; then
		label=$(blkid -o value -s LABEL "$rootdev" 2>/dev/null || true)
		uuid=$(blkid -o value -s UUID "$rootdev" 2>/dev/null || true)
	fi

	if [ "$size_mb" -eq 0 ]; then
		used_kb=$(df -Pk / | tail -n 1 | { read -r _ _ used _; echo "$used"; })
		size_mb=$((used_kb * 5 / 4 / 1024 + 256))
		if [ "$size_mb" -gt 10240 ]; then size_mb=10240; fi
	fi
	echo "bundle: making a $size_mb MiB $fstype image of / in $img"
	rm -f "$img"
	dd if=/dev/null of="$img" bs=1048576 seek="$size_mb" 2>/dev/null

	if [ "$fstype" = xfs ]; then
		mkfs_opts="-f -q"
		if [ -n "$label" ]; then mkfs_opts="$mkfs_opts -L $label"; fi
		if [ -n "$uuid" ]; then mkfs_opts="$mkfs_opts -m uuid=$uuid"; fi
		mount_opts=loop,nouuid
	else
		mkfs_opts="-F -q"
		if [ -n "$label" ]; then mkfs_opts="$mkfs_opts -L $label"; fi
		if [ -n "$uuid" ]; then mkfs_opts="$mkfs_opts -U $uuid"; fi
		mount_opts=loop
	fi
	# shellcheck disable=SC2086 # the options are words; label and UUID have no blanks
	if ! mkfs -t "$fstype" $mkfs_opts "$img"; then
		echo "bundle: mkfs with the root file system's label and UUID failed; making it without them"
		mkfs -t "$fstype" $(echo "$mkfs_opts" | cut -d' ' -f1-2) "$img"
	fi
	mkdir -p "$mnt"
	mount -o "$mount_opts" "$img" "$mnt"
	mounted=1

	echo "bundle: copying / into the image"
	xattrs=
	if tar --help 2>/dev/null | grep -q -e '--xattrs'; then xattrs="--xattrs --xattrs-include=*"; fi
	# shellcheck disable=SC2086
	{
		rc=0
		(cd / && tar -c --one-file-system --numeric-owner -S $xattrs --anchored --no-wildcards "$@" -f - .) || rc=$?
		echo "$rc" >"$st"
	} |
		(cd "$mnt" && tar -x -p --numeric-owner $xattrs -f -)
	rc=$(cat "$st")
	case "$rc" in
	0) ;;
	1) echo "bundle: some files changed while they were copied (tar exit 1); the copy is complete" ;;
	*) echo "bundle: copying / failed (tar exit $rc)"; exit 4 ;;
	esac

	# Mount points (and the scratch directory) exist in the image, empty.
	while read -r dev mp fs rest; do
		case "$mp" in /|*\\*) continue ;; esac
		if [ "$mp" = "$mnt" ] || [ ! -d "$mp" ]; then continue; fi
		if [ "$mp" != "$scratch" ] && excluded "$mp"; then continue; fi
		if [ ! -e "$mnt$mp" ]; then
			mkdir -p "$mnt$mp"
			chmod --reference="$mp" "$mnt$mp" 2>/dev/null || true
			chown --reference="$mp" "$mnt$mp" 2>/dev/null || true
		fi
	done </proc/mounts
	if [ ! -e "$mnt$scratch" ]; then mkdir -p "$mnt$scratch"; chmod 755 "$mnt$scratch"; fi

	sync
	umount "$mnt"
	mounted=
	size=$(stat -c %s "$img" 2>/dev/null || wc -c <"$img")
	echo "bundle: streaming the image ($size bytes)"
	emit "$img" "$size"
}
`
