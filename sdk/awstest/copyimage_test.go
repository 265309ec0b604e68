//go:build unix

package awstest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// sourceImage registers an AMI in region for copy tests.
func sourceImage(t *testing.T, c *ec2.Client, region, name string) string {
	t.Helper()
	out, err := c.RegisterImage(context.Background(), &ec2.RegisterImageInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("RegisterImage in %s: %v", region, err)
	}
	return aws.ToString(out.ImageId)
}

func copyInput(src, name, token string) *ec2.CopyImageInput {
	return &ec2.CopyImageInput{
		SourceImageId: aws.String(src), SourceRegion: aws.String("us-east-1"), Name: aws.String(name),
		ClientToken: aws.String(token),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeImage, Tags: []ec2types.Tag{{Key: aws.String("run"), Value: aws.String(token)}}},
			{ResourceType: ec2types.ResourceTypeSnapshot, Tags: []ec2types.Tag{{Key: aws.String("snap-run"), Value: aws.String(token)}}},
		},
	}
}

// imagesNamed lists the AMIs named name in region, straight from moto.
func imagesNamed(t *testing.T, region, name string) []ec2types.Image {
	t.Helper()
	c, _ := ObserverClients(sharedMoto.Endpoint, region)
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{name}}},
	})
	if err != nil {
		t.Fatalf("DescribeImages in %s: %v", region, err)
	}
	return out.Images
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, tg := range tags {
		if aws.ToString(tg.Key) == key {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

func TestProxyCopyImageTokenAndTags(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	srcClient, _ := Clients(p.URL, "us-east-1")
	src := sourceImage(t, srcClient, "us-east-1", "proxy-copy-src")
	const region = "eu-west-3"
	c, _ := Clients(p.URL, region)

	first, err := c.CopyImage(ctx, copyInput(src, "proxy-copy-a", "token-a"))
	if err != nil {
		t.Fatalf("CopyImage: %v", err)
	}
	again, err := c.CopyImage(ctx, copyInput(src, "proxy-copy-a", "token-a"))
	if err != nil {
		t.Fatalf("CopyImage again: %v", err)
	}
	if aws.ToString(again.ImageId) != aws.ToString(first.ImageId) {
		t.Errorf("repeated token answered %s, want %s", aws.ToString(again.ImageId), aws.ToString(first.ImageId))
	}
	imgs := imagesNamed(t, region, "proxy-copy-a")
	if len(imgs) != 1 {
		t.Fatalf("%d images named proxy-copy-a, want 1", len(imgs))
	}
	if got := tagValue(imgs[0].Tags, "run"); got != "token-a" {
		t.Errorf("image tag run = %q, want token-a", got)
	}
	obs, _ := ObserverClients(sharedMoto.Endpoint, region)
	for _, m := range imgs[0].BlockDeviceMappings {
		if m.Ebs == nil || m.Ebs.SnapshotId == nil {
			continue
		}
		out, err := obs.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*m.Ebs.SnapshotId}})
		if err != nil || len(out.Snapshots) != 1 {
			t.Fatalf("DescribeSnapshots %s: %v", *m.Ebs.SnapshotId, err)
		}
		if got := tagValue(out.Snapshots[0].Tags, "snap-run"); got != "token-a" {
			t.Errorf("snapshot %s tag snap-run = %q, want token-a", *m.Ebs.SnapshotId, got)
		}
	}
	calls := p.CallsFor("ec2", "CopyImage")
	if len(calls) != 2 || calls[0].Emulated != "image tags applied, snapshot tags applied" || calls[1].Emulated == "" {
		t.Errorf("CopyImage calls recorded as %q and %q", calls[0].Emulated, calls[len(calls)-1].Emulated)
	}

	// Another token makes another copy (a new name, as EC2 requires).
	other, err := c.CopyImage(ctx, copyInput(src, "proxy-copy-b", "token-b"))
	if err != nil {
		t.Fatalf("CopyImage token-b: %v", err)
	}
	if aws.ToString(other.ImageId) == aws.ToString(first.ImageId) {
		t.Error("a new token was answered with the first copy")
	}
}

// A request the client abandoned while the proxy held it is still carried
// out afterwards (Fault.Detach); a replay with its token, sent while it is
// held, is answered with the one copy it made.
func TestProxyDetachedCopyAndReplay(t *testing.T) {
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	srcClient, _ := Clients(p.URL, "us-east-1")
	src := sourceImage(t, srcClient, "us-east-1", "proxy-detach-src")
	const region = "eu-south-1"
	arrived := make(chan struct{}, 1)
	p.SetFault(func(_ *http.Request, c Call) *Fault {
		if c.Action != "CopyImage" {
			return nil
		}
		arrived <- struct{}{}
		return &Fault{Delay: 200 * time.Millisecond, Detach: true}
	})
	c, _ := Clients(p.URL, region)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.CopyImage(ctx, copyInput(src, "proxy-detach", "token-d"))
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned CopyImage: %v, want context.Canceled", err)
	}
	p.SetFault(nil)
	out, err := c.CopyImage(context.Background(), copyInput(src, "proxy-detach", "token-d"))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	imgs := imagesNamed(t, region, "proxy-detach")
	if len(imgs) != 1 || aws.ToString(imgs[0].ImageId) != aws.ToString(out.ImageId) {
		t.Fatalf("images named proxy-detach: %d, replay answered %s", len(imgs), aws.ToString(out.ImageId))
	}
}

// With RawCopyImage the proxy forwards CopyImage as sent: moto makes a new
// image for every call, whatever its token.
func TestProxyRawCopyImage(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{RawCopyImage: true})
	srcClient, _ := Clients(p.URL, "us-east-1")
	src := sourceImage(t, srcClient, "us-east-1", "proxy-raw-src")
	const region = "eu-central-2"
	c, _ := Clients(p.URL, region)
	for range 2 {
		if _, err := c.CopyImage(ctx, copyInput(src, "proxy-raw", "token-r")); err != nil {
			t.Fatalf("CopyImage: %v", err)
		}
	}
	if n := len(imagesNamed(t, region, "proxy-raw")); n != 2 {
		t.Errorf("%d images named proxy-raw, want moto's 2", n)
	}
}

// moto drops RegisterImage's tag specifications; the proxy applies them,
// unless RawRegisterImage.
func TestProxyRegisterImageTags(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []bool{false, true} {
		p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{RawRegisterImage: raw})
		c, _ := Clients(p.URL, "ap-northeast-3")
		name := "proxy-register-tags"
		if raw {
			name += "-raw"
		}
		out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
			Name: aws.String(name),
			TagSpecifications: []ec2types.TagSpecification{{
				ResourceType: ec2types.ResourceTypeImage, Tags: []ec2types.Tag{{Key: aws.String("Team"), Value: aws.String("web")}},
			}},
		})
		if err != nil {
			t.Fatalf("RegisterImage: %v", err)
		}
		imgs := imagesNamed(t, "ap-northeast-3", name)
		if len(imgs) != 1 || aws.ToString(imgs[0].ImageId) != aws.ToString(out.ImageId) {
			t.Fatalf("images named %s: %+v", name, imgs)
		}
		want := "web"
		if raw {
			want = "" // moto's own behaviour
		}
		if got := tagValue(imgs[0].Tags, "Team"); got != want {
			t.Errorf("raw %v: tag Team = %q, want %q", raw, got, want)
		}
	}
}
