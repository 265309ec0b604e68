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
src='/dev/xvdb'

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
source_image </dev/null
