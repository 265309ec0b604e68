# Bundle script of the ami-instance builder (packer-plugin-ami).
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
max_size=10737418240
scratch='/mnt'
run='0a1b2c3d'
size_mb=4096
keep_ssh_host_keys=0
keep_build_ssh_key=0
keep_shell_history=0
keep_temp_files=0
keep_machine_id=0
keep_private_keys=0
build_key='AAAAC3NzaC1lZDI1NTE5AAAAIGolden'
set -- --anchored --no-wildcards '--exclude=./mnt' '--exclude=./var/cache/app' --wildcards '--exclude=./home/*/.cache' '--exclude=./tmp/*' '--exclude=./var/tmp/*'
history_names='.bash_history .zsh_history .sh_history .ash_history .history .python_history .node_repl_history .mysql_history .psql_history .sqlite_history .rediscli_history .lesshst .viminfo'

copy_image() {
	base="$scratch/ami-bundle.$run"
	img="$base.img"
	mnt="$base.mnt"
	src="$base.root"
	st="$base.status"
	log="$base.log"
	node="$base.dev"
	mounted=
	bound=
	cleanup() {
		trap '' HUP INT TERM PIPE
		if [ -n "$mounted" ]; then umount "$mnt" 2>/dev/null || umount -l "$mnt" || true; fi
		if [ -n "$bound" ]; then umount "$src" 2>/dev/null || umount -l "$src" || true; fi
		rmdir "$mnt" "$src" 2>/dev/null || true
		rm -f "$img" "$st" "$log" "$node" "$base.stop" "$base.pid"
	}
	trap cleanup EXIT
	trap 'exit 130' HUP INT TERM
	trap 'exit 141' PIPE
	mkdir -p "$scratch"
	read -r _ _ _ _ pgid _ </proc/$$/stat
	echo "$pgid $$" >"$base.pid"
	if [ -e "$base.stop" ]; then echo "bundle: stopped before it began"; exit 130; fi

	fstype=
	rootdev=
	while read -r dev mp fs rest; do
		if [ "$mp" = / ]; then rootdev=$dev; fstype=$fs; fi
	done </proc/mounts
	case "$fstype" in
	ext2|ext3|ext4|xfs) ;;
	*) echo "bundle: root file system type '$fstype' is not ext2, ext3, ext4 or xfs; making ext4"; fstype=ext4 ;;
	esac
	root_device
	label=
	uuid=
	if [ -n "$rootdev" ] && command -v blkid >/dev/null 2>&1; then
		label=$(blkid -o value -s LABEL "$rootdev" 2>/dev/null || true)
		uuid=$(blkid -o value -s UUID "$rootdev" 2>/dev/null || true)
	fi
	if [ -z "$uuid" ]; then
		echo "bundle: cannot read the label and UUID of the root file system (device ${rootdev:-unknown}); the image gets a new UUID and no label"
	fi

	block=$(stat -f -c %S /)
	case "$block" in 1024|2048|4096) ;; *) block=4096 ;; esac
	inodes_used=$(df -Pi / | tail -n 1 | { read -r _ _ iused _; echo "$iused"; })
	case "$inodes_used" in ''|*[!0-9]*) inodes_used=0 ;; esac
	inodes=$((inodes_used * 3 / 2 + 8192))
	if [ "$size_mb" -eq 0 ]; then
		used_kb=$(df -Pk / | tail -n 1 | { read -r _ _ used _; echo "$used"; })
		size_mb=$((used_kb * 5 / 4 / 1024 + inodes / 4096 + 256))
		if [ "$size_mb" -gt 10240 ]; then size_mb=10240; fi
	fi
	# At least one inode per 16 KiB, as mkfs makes by default.
	if [ "$inodes" -lt $((size_mb * 64)) ]; then inodes=$((size_mb * 64)); fi
	echo "bundle: making a $size_mb MiB $fstype image of / ($block-byte blocks, $inodes inodes) in $img"
	rm -f "$img"
	dd if=/dev/null of="$img" bs=1048576 seek="$size_mb" 2>/dev/null

	if [ "$fstype" = xfs ]; then
		mkfs_opts="-f -q -b size=$block"
		if [ -n "$label" ]; then mkfs_opts="$mkfs_opts -L $label"; fi
		if [ -n "$uuid" ]; then mkfs_opts="$mkfs_opts -m uuid=$uuid"; fi
		mount_opts=loop,nouuid
	else
		mkfs_opts="-F -q -b $block -N $inodes"
		if [ -n "$label" ]; then mkfs_opts="$mkfs_opts -L $label"; fi
		if [ -n "$uuid" ]; then mkfs_opts="$mkfs_opts -U $uuid"; fi
		mount_opts=loop
	fi
	# shellcheck disable=SC2086 # the options are words; label and UUID have no blanks
	if ! mkfs -t "$fstype" $mkfs_opts "$img" >"$log" 2>&1; then
		sed -n '1,5s/^/bundle: mkfs: /p' "$log"
		echo "bundle: mkfs with the root file system's label and UUID failed; making it without them"
		if [ "$fstype" = xfs ]; then mkfs_opts="-f -q -b size=$block"; else mkfs_opts="-F -q -b $block -N $inodes"; fi
		mkfs -t "$fstype" $mkfs_opts "$img"
	fi
	mkdir -p "$mnt" "$src"
	mount -o bind / "$src"
	bound=1
	# Private, so that the image's mount below does not show up in it.
	mount --make-private "$src" 2>/dev/null || true
	mount -o remount,bind,ro "$src" 2>/dev/null || echo "bundle: cannot make the view of / read-only; copying from it as it is"
	mount -o "$mount_opts" "$img" "$mnt"
	mounted=1

	echo "bundle: copying / into the image"
	xattrs=
	if tar --help 2>/dev/null | grep -q -e '--xattrs'; then xattrs="--xattrs --xattrs-include=*"; fi
	: >"$log"
	set +e
	# shellcheck disable=SC2086
	{
		(cd "$src" && tar -c --one-file-system --numeric-owner -S $xattrs "$@" -f - .) 2>>"$log"
		echo "$?" >"$st"
	} | (cd "$mnt" && tar -x -p --numeric-owner $xattrs -f -) 2>>"$log"
	xrc=$?
	set -e
	crc=$(cat "$st" 2>/dev/null || echo 2)
	lines=$(grep -c . "$log" || true)
	if [ "$crc" -gt 1 ] || [ "$xrc" -ne 0 ]; then
		echo "bundle: copying / failed (tar exit $crc reading, $xrc writing); the first of $lines messages:"
		sed -n '1,20s/^/bundle: tar: /p' "$log"
		if df -Pi "$mnt" | tail -n 1 | { read -r _ _ _ ifree _; [ "$ifree" = 0 ]; }; then
			echo "bundle: the image ran out of inodes"
		elif df -Pk "$mnt" | tail -n 1 | { read -r _ _ _ avail _; [ "$avail" -lt 1024 ]; }; then
			echo "bundle: the image ran out of space; set bundle_size_mb larger than $size_mb"
		fi
		exit 4
	fi
	if [ "$crc" -eq 1 ]; then
		echo "bundle: some files changed while they were copied; the copy is complete ($lines messages, the first:)"
		sed -n '1,5{s/^tar: //;s/^/bundle: tar: /;p;}' "$log"
	fi

	# The scratch directory exists in the image, empty, as on the instance.
	if [ ! -e "$mnt$scratch" ]; then
		mkdir -p "$mnt$scratch"
		chmod --reference="$src$scratch" "$mnt$scratch" 2>/dev/null || chmod 755 "$mnt$scratch"
	fi
	umount "$src"
	bound=
	(cd "$mnt" && clean_image)

	sync
	umount "$mnt"
	mounted=
	size=$(stat -c %s "$img" 2>/dev/null || wc -c <"$img")
	echo "bundle: streaming the image ($size bytes)"
	emit "$img" "$size"
}

# root_device sets rootdev to a block device of the root file system.
# /proc/mounts names /dev/root when the kernel mounted the root itself
# (no initramfs), which has no device node: the device is found by the
# root's device number, in /sys or, failing that, with a node made in the
# scratch directory.
root_device() {
	n=$(stat -c %d /)
	maj=$(( ((n >> 8) & 4095) | ((n >> 32) & 4294963200) ))
	min=$(( (n & 255) | ((n >> 12) & 4294967040) ))
	want=$(printf '%x:%x' "$maj" "$min")
	if [ -b "$rootdev" ] && [ "$(stat -L -c '%t:%T' "$rootdev")" = "$want" ]; then return 0; fi
	rootdev=
	if [ "$maj" -eq 0 ]; then return 0; fi
	name=
	if [ -r "/sys/dev/block/$maj:$min/uevent" ]; then
		name=$(sed -n 's/^DEVNAME=//p' "/sys/dev/block/$maj:$min/uevent")
	fi
	if [ -n "$name" ] && [ -b "/dev/$name" ] && [ "$(stat -L -c '%t:%T' "/dev/$name")" = "$want" ]; then
		rootdev=/dev/$name
	elif mknod "$node" b "$maj" "$min" 2>/dev/null; then
		rootdev=$node
	fi
	return 0
}

clean_image() {
	removed() { echo "bundle: left out $1"; }
	if [ "$keep_ssh_host_keys" = 0 ]; then
		n=0
		set +f
		for f in ./etc/ssh/ssh_host_*; do
			if [ -e "$f" ] || [ -L "$f" ]; then rm -f "$f"; n=$((n + 1)); fi
		done
		set -f
		if [ "$n" -gt 0 ]; then removed "the SSH host keys ($n files in /etc/ssh; the instance makes new ones at its first boot)"; fi
	fi
	if [ "$keep_temp_files" = 0 ]; then removed "the contents of /tmp and /var/tmp"; fi
	if [ "$keep_shell_history" = 0 ]; then
		set -- 
		for h in $history_names; do set -- "$@" -o -name "$h"; done
		shift
		find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev \) -prune -o \( -type f -o -type l \) \( "$@" \) -print |
			while IFS= read -r f; do rm -f "$f" && removed "${f#.} (history)"; done
	fi
	if [ "$keep_machine_id" = 0 ]; then
		if [ -f ./etc/machine-id ] && [ -s ./etc/machine-id ]; then : >./etc/machine-id; echo "bundle: emptied /etc/machine-id (the instance makes its own at its first boot)"; fi
		if [ -f ./var/lib/dbus/machine-id ] && [ ! -L ./var/lib/dbus/machine-id ]; then rm -f ./var/lib/dbus/machine-id && removed /var/lib/dbus/machine-id; fi
		if [ -f ./var/lib/systemd/random-seed ]; then rm -f ./var/lib/systemd/random-seed && removed /var/lib/systemd/random-seed; fi
	fi
	if [ "$keep_build_ssh_key" = 0 ] && [ -n "$build_key" ]; then
		find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./usr \) -prune -o -type f \( -name authorized_keys -o -name authorized_keys2 \) -print |
			while IFS= read -r f; do
				grep -q -F -e "$build_key" "$f" || continue
				grep -v -F -e "$build_key" "$f" >"$f.ami-bundle" || true
				if grep -q '[^[:space:]]' "$f.ami-bundle"; then
					cat "$f.ami-bundle" >"$f"
					echo "bundle: removed the build's SSH key from ${f#.}"
				else
					rm -f "$f"
					echo "bundle: left out ${f#.}, which held only the build's SSH key"
				fi
				rm -f "$f.ami-bundle"
			done
	fi
	if [ "$keep_private_keys" = 0 ]; then
		set -- .
		if [ -d ./usr/local ] && [ ! -L ./usr/local ]; then set -- . ./usr/local; fi
		find "$@" -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./usr -o -path ./lib -o -path ./lib64 -o -path ./lib32 -o -path ./bin -o -path ./sbin -o -path ./boot \) -prune -o \
			-type f \( -name '*.pem' -o -name '*.key' -o -name '*.priv' -o -name 'id_rsa' -o -name 'id_dsa' -o -name 'id_ecdsa' -o -name 'id_ed25519' -o -name 'id_ecdsa_sk' -o -name 'id_ed25519_sk' -o -name '*.gpg' -o -name '*.jks' -o -name '*.p12' -o -name '*.pfx' \) -print |
			while IFS= read -r f; do
				private_key "$f" || continue
				rm -f "$f" && removed "${f#.} (a private key)"
			done
	fi
	return 0
}

# private_key tells whether a file named like a key holds a private key:
# PEM and OpenSSH private keys by their armour, OpenPGP secret keys by their
# first packet, Java and PKCS #12 key stores by their name.
private_key() {
	case "$1" in
	*.jks|*.p12|*.pfx) return 0 ;;
	*.gpg)
		grep -q -e 'PGP PRIVATE[ ]KEY BLOCK' "$1" && return 0
		case "$(od -An -tx1 -N1 "$1" | tr -d ' ')" in 94|95|96|97|c5) return 0 ;; esac
		return 1 ;;
	esac
	grep -q -e 'PRIVATE[ ]KEY-----' "$1"
}
copy_image "$@" </dev/null
