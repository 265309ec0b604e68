// Command sdk-find-and-tag finds one AMI and tags it and its snapshots, using
// this project's SDK directly (no Packer involved).
//
//	go run ./example/sdk-find-and-tag -region eu-west-1 \
//	    -filter 'name=web-*' -owner self -most-recent \
//	    -tag Team=platform -tag Release=2024-06
//
// Credentials come from the AWS SDK's standard chain (environment, shared
// config and credentials files, SSO, instance role) or -profile. -endpoint
// points every service at an emulator such as moto.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sdk-find-and-tag:", err)
		}
		os.Exit(2)
	}
}

// keyValues is a repeatable key=value flag.
type keyValues map[string][]string

func (kv keyValues) String() string { return fmt.Sprint(map[string][]string(kv)) }

func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	kv[k] = append(kv[k], v)
	return nil
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sdk-find-and-tag", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		region     = fs.String("region", "", "AWS region (default: from the environment or profile)")
		profile    = fs.String("profile", "", "shared config profile")
		endpoint   = fs.String("endpoint", "", "custom endpoint for EC2, S3 and STS (e.g. a local emulator)")
		imageID    = fs.String("image-id", "", "AMI id to tag (instead of -filter)")
		mostRecent = fs.Bool("most-recent", false, "take the newest AMI when several match")
		dryRun     = fs.Bool("dry-run", false, "find and print the AMI, tag nothing")
		timeout    = fs.Duration("timeout", 2*time.Minute, "overall time limit")
		filters    = keyValues{}
		tags       = keyValues{}
		owners     list
	)
	fs.Var(filters, "filter", "DescribeImages filter name=value (repeatable)")
	fs.Var(&owners, "owner", "AMI owner: account id, self, amazon, … (repeatable)")
	fs.Var(tags, "tag", "tag key=value to set (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *imageID == "" && len(filters) == 0 {
		return errors.New("give -image-id or at least one -filter")
	}
	if len(tags) == 0 && !*dryRun {
		return errors.New("give at least one -tag key=value (or -dry-run)")
	}
	tagMap := map[string]string{}
	for k, vs := range tags {
		if len(vs) > 1 {
			return fmt.Errorf("tag %q given %d times", k, len(vs))
		}
		tagMap[k] = vs[0]
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg := awscfg.Config{Region: *region, Profile: *profile}
	if *endpoint != "" {
		cfg.Endpoints = awscfg.Endpoints{EC2: *endpoint, S3: *endpoint, STS: *endpoint}
	}
	sess, err := awscfg.New(ctx, cfg)
	if err != nil {
		return err
	}
	ec2c := sess.EC2("")

	in := &image.FindInput{Filters: filters, Owners: owners, MostRecent: *mostRecent}
	if *imageID != "" {
		in.ImageIDs = []string{*imageID}
	}
	found, err := image.Find(ctx, ec2c, in)
	if err != nil {
		return err
	}
	img := found.Image
	id, name := deref(img.ImageId), deref(img.Name)
	fmt.Fprintf(stdout, "found %s %q in %s (snapshots: %s)\n", id, name, sess.Region(),
		strings.Join(image.SnapshotIDs(img), ", "))
	if *dryRun {
		return nil
	}

	// Tags go on the AMI and on its EBS snapshots.
	if _, err := image.Tag(ctx, ec2c, &image.TagInput{ImageID: id, Tags: tagMap, Region: sess.Region()}); err != nil {
		return err
	}
	keys := make([]string, 0, len(tagMap))
	for k := range tagMap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "tagged %s=%s\n", k, tagMap[k])
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
