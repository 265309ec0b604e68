//go:build unix

package awstest_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// Start moto, put a recording proxy in front of it, run the code under
// test through the proxy, then look at what it sent and at what it left
// behind. In a test, use NewMoto and NewProxy, which clean up through
// t.Cleanup.
func Example() {
	ctx := context.Background()
	noAMIs := false
	moto, err := awstest.StartMoto(ctx, awstest.MotoOptions{LoadDefaultAMIs: &noAMIs})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer moto.Stop()
	proxy, err := awstest.StartProxy(moto.Endpoint, awstest.ProxyOptions{})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer proxy.Close()
	regions := []string{"eu-west-1"}
	baseline, err := awstest.TakeSnapshot(ctx, moto.Endpoint, regions)
	if err != nil {
		fmt.Println("error:", err)
		return
	}

	// The code under test creates a key pair and forgets to delete it.
	ec2c, _ := awstest.Clients(proxy.URL, "eu-west-1")
	if _, err := ec2c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("demo")}); err != nil {
		fmt.Println("error:", err)
		return
	}

	for _, c := range proxy.CallsFor("ec2", "") {
		fmt.Println(c.Service, c.Region, c.Action, c.Params.Get("KeyName"), c.Status)
	}
	leaks, err := awstest.ListLeaks(ctx, moto.Endpoint, regions, baseline)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(leaks)
	// Output:
	// ec2 eu-west-1 CreateKeyPair demo 200
	// 1 key pairs: eu-west-1:demo
}
