package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

var unbundleCommand = &command{
	name:  "unbundle",
	short: "unbundle a bundle into its image (like ec2-unbundle)",
	summary: `Unbundle a bundle into its image file, like ec2-unbundle. Every part's
digest, the sizes and the image digest are checked; with -c the manifest's
signature too. The image is written to DST/NAME, where the manifest chooses
NAME; an existing file there is refused unless --force is given.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) error {
		var f readFlags
		f.define(fs, ".")
		stringFlag(fs, &f.dest, "d", "destination", ".", "`directory` to write the image to")
		stringFlag(fs, &f.cert, "c", "cert", "", "user's PEM certificate `file`, to verify the signature (optional)")
		boolFlag(fs, &f.batch, "", "batch", "never prompt (accepted for compatibility)")
		boolFlag(fs, &f.force, "", "force", "replace an existing file at DST/NAME (by default unbundle refuses to)")
		return f.unbundle
	},
}

var verifyCommand = &command{
	name:  "verify",
	short: "verify a bundle completely without writing its image",
	summary: `Verify a bundle completely without writing its image: the manifest's
signature, every part's digest, the sizes and the image digest.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) error {
		var f readFlags
		f.define(fs, "")
		stringFlag(fs, &f.cert, "c", "cert", "", "user's PEM certificate `file` (required)")
		return f.verify
	},
}

type readFlags struct {
	key, manifest, source, dest, cert string
	batch, force                      bool
}

func (f *readFlags) define(fs *flag.FlagSet, sourceDefault string) {
	stringFlag(fs, &f.key, "k", "privatekey", "", "user's PEM RSA private key `file` (required)")
	stringFlag(fs, &f.manifest, "m", "manifest", "", "manifest `file` (required)")
	doc := "`directory` holding the parts"
	if sourceDefault == "" {
		doc += " (default: the manifest's directory)"
	}
	stringFlag(fs, &f.source, "s", "source", sourceDefault, doc)
}

// open loads the inputs shared by unbundle and verify.
func (f *readFlags) open(args []string, needCert bool) (*bundle.UnbundleInput, error) {
	if err := noArgs(args); err != nil {
		return nil, err
	}
	flags := [][2]string{{"-k/--privatekey", f.key}, {"-m/--manifest", f.manifest}}
	if needCert {
		flags = append(flags, [2]string{"-c/--cert", f.cert})
	}
	if err := required(flags...); err != nil {
		return nil, err
	}
	key, err := bundle.LoadPrivateKey(f.key)
	if err != nil {
		return nil, err
	}
	raw, err := readManifest(f.manifest)
	if err != nil {
		return nil, err
	}
	in := &bundle.UnbundleInput{Manifest: raw, UserKey: key}
	if f.cert != "" {
		if in.UserCert, err = bundle.LoadCertificate(f.cert); err != nil {
			return nil, err
		}
	}
	src := f.source
	if src == "" {
		src = filepath.Dir(f.manifest)
	}
	in.Source = bundle.Dir(src)
	return in, nil
}

// readManifest reads the manifest file at path, no more than one byte past
// the largest manifest allowed, so that ParseManifest sees an oversized
// file as such without the whole of it in memory.
func readManifest(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	raw, err := io.ReadAll(io.LimitReader(fh, bundle.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return raw, nil
}

// loadManifest reads and parses the manifest file at path.
func loadManifest(path string) (*bundle.Manifest, error) {
	raw, err := readManifest(path)
	if err != nil {
		return nil, err
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func (f *readFlags) unbundle(ctx context.Context, std *stdio, args []string) error {
	in, err := f.open(args, false)
	if err != nil {
		return err
	}
	m, err := bundle.ParseManifest(in.Manifest)
	if err != nil {
		return fmt.Errorf("%s: %w", f.manifest, err)
	}
	prog := newProgress(std.stderr, "unbundling "+m.Name)
	out, err := bundle.UnbundleToDir(ctx, in, f.dest, func(o *bundle.Options) {
		o.Progress = prog.update
		o.Overwrite = f.force
	})
	if errors.Is(err, fs.ErrExist) {
		// The name was checked to be a plain file name by ParseManifest.
		return fmt.Errorf("%s already exists (the manifest names the image %q); use --force to replace it", filepath.Join(f.dest, m.Name), m.Name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(std.stdout, "Created", out.Path)
	fmt.Fprintf(std.stdout, "Unbundled %s (%s), digests checked%s.\n", m.Name, size(out.Size), signatureNote(out.SignatureVerified))
	return nil
}

func signatureNote(verified bool) string {
	if verified {
		return ", signature verified"
	}
	return ", signature not checked (no -c)"
}

func (f *readFlags) verify(ctx context.Context, std *stdio, args []string) error {
	in, err := f.open(args, true)
	if err != nil {
		return err
	}
	m, err := bundle.ParseManifest(in.Manifest)
	if err != nil {
		return fmt.Errorf("%s: %w", f.manifest, err)
	}
	prog := newProgress(std.stderr, "verifying "+m.Name)
	out, err := bundle.Verify(ctx, in, func(o *bundle.Options) { o.Progress = prog.update })
	if err != nil {
		return err
	}
	fmt.Fprintf(std.stdout, "Bundle %s is intact: signature, %d part digests, sizes and image digest (%s image) verified.\n",
		m.Name, len(out.Manifest.Parts), size(out.Size))
	return nil
}
