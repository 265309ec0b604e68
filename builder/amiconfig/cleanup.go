package amiconfig

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// CleanupTimeout bounds the work of one step's Cleanup. Cleanup runs with a
// fresh context, because the run's context is already cancelled when the
// user pressed Ctrl-C.
const CleanupTimeout = 15 * time.Minute

// CleanupContext returns the bounded context a step's Cleanup (or an
// artifact's Destroy) works in: not cancelled with the run, ending after
// CleanupTimeout.
func CleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), CleanupTimeout)
}

// EC2Deregister adapts an EC2 client function to the EC2 field of an artifact whose Destroy deregisters its AMIs.
func EC2Deregister(client func(region string) *ec2.Client) func(region string) image.DeregisterAPI {
	return func(region string) image.DeregisterAPI { return client(region) }
}
