//go:build unix

package iamprofile_test

import (
	"context"
	"log"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/awscfg"
	"github.com/amiforge/packer-plugin-ami/sdk/iamprofile"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// Launch a build instance that may read build artifacts from S3, with a
// temporary instance profile that is removed afterwards.
func Example() {
	ctx := context.Background()
	sess, err := awscfg.New(ctx, awscfg.Config{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	var l ledger.Ledger
	defer func() {
		undoCtx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := l.Undo(undoCtx); err != nil {
			log.Print(err)
		}
	}()

	profile, err := iamprofile.Create(ctx, sess.IAM(), &iamprofile.CreateInput{
		PolicyDocument: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::artifacts/*"]}]}`,
		Tags:           map[string]string{"Purpose": "image build"},
	}, func(o *iamprofile.Options) { o.Ledger = &l })
	if err != nil {
		log.Fatal(err)
	}
	_, err = instance.Run(ctx, sess.EC2(""), &instance.RunInput{
		ImageID:            "ami-0123456789abcdef0",
		InstanceType:       "t3.small",
		IAMInstanceProfile: profile.ProfileName,
		// EC2 learns about the new profile some seconds after IAM made it.
		IAMProfileWait: 2 * time.Minute,
	}, func(o *instance.Options) { o.Ledger = &l })
	if err != nil {
		log.Fatal(err)
	}
}
