//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// stage is what every run of the local examples stands on: the chosen
// templates and the regions they touch, a work directory, moto, in bench
// mode a recording proxy in front of it that adds o.latency to every call,
// the loopback SSH server standing in for the build instance, packer with
// the plugin installed, the bundle bucket, and the baseline of the leak
// check. close stops and removes all of it.
type stage struct {
	templates []template
	regions   []string // the build region first, then the distribution targets
	work      string
	moto      *awstest.Moto
	proxy     *awstest.Proxy // nil unless bench mode
	sshd      *awstest.SSHD
	packer    *packertest.Packer
	s3        *s3.Client
	baseline  *awstest.Snapshot

	w       io.Writer
	keep    bool
	closers []func()
}

// setUp builds the stage for o, telling w what it starts. withProxy puts
// the recording proxy between packer and moto. On error, what was started
// is stopped again.
func setUp(ctx context.Context, o *options, w io.Writer, withProxy bool) (_ *stage, err error) {
	if o.packer != "" {
		// packer runs in the work directory.
		if o.packer, err = filepath.Abs(o.packer); err != nil {
			return nil, err
		}
	}
	templates, err := selectTemplates(*o)
	if err != nil {
		return nil, err
	}
	s := &stage{templates: templates, regions: regionsOf(templates, o.region), w: w, keep: o.keep}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := s.makeWork(withProxy); err != nil {
		return nil, err
	}
	endpoint, err := s.startAWS(ctx, o, withProxy)
	if err != nil {
		return nil, err
	}
	if err := s.startBuilder(ctx, o, endpoint); err != nil {
		return nil, err
	}
	if err := s.prepareAWS(ctx, o); err != nil {
		return nil, err
	}
	return s, nil
}

// regionsOf returns the build region, then the other regions the
// templates distribute to, sorted.
func regionsOf(templates []template, build string) []string {
	var targets []string
	for _, t := range templates {
		targets = append(targets, t.regions...)
	}
	slices.Sort(targets)
	targets = slices.DeleteFunc(slices.Compact(targets), func(r string) bool { return r == build })
	return append([]string{build}, targets...)
}

// makeWork makes the work directory, which close removes unless the stage
// keeps it.
func (s *stage) makeWork(withProxy bool) (err error) {
	prefix := "ami-demo-"
	if withProxy {
		prefix = "ami-bench-e2e-"
	}
	if s.work, err = os.MkdirTemp("", prefix); err != nil {
		return err
	}
	s.closers = append(s.closers, func() {
		if s.keep {
			fmt.Fprintf(s.w, "\nwork directory kept: %s\n", s.work)
		} else {
			os.RemoveAll(s.work)
		}
	})
	return nil
}

// startAWS starts moto and the proxy in front of it, and returns the
// endpoint packer is to use: the recording proxy with withProxy, else
// awstest's proxy for what moto leaves out of EC2.
func (s *stage) startAWS(ctx context.Context, o *options, withProxy bool) (endpoint string, err error) {
	step(s.w, "starting moto_server (local AWS) on 127.0.0.1")
	if s.moto, err = awstest.StartMoto(ctx, awstest.MotoOptions{}); err != nil {
		return "", err
	}
	s.closers = append(s.closers, func() { s.moto.Stop() })
	fmt.Fprintf(s.w, "    %s\n", s.moto.Endpoint)
	if withProxy {
		s.proxy, err = awstest.StartProxy(s.moto.Endpoint, awstest.ProxyOptions{
			Fault: func(*http.Request, awstest.Call) *awstest.Fault { return awstest.LatencyFault(o.latency) },
		})
		if err != nil {
			return "", err
		}
		s.closers = append(s.closers, func() { s.proxy.Close() })
		fmt.Fprintf(s.w, "    recording proxy adding %s per call: %s\n", o.latency, s.proxy.URL)
		return s.proxy.URL, nil
	}
	// moto drops some of what EC2 does (tags given to CopyImage and
	// RegisterImage, CopyImage's idempotency token, copies of an AMI
	// another account shared); awstest's proxy adds it, as EC2 does.
	proxy, err := awstest.StartProxy(s.moto.Endpoint, awstest.ProxyOptions{})
	if err != nil {
		return "", err
	}
	s.closers = append(s.closers, func() { proxy.Close() })
	fmt.Fprintf(s.w, "    in front of it awstest's proxy, which adds what moto leaves out of EC2 (tags at creation, idempotency tokens, cross-account copies): %s\n", proxy.URL)
	return proxy.URL, nil
}

// startBuilder starts the SSH server that stands in for the build
// instance and sets packer up, with the plugin installed, to reach AWS
// at endpoint.
func (s *stage) startBuilder(ctx context.Context, o *options, endpoint string) (err error) {
	step(s.w, "starting an OpenSSH server on 127.0.0.1 as the build instance")
	if s.sshd, err = awstest.StartSSHD(ctx, filepath.Join(s.work, "sshd")); err != nil {
		return err
	}
	s.closers = append(s.closers, func() { s.sshd.Stop() })
	fmt.Fprintf(s.w, "    %s@%s:%d\n", s.sshd.User, s.sshd.Host, s.sshd.Port)

	step(s.w, "building the plugin and installing it into a private plugin directory")
	s.packer, err = packertest.Setup(ctx, s.work, packertest.Options{
		Packer: o.packer,
		Env:    awstest.Env(endpoint, o.region),
	})
	return err
}

// prepareAWS makes what the templates expect to find in AWS, the bundle
// bucket and the launch template they publish to, and then takes the
// baseline of the leak check.
func (s *stage) prepareAWS(ctx context.Context, o *options) (err error) {
	_, s.s3 = awstest.Clients(s.moto.Endpoint, o.region)
	if needsBucket(s.templates) {
		step(s.w, fmt.Sprintf("creating S3 bucket %s in %s for bundles (ACLs enabled: owner preferred)", o.bucket, o.region))
		if err := createBucket(ctx, s.s3, o.bucket, o.region); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(s.templates, func(t template) bool { return t.publishes }) {
		step(s.w, fmt.Sprintf("creating launch template %s in %s and in account %s", demoTemplate, strings.Join(s.regions, ", "), demoAccount))
		if err := preparePublish(ctx, s.moto.Endpoint, s.regions); err != nil {
			return err
		}
	}
	s.baseline, err = awstest.TakeSnapshot(ctx, s.moto.Endpoint, s.regions)
	return err
}

// close stops what setUp started, and what was added to closers since,
// in reverse order.
func (s *stage) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// outDir makes the n-th output directory, writable by the SSH user, who
// may differ from ours.
func (s *stage) outDir(n int) (string, error) {
	out := filepath.Join(s.work, fmt.Sprintf("out-%d", n))
	if err := os.MkdirAll(out, 0o777); err != nil {
		return "", err
	}
	return out, os.Chmod(out, 0o777)
}

// kept describes the images of products and lists the bundle objects, and
// checks that nothing else is left in any region or in S3 since the
// baseline. It returns them with a summary of what is kept; when something
// leaked, it returns them with an error listing the leaks.
func (s *stage) kept(ctx context.Context, products []product, bucket string) (map[string]image, []s3types.Object, string, error) {
	images, err := describe(ctx, s.moto.Endpoint, products)
	if err != nil {
		return nil, nil, "", err
	}
	var objects []s3types.Object
	if needsBucket(s.templates) {
		if objects, err = listObjects(ctx, s.s3, bucket); err != nil {
			return nil, nil, "", err
		}
	}
	leaks, err := awstest.ListLeaks(ctx, s.moto.Endpoint, s.regions, s.baseline)
	if err != nil {
		return nil, nil, "", err
	}
	summary := keptSummary(&leaks, products, images, bucket, objects)
	if !leaks.Empty() {
		return images, objects, "", errors.New("the builds left resources behind:\n" + leaks.String())
	}
	return images, objects, summary, nil
}

// leakCheckTitle is the heading of the leak check.
func (s *stage) leakCheckTitle() string {
	return "leak check in " + strings.Join(s.regions, ", ") + " and S3"
}
