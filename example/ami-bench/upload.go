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
	u, err := startUploadTarget(ctx, b.c)
	if err != nil {
		return err
	}
	defer u.close()
	farUpload, err := b.linkRows(ctx, t, u)
	if err != nil {
		return err
	}
	return b.streamRow(ctx, t, u, farUpload)
}

// uploadTarget is moto behind a proxy that delays every PutObject as the
// current link would, with a bucket for the bundles.
type uploadTarget struct {
	moto    *awstest.Moto
	proxy   *awstest.Proxy
	s3      *s3.Client
	bucket  string
	current atomic.Pointer[link]
}

// startUploadTarget starts moto and the proxy, on the loopback link, and
// makes the bucket. close stops them.
func startUploadTarget(ctx context.Context, c *config) (*uploadTarget, error) {
	c.logf("starting moto for the upload rows")
	m, err := awstest.StartMoto(ctx, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	if err != nil {
		return nil, fmt.Errorf("start moto (%s): %w", awstest.MotoInstallHint, err)
	}
	u := &uploadTarget{moto: m, bucket: "ami-bench"}
	u.current.Store(&loopback)
	if u.proxy, err = awstest.StartProxy(m.Endpoint, awstest.ProxyOptions{Fault: u.fault}); err != nil {
		m.Stop()
		return nil, err
	}
	_, u.s3 = awstest.Clients(u.proxy.URL, "us-east-1")
	if _, err := u.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(u.bucket)}); err != nil {
		u.close()
		return nil, err
	}
	return u, nil
}

// close stops the proxy and moto.
func (u *uploadTarget) close() {
	u.proxy.Close()
	u.moto.Stop()
}

// fault delays a PutObject by the time the current link takes to carry it.
func (u *uploadTarget) fault(_ *http.Request, call awstest.Call) *awstest.Fault {
	if call.Action != "PutObject" {
		return nil
	}
	if d := u.current.Load().delay(call.ContentLength); d > 0 {
		return awstest.LatencyFault(d)
	}
	return nil
}

// remove deletes the bundle under prefix, to free moto's memory after
// each run.
func (u *uploadTarget) remove(ctx context.Context, prefix string) error {
	_, err := bundlestore.Delete(ctx, u.s3, &bundlestore.DeleteInput{Bucket: u.bucket, Prefix: prefix, Name: "img"})
	return err
}

// upload uploads the bundle of manifest with concurrency conc under a
// prefix of its own for run rep, returns the time the upload took and
// removes the bundle again.
func (u *uploadTarget) upload(ctx context.Context, manifest string, conc, rep int) (time.Duration, error) {
	prefix := fmt.Sprintf("c%d-r%d", conc, rep)
	start := time.Now()
	_, err := bundlestore.Upload(ctx, u.s3, &bundlestore.UploadInput{ManifestPath: manifest, Bucket: u.bucket, Prefix: prefix},
		func(o *bundlestore.Options) { o.Concurrency = conc; o.DisableResume = true })
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("upload with concurrency %d: %w", conc, err)
	}
	return d, u.remove(ctx, prefix)
}

// linkRows uploads our bundle over each link, one part at a time and with
// bundlestore's default concurrency, and adds a row per link. It returns
// the best concurrent upload time over the cross-region link.
func (b *bundleBench) linkRows(ctx context.Context, t *table, u *uploadTarget) (farUpload time.Duration, err error) {
	manifest := filepath.Join(b.ours, "img.manifest.xml")
	m0, err := readManifest(b.ours)
	if err != nil {
		return 0, err
	}
	conc := bundlestore.DefaultConcurrency
	for _, l := range []link{loopback, nearLink, farLink} {
		u.current.Store(&l)
		one, many, err := b.bestUploads(ctx, u, manifest, l, conc)
		if err != nil {
			return 0, err
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
	return farUpload, nil
}

// bestUploads uploads the bundle of manifest over link l c.reps times one
// part at a time and c.reps times conc parts at a time, interleaved, and
// returns the best time of each.
func (b *bundleBench) bestUploads(ctx context.Context, u *uploadTarget, manifest string, l link, conc int) (one, many time.Duration, err error) {
	c := b.c
	for i := range c.reps {
		c.logf("upload run %d/%d, %s", i+1, c.reps, l)
		d1, err := u.upload(ctx, manifest, 1, i)
		if err != nil {
			return 0, 0, err
		}
		dn, err := u.upload(ctx, manifest, conc, i)
		if err != nil {
			return 0, 0, err
		}
		c.logf("  concurrency 1: %s, %d: %s", secs(d1), conc, secs(dn))
		if i == 0 || d1 < one {
			one = d1
		}
		if i == 0 || dn < many {
			many = dn
		}
	}
	return one, many, nil
}

// streamRow compares, over the cross-region link, a bundle streamed
// straight into S3 with the slower of bundling alone and uploading alone
// (farUpload), and adds the row. The bundler hands every part to a
// bundlestore.Writer as soon as it is made, which is how ami-instance
// uploads.
func (b *bundleBench) streamRow(ctx context.Context, t *table, u *uploadTarget, farUpload time.Duration) error {
	c := b.c
	u.current.Store(&farLink)
	var alone, streamed time.Duration
	out := filepath.Join(c.work, "inproc")
	for i := range c.reps {
		c.logf("streaming run %d/%d, %s", i+1, c.reps, farLink)
		d, s, err := b.streamOnce(ctx, u, out, i)
		if err != nil {
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

// streamOnce bundles the image in this process into out, then again
// straight into S3 under a prefix of run i, and returns the time of each.
func (b *bundleBench) streamOnce(ctx context.Context, u *uploadTarget, out string, i int) (alone, streamed time.Duration, err error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, 0, err
	}
	if alone, err = b.bundleInProcess(ctx, bundle.Dir(out), nil); err != nil {
		return 0, 0, err
	}
	os.RemoveAll(out)
	prefix := fmt.Sprintf("stream-%d", i)
	w, err := bundlestore.NewWriter(ctx, u.s3, &bundlestore.WriterInput{Bucket: u.bucket, Prefix: prefix},
		func(o *bundlestore.Options) { o.DisableResume = true })
	if err != nil {
		return 0, 0, err
	}
	streamed, err = b.bundleInProcess(ctx, w, func(o *bundle.BundleOutput) error {
		_, err := w.Finish(ctx, o.ManifestName, o.ManifestBytes)
		return err
	})
	if err != nil {
		w.Abort()
		return 0, 0, err
	}
	return alone, streamed, u.remove(ctx, prefix)
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
