package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

var uploadCommand = &command{
	name:  "upload",
	short: "upload a bundle to S3 (like ec2-upload-bundle)",
	summary: `Upload a bundle's parts, then its manifest, to S3 with the canned ACL
aws-exec-read, like ec2-upload-bundle. The bucket may carry a key prefix
(BUCKET/PREFIX). Parts already stored intact are not sent again. AWS
credentials come from the standard chain (environment, shared files, SSO,
instance role), never from the command line.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) error {
		var f uploadFlags
		f.aws.define(fs)
		stringFlag(fs, &f.bucket, "b", "bucket", "", "`bucket`[/prefix] to upload to (required)")
		stringFlag(fs, &f.manifest, "m", "manifest", "", "manifest `file` (required); the parts are read from its directory")
		stringFlag(fs, &f.location, "", "location", "", "the bucket's `region` (same as --region; accepted for compatibility)")
		intFlag(fs, &f.concurrency, "", "concurrency", bundlestore.DefaultConcurrency, "parts uploaded at once")
		boolFlag(fs, &f.batch, "", "batch", "never prompt (accepted for compatibility)")
		boolFlag(fs, &f.retry, "", "retry", "retry failed uploads (always on; accepted for compatibility)")
		return f.run
	},
}

var deleteCommand = &command{
	name:  "delete",
	short: "delete a bundle from S3 (like ec2-delete-bundle)",
	summary: `Delete a bundle from S3, like ec2-delete-bundle: the manifest and the parts
it lists, or with -p every NAME.part.N and NAME.manifest.xml under the
bucket's prefix. Other objects are never touched: a key the manifest lists
that is not NAME.part.N is left in place with a warning.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) error {
		var f deleteFlags
		f.aws.define(fs)
		stringFlag(fs, &f.bucket, "b", "bucket", "", "`bucket`[/prefix] holding the bundle (required)")
		stringFlag(fs, &f.manifest, "m", "manifest", "", "local manifest `file`, naming the bundle to delete")
		stringFlag(fs, &f.name, "p", "prefix", "", "bundle `name` (the file name prefix) to delete by listing")
		boolFlag(fs, &f.batch, "", "batch", "never prompt (accepted for compatibility)")
		boolFlag(fs, &f.clear, "", "clear", "accepted for compatibility; the bucket itself is never deleted")
		return f.run
	},
}

// awsFlags are the connection flags shared by the AWS commands.
type awsFlags struct {
	region, profile, endpoint string
}

func (a *awsFlags) define(fs *flag.FlagSet) {
	stringFlag(fs, &a.region, "", "region", "", "the bucket's `region` (default: from the environment or profile)")
	stringFlag(fs, &a.profile, "", "profile", "", "shared configuration `profile`")
	stringFlag(fs, &a.endpoint, "", "endpoint-url", "", "S3 and EC2 endpoint `URL`, e.g. of a local emulator (default: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL)")
}

func (a *awsFlags) session(ctx context.Context) (*awscfg.Session, error) {
	return awscfg.New(ctx, awscfg.Config{Region: a.region, Profile: a.profile, Endpoints: awscfg.Endpoints{S3: a.endpoint, EC2: a.endpoint}})
}

// splitBucket splits "bucket/some/prefix" into the bucket and the prefix.
func splitBucket(s string) (bucket, prefix string) {
	bucket, prefix, _ = strings.Cut(strings.TrimPrefix(s, "s3://"), "/")
	return bucket, strings.Trim(prefix, "/")
}

type uploadFlags struct {
	aws                        awsFlags
	bucket, manifest, location string
	concurrency                int
	batch, retry               bool
}

func (f *uploadFlags) run(ctx context.Context, std *stdio, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if err := required([2]string{"-b/--bucket", f.bucket}, [2]string{"-m/--manifest", f.manifest}); err != nil {
		return err
	}
	if f.aws.region == "" {
		f.aws.region = f.location
	}
	bucket, prefix := splitBucket(f.bucket)
	m, err := loadManifest(f.manifest)
	if err != nil {
		return err
	}
	sess, err := f.aws.session(ctx)
	if err != nil {
		return err
	}
	prog := newProgress(std.stderr, "uploading "+m.Name)
	out, err := bundlestore.Upload(ctx, sess.S3(""), &bundlestore.UploadInput{
		ManifestPath: f.manifest, Bucket: bucket, Prefix: prefix, Region: sess.Region(),
	}, func(o *bundlestore.Options) {
		o.Concurrency = f.concurrency
		o.Progress = prog.update
	})
	if err != nil {
		return err
	}
	for _, k := range out.Uploaded {
		fmt.Fprintf(std.stdout, "Uploaded s3://%s/%s\n", bucket, k)
	}
	for _, k := range out.Skipped {
		fmt.Fprintf(std.stdout, "Already there s3://%s/%s\n", bucket, k)
	}
	fmt.Fprintf(std.stdout, "Uploaded %s (%d parts, %s sent). Image location for registration: %s\n",
		m.Name, len(m.Parts), size(out.BytesSent), out.ImageLocation)
	return nil
}

type deleteFlags struct {
	aws                    awsFlags
	bucket, manifest, name string
	batch, clear           bool
}

func (f *deleteFlags) run(ctx context.Context, std *stdio, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if err := required([2]string{"-b/--bucket", f.bucket}); err != nil {
		return err
	}
	if (f.manifest == "") == (f.name == "") {
		return usagef("give either -m/--manifest or -p/--prefix")
	}
	bucket, prefix := splitBucket(f.bucket)
	in := &bundlestore.DeleteInput{Bucket: bucket, Prefix: prefix, Name: f.name, ByPrefix: f.name != ""}
	if f.manifest != "" {
		m, err := loadManifest(f.manifest)
		if err != nil {
			return err
		}
		in.Name = m.Name
		if base := filepath.Base(f.manifest); base != bundle.ManifestName(m.Name) {
			return fmt.Errorf("%s names bundle %q, whose manifest is %s", f.manifest, m.Name, bundle.ManifestName(m.Name))
		}
	}
	sess, err := f.aws.session(ctx)
	if err != nil {
		return err
	}
	in.Region = sess.Region()
	out, err := bundlestore.Delete(ctx, sess.S3(""), in)
	if err != nil {
		return err
	}
	for _, k := range out.Deleted {
		fmt.Fprintf(std.stdout, "Deleted s3://%s/%s\n", bucket, k)
	}
	for _, k := range out.Skipped {
		fmt.Fprintf(std.stderr, "warning: left s3://%s/%s in place: the manifest lists it, but it is not a part of bundle %s\n", bucket, k, in.Name)
	}
	fmt.Fprintf(std.stdout, "Deleted bundle %s (%d objects).\n", in.Name, len(out.Deleted))
	return nil
}
