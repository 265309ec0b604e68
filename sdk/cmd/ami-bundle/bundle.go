package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

func (f *bundleFlags) run(ctx context.Context, std *stdio, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if err := required(
		[2]string{"-i/--image", f.image}, [2]string{"-c/--cert", f.cert}, [2]string{"-k/--privatekey", f.key},
		[2]string{"-u/--user", f.user}, [2]string{"-r/--arch", f.arch},
		[2]string{"--ec2cert (EC2's certificate, cert-ec2.pem, shipped with Amazon's EC2 AMI tools)", f.ec2cert},
	); err != nil {
		return err
	}
	switch f.arch {
	case bundle.ArchI386, bundle.ArchX86_64, bundle.ArchARM64:
	default:
		return usagef("-r/--arch %q: want i386, x86_64 or arm64", f.arch)
	}
	mappings, err := bundle.ParseBlockDeviceMappings(f.mappings)
	if err != nil {
		return usagef("-B/--block-device-mapping: %v", err)
	}
	var codes []string
	for _, c := range strings.Split(f.productCodes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			codes = append(codes, c)
		}
	}
	name := f.prefix
	if name == "" {
		name = filepath.Base(f.image)
	}

	userCert, err := bundle.LoadCertificate(f.cert)
	if err != nil {
		return err
	}
	userKey, err := bundle.LoadPrivateKey(f.key)
	if err != nil {
		return err
	}
	ec2Cert, err := bundle.LoadCertificate(f.ec2cert)
	if err != nil {
		return err
	}
	img, err := os.Open(f.image)
	if err != nil {
		return err
	}
	defer img.Close()
	st, err := img.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("image %s is a directory", f.image)
	}
	// The apparent size; Stat reports 0 for block devices.
	n, err := img.Seek(0, 2)
	if err != nil {
		return fmt.Errorf("image %s: %w", f.image, err)
	}
	if _, err := img.Seek(0, 0); err != nil {
		return fmt.Errorf("image %s: %w", f.image, err)
	}
	if err := os.MkdirAll(f.dest, 0o755); err != nil {
		return err
	}

	prog := newProgress(std.stderr, "bundling "+name)
	out, err := bundle.Bundle(ctx, &bundle.BundleInput{
		Image:               img,
		Size:                n,
		Name:                name,
		Architecture:        f.arch,
		User:                f.user,
		UserCert:            userCert,
		UserKey:             userKey,
		EC2Cert:             ec2Cert,
		Sink:                bundle.Dir(f.dest),
		KernelID:            f.kernel,
		RamdiskID:           f.ramdisk,
		ProductCodes:        codes,
		BlockDeviceMappings: mappings,
		ModTime:             st.ModTime(),
	}, func(o *bundle.Options) { o.Progress = prog.update })
	if err != nil {
		return err
	}
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
	fmt.Fprintf(std.stdout, "Bundled %s (%s) into %d parts (%s).\n", f.image, size(n), len(out.Manifest.Parts), size(out.Manifest.BundledSize))
	return nil
}
