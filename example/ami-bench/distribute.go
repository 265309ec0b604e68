//go:build unix

package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// benchRegions are the copy targets, in order.
var benchRegions = []string{"eu-west-1", "eu-central-1", "us-west-2", "ap-southeast-2", "ap-northeast-1", "sa-east-1", "ca-central-1", "eu-north-1", "ap-south-1", "us-east-2"}

// distributeBench copies an AMI to N regions at once against moto behind a
// proxy that adds c.latency to every EC2 call, and counts the calls.
func distributeBench(ctx context.Context, c *config, t *table) error {
	c.logf("starting moto for the distribution rows")
	m, err := awstest.StartMoto(ctx, awstest.MotoOptions{LoadDefaultAMIs: aws.Bool(false)})
	if err != nil {
		return fmt.Errorf("start moto (%s): %w", awstest.MotoInstallHint, err)
	}
	defer m.Stop()
	p, err := awstest.StartProxy(m.Endpoint, awstest.ProxyOptions{
		Fault: func(*http.Request, awstest.Call) *awstest.Fault { return awstest.LatencyFault(c.latency) },
	})
	if err != nil {
		return err
	}
	defer p.Close()
	clients := regionClients(p.URL)
	direct, _ := awstest.Clients(m.Endpoint, "us-east-1")
	var base time.Duration
	for _, n := range c.regionsNs {
		if n > len(benchRegions) {
			return fmt.Errorf("at most %d regions", len(benchRegions))
		}
		var best time.Duration
		var calls int
		for i := range c.reps {
			name := fmt.Sprintf("bench-%d-%d", n, i)
			src, err := direct.RegisterImage(ctx, &ec2.RegisterImageInput{
				Name: aws.String(name), RootDeviceName: aws.String("/dev/xvda"),
				Architecture: types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
			})
			if err != nil {
				return err
			}
			var targets []distribute.Target
			for _, r := range benchRegions[:n] {
				targets = append(targets, distribute.Target{Region: r})
			}
			p.Reset()
			start := time.Now()
			_, err = distribute.Copy(ctx, clients, &distribute.CopyInput{
				SourceImageID: aws.ToString(src.ImageId), SourceRegion: "us-east-1", Targets: targets,
				Tags: map[string]string{"bench": name}, Concurrency: n,
			})
			d := time.Since(start)
			if err != nil {
				return fmt.Errorf("copy to %d regions: %w", n, err)
			}
			if i == 0 || d < best {
				best, calls = d, len(p.Calls())
			}
		}
		c.logf("  copy to %d regions: %s, %d calls", n, secs(best), calls)
		if n == c.regionsNs[0] {
			base = best
		}
		r := best.Seconds() / base.Seconds()
		t.add(row{
			measure:   fmt.Sprintf("copy AMI to %d region(s), moto + %s per call", n, c.latency),
			ours:      fmt.Sprintf("%s, %d calls (%.1f/region)", secs(best), calls, float64(calls)/float64(n)),
			reference: fmt.Sprintf("%d region(s): %s", c.regionsNs[0], secs(base)),
			ratio:     times(r),
			target:    "≤ 2× one region",
			verdict:   check(r <= 2),
		})
	}
	return nil
}

// pendingImages answers DescribeImages with a pending image until ready,
// counting the calls.
type pendingImages struct {
	ready time.Time
	calls atomic.Int64
}

func (f *pendingImages) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.calls.Add(1)
	state := types.ImageStatePending
	if time.Now().After(f.ready) {
		state = types.ImageStateAvailable
	}
	return &ec2.DescribeImagesOutput{Images: []types.Image{{ImageId: aws.String(in.ImageIds[0]), State: state, Name: aws.String("bench")}}}, nil
}

// waitBench waits with the default WaitOptions for an image that stays
// pending for a while (moto makes copies available at once, so the pending
// image is a stand-in client) and reports the DescribeImages calls per
// minute. It only sleeps, so it runs beside the other measurements.
func waitBench(ctx context.Context, c *config) (row, error) {
	const pending = 2 * time.Minute
	c.logf("waiting %s for a pending image with the default wait options", pending)
	f := &pendingImages{ready: time.Now().Add(pending)}
	start := time.Now()
	if _, err := image.Wait(ctx, f, &image.WaitInput{ImageID: "ami-12345678", Region: "us-east-1"}); err != nil {
		return row{}, err
	}
	d := time.Since(start)
	perMin := float64(f.calls.Load()) / d.Minutes()
	return row{
		measure:   fmt.Sprintf("image wait polling (image pending %s, default waits)", pending),
		ours:      fmt.Sprintf("%d calls in %s", f.calls.Load(), secs(d)),
		reference: "",
		ratio:     fmt.Sprintf("%.1f calls/min", perMin),
		target:    "≤ 10 calls/min",
		verdict:   check(perMin <= 10),
	}, nil
}

// regionClients returns a ClientFunc making one EC2 client per region, all
// against url (a proxy in front of moto).
func regionClients(url string) distribute.ClientFunc {
	var mu sync.Mutex
	cache := map[string]*ec2.Client{}
	return func(region string) distribute.API {
		mu.Lock()
		defer mu.Unlock()
		if cl := cache[region]; cl != nil {
			return cl
		}
		cl, _ := awstest.Clients(url, region)
		cache[region] = cl
		return cl
	}
}
