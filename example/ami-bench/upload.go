//go:build unix

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// link models the network between the uploader and S3: every PUT takes a
// round trip plus its body at the bandwidth one connection gets. moto on
// loopback has neither, and it is one Python process whose own CPU time
// (30–50 ms per 10 MiB part on these machines) is then all there is to
// wait for; concurrency cannot shorten that. What concurrent uploads hide
// is the network, so the proxy in front of moto adds it.
type link struct {
	name string
	rtt  time.Duration
	bw   float64 // bytes per second and connection; 0 means no limit
}

// delay is the time the link adds to a request with a body of n bytes.
func (l link) delay(n int64) time.Duration {
	d := l.rtt
	if l.bw > 0 && n > 0 {
		d += time.Duration(float64(n) / l.bw * float64(time.Second))
	}
	return d
}

func (l link) String() string {
	if l.rtt == 0 && l.bw == 0 {
		return l.name
	}
	return fmt.Sprintf("%s (%s + %.0f MB/s per connection)", l.name, l.rtt, l.bw/1e6)
}

var (
	loopback = link{name: "moto alone"}
	// In the same region S3 gives one connection about 85–90 MB/s (AWS
	// sizes concurrency at one request per 85–90 MB/s wanted).
	nearLink = link{name: "in-region link", rtt: 10 * time.Millisecond, bw: 90e6}
	// A distant region: a long round trip and a fraction of the bandwidth.
	farLink = link{name: "cross-region link", rtt: 150 * time.Millisecond, bw: 20e6}
)

// uploadBench uploads our bundle to moto through a proxy that adds a
// link's delay to every PUT, one part at a time (the reference) and with
// bundlestore's default concurrency, for each link; then it streams a new
// bundle of the image straight into S3 over the cross-region link and
// compares that with bundling alone and uploading alone. The cross-region
// link is the telling case: there uploading alone takes about as long as
// bundling alone, so overlapping them saves the most, and the upload's
// delays are the network's, not moto's CPU time, which on loopback
// competes with the bundler for the same two cores.
func (b *bundleBench) uploadBench(ctx context.Context, t *table) error {
	c := b.c
	dir := b.ours
	c.logf("starting moto for the upload rows")
	m, err := awstest.StartMoto(ctx, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	if err != nil {
		return fmt.Errorf("start moto (%s): %w", awstest.MotoInstallHint, err)
	}
	defer m.Stop()
	var current atomic.Pointer[link]
	current.Store(&loopback)
	p, err := awstest.StartProxy(m.Endpoint, awstest.ProxyOptions{
		Fault: func(_ *http.Request, call awstest.Call) *awstest.Fault {
			if call.Action != "PutObject" {
				return nil
			}
			if d := current.Load().delay(call.ContentLength); d > 0 {
				return awstest.LatencyFault(d)
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	defer p.Close()
	_, s3c := awstest.Clients(p.URL, "us-east-1")
	bucket := "ami-bench"
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return err
	}
	// Free moto's memory after each run.
	remove := func(prefix string) error {
		_, err := bundlestore.Delete(ctx, s3c, &bundlestore.DeleteInput{Bucket: bucket, Prefix: prefix, Name: "img"})
		return err
	}
	manifest := filepath.Join(dir, "img.manifest.xml")
	m0, err := readManifest(dir)
	if err != nil {
		return err
	}
	upload := func(conc, rep int) (time.Duration, error) {
		prefix := fmt.Sprintf("c%d-r%d", conc, rep)
		start := time.Now()
		_, err := bundlestore.Upload(ctx, s3c, &bundlestore.UploadInput{ManifestPath: manifest, Bucket: bucket, Prefix: prefix},
			func(o *bundlestore.Options) { o.Concurrency = conc; o.DisableResume = true })
		d := time.Since(start)
		if err != nil {
			return d, fmt.Errorf("upload with concurrency %d: %w", conc, err)
		}
		return d, remove(prefix)
	}
	conc := bundlestore.DefaultConcurrency
	var farUpload time.Duration
	for _, l := range []link{loopback, nearLink, farLink} {
		current.Store(&l)
		var one, many time.Duration
		for i := range c.reps {
			c.logf("upload run %d/%d, %s", i+1, c.reps, l)
			d1, err := upload(1, i)
			if err != nil {
				return err
			}
			dn, err := upload(conc, i)
			if err != nil {
				return err
			}
			c.logf("  concurrency 1: %s, %d: %s", secs(d1), conc, secs(dn))
			if i == 0 || d1 < one {
				one = d1
			}
			if i == 0 || dn < many {
				many = dn
			}
		}
		r := one.Seconds() / many.Seconds()
		rw := row{
			measure:   fmt.Sprintf("S3 upload, %d parts (%s), %s: concurrency %d vs 1", len(m0.Parts), mib(m0.BundledSize), l, conc),
			ours:      secs(many),
			reference: secs(one),
			ratio:     times(r),
			target:    "≥ 3×",
			verdict:   check(r >= 3),
		}
		if l == loopback {
			// moto's own CPU time bounds this one; see link.
			rw.target, rw.verdict = "report (moto-bound)", info
		}
		if l == farLink {
			farUpload = many
		}
		t.add(rw)
	}

	// Streaming: the bundler hands every part to a bundlestore.Writer as
	// soon as it is made, which is how ami-instance uploads.
	current.Store(&farLink)
	var alone, streamed time.Duration
	out := filepath.Join(c.work, "inproc")
	for i := range c.reps {
		c.logf("streaming run %d/%d, %s", i+1, c.reps, farLink)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		d, err := b.bundleInProcess(ctx, bundle.Dir(out), nil)
		if err != nil {
			return err
		}
		os.RemoveAll(out)
		prefix := fmt.Sprintf("stream-%d", i)
		w, err := bundlestore.NewWriter(ctx, s3c, &bundlestore.WriterInput{Bucket: bucket, Prefix: prefix},
			func(o *bundlestore.Options) { o.DisableResume = true })
		if err != nil {
			return err
		}
		s, err := b.bundleInProcess(ctx, w, func(o *bundle.BundleOutput) error {
			_, err := w.Finish(ctx, o.ManifestName, o.ManifestBytes)
			return err
		})
		if err != nil {
			w.Abort()
			return err
		}
		if err := remove(prefix); err != nil {
			return err
		}
		c.logf("  bundle alone %s, bundle + upload streamed %s", secs(d), secs(s))
		if i == 0 || d < alone {
			alone = d
		}
		if i == 0 || s < streamed {
			streamed = s
		}
	}
	slower := max(alone, farUpload)
	r := streamed.Seconds() / slower.Seconds()
	t.add(row{
		measure:   fmt.Sprintf("bundle + upload streamed, %d MiB image, %s", c.sizeMiB, farLink.name),
		ours:      secs(streamed),
		reference: fmt.Sprintf("bundle %s, upload %s, sum %s", secs(alone), secs(farUpload), secs(alone+farUpload)),
		ratio:     times(r) + " slower",
		target:    "≤ 1.25× the slower",
		verdict:   check(r <= 1.25),
	})
	return nil
}

// bundleInProcess bundles the image into sink in this process and calls
// finish, when set, with the result; it returns the time both took.
func (b *bundleBench) bundleInProcess(ctx context.Context, sink bundle.PartSink, finish func(*bundle.BundleOutput) error) (time.Duration, error) {
	f, err := os.Open(b.img)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cert, err := bundle.LoadCertificate(b.certPath)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := bundle.Bundle(ctx, &bundle.BundleInput{
		Image:        f,
		Size:         b.size,
		Name:         "img",
		Architecture: "x86_64",
		User:         "123456789012",
		UserCert:     cert,
		UserKey:      b.key,
		EC2Cert:      cert,
		Sink:         sink,
	})
	if err != nil {
		return time.Since(start), fmt.Errorf("bundle in process: %w", err)
	}
	if finish != nil {
		if err := finish(out); err != nil {
			return time.Since(start), fmt.Errorf("finish the upload: %w", err)
		}
	}
	return time.Since(start), nil
}
