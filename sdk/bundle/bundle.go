package bundle

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/opts"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/pgzip"
)

// BundleInput describes an image to bundle.
type BundleInput struct {
	// Image is read for exactly Size bytes; more or fewer is an error.
	// Required.
	Image io.Reader
	// Size is the image's apparent size in bytes, 1 to MaxImageSize.
	// Required.
	Size int64
	// Name is the bundle name: the tar entry's name and the prefix of the
	// part and manifest file names. A plain file name. Required.
	Name string
	// Architecture is ArchI386, ArchX86_64 or ArchARM64. Required.
	Architecture string
	// User is the AWS account id; dashes are removed. Required.
	User string
	// UserCert and UserKey are the bundling user's certificate and its
	// private key (RSA): the key/IV are encrypted for the certificate and
	// the manifest is signed with the key. Required.
	UserCert *x509.Certificate
	UserKey  *rsa.PrivateKey
	// EC2Cert is EC2's certificate (RSA), for which the key/IV are
	// encrypted too. Required.
	EC2Cert *x509.Certificate
	// Sink stores the parts. Required.
	Sink PartSink

	// Type is TypeMachine (default), TypeKernel or TypeRamdisk.
	Type string
	// KernelID and RamdiskID are optional aki-/ari- ids.
	KernelID  string
	RamdiskID string
	// ProductCodes are optional product codes.
	ProductCodes []string
	// BlockDeviceMappings are optional; virtual names must be unique.
	BlockDeviceMappings []BlockDeviceMapping
	// Ancestry lists optional ancestor AMI ids.
	Ancestry []string
	// ModTime is the tar entry's modification time; zero means now.
	ModTime time.Time
}

// BundleOutput is the result of Bundle. The caller stores ManifestBytes
// under ManifestName after the parts (the parts are already in the sink).
type BundleOutput struct {
	Manifest      *Manifest
	ManifestBytes []byte
	ManifestName  string
}

// Bundle turns an image into an encrypted, split bundle: the parts go to
// in.Sink as they are produced, and the signed manifest is returned. Memory
// use is bounded by the options, not by the image size.
//
// If Bundle fails after storing parts and the sink implements PartRemover,
// it removes them.
func Bundle(ctx context.Context, in *BundleInput, optFns ...func(*Options)) (*BundleOutput, error) {
	o := opts.Apply(optFns)
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, &InputError{Field: "BundleInput", Reason: "nil"}
	}
	v, err := in.validate()
	if err != nil {
		return nil, err
	}
	key := make([]byte, aes.BlockSize)
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(o.Rand, key); err != nil {
		return nil, fmt.Errorf("bundle %s: generate key: %w", in.Name, err)
	}
	if _, err := io.ReadFull(o.Rand, iv); err != nil {
		return nil, fmt.Errorf("bundle %s: generate iv: %w", in.Name, err)
	}

	b := &bundler{in: in, opts: &o, v: v}
	m, err := b.run(ctx, key, iv)
	if err != nil {
		b.cleanup(ctx)
		return nil, fmt.Errorf("bundle %s: %w", in.Name, err)
	}
	return &BundleOutput{Manifest: m, ManifestBytes: m.Bytes(), ManifestName: ManifestName(in.Name)}, nil
}

func (o *Options) defaults() error {
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	if o.Concurrency < 1 {
		return &InputError{Field: "Options.Concurrency", Reason: "must be positive"}
	}
	if o.CompressionLevel == 0 {
		o.CompressionLevel = 6
	}
	if o.CompressionLevel < 1 || o.CompressionLevel > 9 {
		return &InputError{Field: "Options.CompressionLevel", Reason: fmt.Sprintf("%d is not from 1 to 9", o.CompressionLevel)}
	}
	if o.Parallelism == 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	if o.Parallelism < 1 {
		return &InputError{Field: "Options.Parallelism", Reason: "must be positive"}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Bundler == (Bundler{}) {
		o.Bundler = DefaultBundler
	}
	if o.partSize == 0 {
		o.partSize = PartSize
	}
	return nil
}

// validated holds values derived while validating a BundleInput.
type validated struct {
	user            string
	typ             string
	userPub, ec2Pub *rsa.PublicKey
	mtime           int64
	header          []byte
	tarSize         int64
}

func (in *BundleInput) validate() (*validated, error) {
	v := &validated{}
	if in.Image == nil {
		return nil, &InputError{Field: "Image", Reason: "missing"}
	}
	if in.Size <= 0 {
		return nil, &InputError{Field: "Size", Reason: fmt.Sprintf("%d bytes: the image is empty", in.Size)}
	}
	if in.Size > MaxImageSize {
		return nil, &InputError{Field: "Size", Reason: fmt.Sprintf("%d bytes exceeds the format's limit of %d bytes (10 GiB)", in.Size, int64(MaxImageSize))}
	}
	if err := checkFileName(in.Name); err != nil {
		return nil, &InputError{Field: "Name", Reason: err.Error()}
	}
	switch in.Architecture {
	case ArchI386, ArchX86_64, ArchARM64:
	default:
		return nil, &InputError{Field: "Architecture", Reason: fmt.Sprintf("%q is not one of i386, x86_64, arm64", in.Architecture)}
	}
	v.user = strings.ReplaceAll(in.User, "-", "")
	if !isAccount(v.user) {
		return nil, &InputError{Field: "User", Reason: fmt.Sprintf("%q is not a 12-digit AWS account id", in.User)}
	}
	var err error
	if v.userPub, err = rsaPublicKey(in.UserCert, "UserCert"); err != nil {
		return nil, err
	}
	if in.UserKey == nil {
		return nil, &InputError{Field: "UserKey", Reason: "missing"}
	}
	if !in.UserKey.PublicKey.Equal(v.userPub) {
		return nil, &InputError{Field: "UserKey", Reason: "does not belong to UserCert"}
	}
	if v.ec2Pub, err = rsaPublicKey(in.EC2Cert, "EC2Cert"); err != nil {
		return nil, err
	}
	if in.Sink == nil {
		return nil, &InputError{Field: "Sink", Reason: "missing"}
	}
	switch v.typ = in.Type; v.typ {
	case "":
		v.typ = TypeMachine
	case TypeMachine, TypeKernel, TypeRamdisk:
	default:
		return nil, &InputError{Field: "Type", Reason: fmt.Sprintf("%q is not one of machine, kernel, ramdisk", in.Type)}
	}
	seen := map[string]bool{}
	for _, bd := range in.BlockDeviceMappings {
		if bd.Virtual == "" || bd.Device == "" {
			return nil, &InputError{Field: "BlockDeviceMappings", Reason: fmt.Sprintf("%q=%q: virtual and device names are required", bd.Virtual, bd.Device)}
		}
		if seen[bd.Virtual] {
			return nil, &InputError{Field: "BlockDeviceMappings", Reason: fmt.Sprintf("virtual name %q appears twice", bd.Virtual)}
		}
		seen[bd.Virtual] = true
	}
	for _, c := range in.ProductCodes {
		if c == "" {
			return nil, &InputError{Field: "ProductCodes", Reason: "empty product code"}
		}
	}
	for _, a := range in.Ancestry {
		if a == "" {
			return nil, &InputError{Field: "Ancestry", Reason: "empty ancestor id"}
		}
	}
	mt := in.ModTime
	if mt.IsZero() {
		mt = time.Now()
	}
	v.mtime = mt.Unix()
	if v.header, err = tarHeader(in.Name, in.Size, v.mtime); err != nil {
		return nil, &InputError{Field: "Name", Reason: err.Error()}
	}
	v.tarSize = tarSize(len(v.header), in.Size)
	return v, nil
}

type bundler struct {
	in     *BundleInput
	opts   *Options
	v      *validated
	sp     *splitter
	gz     *pgzip.Writer
	copied []string
}

func (b *bundler) run(ctx context.Context, key, iv []byte) (*Manifest, error) {
	in, v := b.in, b.v
	b.sp = newSplitter(ctx, in.Sink, in.Name, b.opts.partSize, b.opts.Concurrency, b.width)
	// Parts are allocated at their full size at once when the bundle will
	// fill at least one, instead of growing (and leaving garbage behind).
	b.sp.initial = int(min(int64(b.opts.partSize), b.worstCase()))
	cbc, err := newCBCWriter(b.sp, key, iv)
	if err != nil {
		return nil, err
	}
	h := sha1.New()
	gz, err := pgzip.NewWriter(ctx, cbc, b.opts.CompressionLevel, pgzip.BlockSize, b.opts.Parallelism, h)
	if err != nil {
		return nil, err
	}
	b.gz = gz
	_, err = gz.ReadFrom(newTarSource(ctx, v.header, in.Image, in.Size, b.opts.Progress))
	if err != nil {
		gz.Abort(err)
	}
	// Close every layer, first to last, each flushing into the next; after
	// an error nothing more is flushed downstream.
	for _, c := range []io.Closer{gz, cbc} {
		if err != nil {
			break
		}
		err = c.Close()
	}
	if err != nil {
		b.sp.abort(err)
		return nil, b.firstErr(err)
	}
	if err := b.sp.Close(); err != nil {
		return nil, err
	}
	parts := b.sp.written()
	if err := b.rename(ctx, parts); err != nil {
		return nil, err
	}

	m := &Manifest{
		Version:             ManifestVersion,
		Bundler:             b.opts.Bundler,
		Architecture:        in.Architecture,
		BlockDeviceMappings: in.BlockDeviceMappings,
		KernelID:            in.KernelID,
		RamdiskID:           in.RamdiskID,
		ProductCodes:        in.ProductCodes,
		Name:                in.Name,
		User:                v.user,
		Type:                v.typ,
		Ancestry:            in.Ancestry,
		Size:                in.Size,
		BundledSize:         b.sp.size(),
		Parts:               parts,
	}
	copy(m.Digest[:], h.Sum(nil))
	for _, e := range []struct {
		what   string
		pub    *rsa.PublicKey
		secret []byte
		dst    *[]byte
	}{
		{"key for EC2", v.ec2Pub, key, &m.EC2EncryptedKey},
		{"key for the user", v.userPub, key, &m.UserEncryptedKey},
		{"iv for EC2", v.ec2Pub, iv, &m.EC2EncryptedIV},
		{"iv for the user", v.userPub, iv, &m.UserEncryptedIV},
	} {
		if *e.dst, err = encryptHexSecret(e.pub, e.secret); err != nil {
			return nil, fmt.Errorf("encrypt %s: %w", e.what, err)
		}
	}
	if err := m.Sign(in.UserKey); err != nil {
		return nil, err
	}
	return m, nil
}

// firstErr prefers a sink error over the error it caused upstream.
func (b *bundler) firstErr(err error) error {
	var pe *PartError
	if serr := b.sp.getErr(); serr != nil && errors.As(serr, &pe) {
		return serr
	}
	return err
}

// width estimates the number of digits of the final part count when part
// index is complete and received ciphertext bytes have been produced. See
// PartSink for the naming scheme.
func (b *bundler) width(index int, received int64) int {
	lower := digits(index + 1)
	ps := int64(b.opts.partSize)
	t := b.v.tarSize
	upper := digits(int((b.worstCase() + ps - 1) / ps))
	if lower >= upper {
		return lower
	}
	in := b.gz.Consumed()
	if in <= 0 {
		return lower
	}
	ratio := float64(received) / float64(in)
	est := float64(received) + float64(t-in)*ratio
	d := digits(int(math.Ceil(est / float64(ps))))
	return max(lower, min(upper, d))
}

// worstCase bounds the bundled size: deflate stores incompressible data
// with 5 bytes per block of at most 64 KiB and a sync flush per compressor
// block; allow more, plus gzip framing and padding.
func (b *bundler) worstCase() int64 {
	t := b.v.tarSize
	return t + t/1024 + 4096
}

// rename moves parts whose provisional name turned out wrong to their final
// name, and records final names in parts.
func (b *bundler) rename(ctx context.Context, parts []PartInfo) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opts.Concurrency)
	for i := range parts {
		final := PartName(b.in.Name, i, len(parts))
		if parts[i].Filename == final {
			continue
		}
		from := parts[i].Filename
		parts[i].Filename = final
		b.copied = append(b.copied, final)
		g.Go(func() error {
			if err := b.in.Sink.RenamePart(gctx, from, final); err != nil {
				return &PartError{Index: i, Filename: from, Err: fmt.Errorf("rename to %s: %w", final, err)}
			}
			return nil
		})
	}
	return g.Wait()
}

// cleanup removes the parts stored so far, if the sink can.
func (b *bundler) cleanup(ctx context.Context) {
	rm, ok := b.in.Sink.(PartRemover)
	if !ok || b.sp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	names := b.copied
	for _, p := range b.sp.written() {
		names = append(names, p.Filename)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opts.Concurrency)
	for _, n := range names {
		g.Go(func() error { return rm.RemovePart(gctx, n) })
	}
	_ = g.Wait() // best effort; the bundling error is what the caller needs
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
