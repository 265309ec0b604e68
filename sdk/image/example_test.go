//go:build unix

package image_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Find the latest Ubuntu AMI, then tag an image of our own.
func Example() {
	ctx := context.Background()
	sess, err := awscfg.New(ctx, awscfg.Config{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	client := sess.EC2("")

	src, err := image.Find(ctx, client, &image.FindInput{
		Owners:     []string{"099720109477"},
		Filters:    map[string][]string{"name": {"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"}},
		MostRecent: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("source:", aws.ToString(src.Image.ImageId))

	_, err = image.Tag(ctx, client, &image.TagInput{
		ImageID:      "ami-0123456789abcdef0",
		Tags:         map[string]string{"Name": "web", "team": "platform"},
		SnapshotTags: map[string]string{"Name": "web-root"},
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Create an image, removing it again if a later step fails.
func ExampleCreate() {
	ctx := context.Background()
	sess, err := awscfg.New(ctx, awscfg.Config{Region: "eu-west-1"})
	if err != nil {
		log.Fatal(err)
	}
	var l ledger.Ledger
	out, err := image.Create(ctx, sess.EC2(""), &image.CreateInput{
		InstanceID: "i-0123456789abcdef0",
		Name:       "web-" + time.Now().UTC().Format("20060102-150405"),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeImage,
			Tags:         []types.Tag{{Key: aws.String("team"), Value: aws.String("platform")}},
		}},
		Wait: image.WaitOptions{MaxWait: 30 * time.Minute},
	}, func(o *image.Options) { o.Ledger = &l; o.Logf = log.Printf })
	var se *image.StateError
	switch {
	case errors.As(err, &se):
		log.Printf("image %s ended %s: %s", se.ImageID, se.State, se.Reason)
	case err != nil:
		log.Print(err)
	}
	if err != nil {
		undoCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		log.Fatal(errors.Join(err, l.Undo(undoCtx)))
	}
	l.Forget(ledger.KindImage, out.ImageID) // keep it
	fmt.Println(out.ImageID, out.SnapshotIDs)
}
