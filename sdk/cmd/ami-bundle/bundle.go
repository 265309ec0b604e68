package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

var bundleCommand = &command{
	name:  "bundle",
	short: "bundle an image file (like ec2-bundle-image)",
	summary: `Bundle an image file into encrypted parts and a signed manifest, like
ec2-bundle-image. The parts and NAME.manifest.xml are written to the
destination directory.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) error {
		var f bundleFlags
		stringFlag(fs, &f.image, "i", "image", "", "image `file` (or block device) to bundle (required)")
		stringFlag(fs, &f.cert, "c", "cert", "", "user's PEM certificate `file` (required)")
		stringFlag(fs, &f.key, "k", "privatekey", "", "user's PEM RSA private key `file` (required)")
		stringFlag(fs, &f.user, "u", "user", "", "AWS account `id`, dashes allowed (required)")
		stringFlag(fs, &f.arch, "r", "arch", "", "`architecture`: i386, x86_64 or arm64 (required)")
		stringFlag(fs, &f.ec2cert, "", "ec2cert", "", "EC2's PEM certificate `file`, cert-ec2.pem of the EC2 AMI tools (required)")
		stringFlag(fs, &f.dest, "d", "destination", os.TempDir(), "`directory` to write the bundle to")
		stringFlag(fs, &f.prefix, "p", "prefix", "", "bundle `name` (default: the image file's name)")
		stringFlag(fs, &f.kernel, "", "kernel", "", "kernel `id` (aki-...)")
		stringFlag(fs, &f.ramdisk, "", "ramdisk", "", "ramdisk `id` (ari-...)")
		stringFlag(fs, &f.productCodes, "", "productcodes", "", "comma-separated product `codes`")
		stringFlag(fs, &f.mappings, "B", "block-device-mapping", "", "block device `mappings`, e.g. ami=sda1,root=/dev/sda1")
		boolFlag(fs, &f.batch, "", "batch", "never prompt (ami-bundle never prompts; accepted for compatibility)")
		return f.run
	},
}

type bundleFlags struct {
	image, cert, key, user, arch, ec2cert, dest, prefix string
	kernel, ramdisk, productCodes, mappings             string
	batch                                               bool
}

// run bundles the image into the destination directory and writes the
// manifest beside the parts.
func (f *bundleFlags) run(ctx context.Context, std *stdio, args []string) error {
	in, err := f.input(args)
	if err != nil {
		return err
	}
	img, err := openImage(f.image)
	if err != nil {
		return err
	}
	defer img.Close()
	// The *os.File itself, so that the bundler can skip a sparse file's
	// holes.
	in.Image, in.Size, in.ModTime = img.File, img.size, img.modTime
	if err := os.MkdirAll(f.dest, 0o755); err != nil {
		return err
	}
	prog := newProgress(std.stderr, "bundling "+in.Name)
	out, err := bundle.Bundle(ctx, in, func(o *bundle.Options) { o.Progress = prog.update })
	if err != nil {
		return err
	}
	return f.saveManifest(std, out, in.Size)
}

// input checks the command line and loads the keys and certificates, and
// returns the bundle's description without the image.
func (f *bundleFlags) input(args []string) (*bundle.BundleInput, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	if err := required(
		[2]string{"-i/--image", f.image}, [2]string{"-c/--cert", f.cert}, [2]string{"-k/--privatekey", f.key},
		[2]string{"-u/--user", f.user}, [2]string{"-r/--arch", f.arch},
		[2]string{"--ec2cert (EC2's certificate, cert-ec2.pem, shipped with Amazon's EC2 AMI tools)", f.ec2cert},
	); err != nil {
		return nil, err
	}
	switch f.arch {
	case bundle.ArchI386, bundle.ArchX86_64, bundle.ArchARM64:
	default:
		return nil, usagef("-r/--arch %q: want i386, x86_64 or arm64", f.arch)
	}
	mappings, err := bundle.ParseBlockDeviceMappings(f.mappings)
	if err != nil {
		return nil, usagef("-B/--block-device-mapping: %v", err)
	}
	in := &bundle.BundleInput{
		Name:                cmp.Or(f.prefix, filepath.Base(f.image)),
		Architecture:        f.arch,
		User:                f.user,
		Sink:                bundle.Dir(f.dest),
		KernelID:            f.kernel,
		RamdiskID:           f.ramdisk,
		ProductCodes:        splitList(f.productCodes),
		BlockDeviceMappings: mappings,
	}
	if in.UserCert, err = bundle.LoadCertificate(f.cert); err != nil {
		return nil, err
	}
	if in.UserKey, err = bundle.LoadPrivateKey(f.key); err != nil {
		return nil, err
	}
	if in.EC2Cert, err = bundle.LoadCertificate(f.ec2cert); err != nil {
		return nil, err
	}
	return in, nil
}

// splitList returns the non-empty items of a comma-separated list, trimmed.
func splitList(s string) []string {
	var items []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			items = append(items, c)
		}
	}
	return items
}

// imageFile is the open image with the size and time the bundle records.
type imageFile struct {
	*os.File
	size    int64
	modTime time.Time
}

// openImage opens the image to bundle, a regular file or a block device,
// and measures it.
func openImage(path string) (*imageFile, error) {
	img, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := img.Stat()
	if err == nil && st.IsDir() {
		err = fmt.Errorf("image %s is a directory", path)
	}
	if err != nil {
		img.Close()
		return nil, err
	}
	// The apparent size; Stat reports 0 for block devices.
	n, err := img.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = img.Seek(0, io.SeekStart)
	}
	if err != nil {
		img.Close()
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	return &imageFile{File: img, size: n, modTime: st.ModTime()}, nil
}

// saveManifest writes the manifest beside the parts and reports what was
// created, imageSize being the size of the image bundled.
func (f *bundleFlags) saveManifest(std *stdio, out *bundle.BundleOutput, imageSize int64) error {
	for _, p := range out.Manifest.Parts {
		fmt.Fprintln(std.stdout, "Created", filepath.Join(f.dest, p.Filename))
	}
	manifestPath := filepath.Join(f.dest, out.ManifestName)
	if err := bundle.WriteFile(manifestPath, func(f *os.File) error {
		_, err := f.Write(out.ManifestBytes)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintln(std.stdout, "Created", manifestPath)
	fmt.Fprintf(std.stdout, "Bundled %s (%s) into %d parts (%s).\n", f.image, size(imageSize), len(out.Manifest.Parts), size(out.Manifest.BundledSize))
	return nil
}
