package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundlestore"
)

// uploadBench uploads the bundle in dir to moto through a proxy that adds
// a latency to every PUT, one part at a time and with bundlestore's default
// concurrency, once with c.latency and once with c.wanLatency. moto is a
// single Python process that uses one core, so without the added latency it
// is the bottleneck and concurrency shows little; the latency stands for
// the round trip and transfer time of a 10 MiB part to a distant S3
// endpoint (c.wanLatency: about 20 MB/s per connection), which is what
// concurrent uploads hide.
func uploadBench(ctx context.Context, c *config, dir string, t *table) error {
	c.logf("starting moto for the upload rows")
	m, err := awstest.StartMoto(ctx, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	if err != nil {
		return fmt.Errorf("start moto (%s): %w", awstest.MotoInstallHint, err)
	}
	defer m.Stop()
	var latency atomic.Int64
	p, err := awstest.StartProxy(m.Endpoint, awstest.ProxyOptions{
		Fault: func(_ *http.Request, call awstest.Call) *awstest.Fault {
			if call.Action == "PutObject" {
				return awstest.LatencyFault(time.Duration(latency.Load()))
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
		// Free moto's memory before the next run.
		_, err = bundlestore.Delete(ctx, s3c, &bundlestore.DeleteInput{Bucket: bucket, Prefix: prefix, Name: "img"})
		return d, err
	}
	conc := bundlestore.DefaultConcurrency
	for _, lat := range []time.Duration{c.latency, c.wanLatency} {
		latency.Store(int64(lat))
		var one, many time.Duration
		for i := range c.reps {
			c.logf("upload run %d/%d, %s per PUT", i+1, c.reps, lat)
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
		t.add(row{
			measure:   fmt.Sprintf("S3 upload, %d parts (%s), moto + %s per PUT: concurrency %d vs 1", len(m0.Parts), mib(m0.BundledSize), lat, conc),
			ours:      secs(many),
			reference: secs(one),
			ratio:     times(r),
			target:    "≥ 3×",
			verdict:   check(r >= 3),
		})
	}
	return nil
}
