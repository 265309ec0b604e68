//go:build unix

package awstest

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

func TestEventualConsistencyDecisions(t *testing.T) {
	type step struct {
		service, action string
		params          url.Values
		want            string // fault code, "" for none
	}
	ids := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	const (
		oldAMI  = "ami-0000000000000000a"
		newAMI  = "ami-1111111111111111b"
		newSnap = "snap-22222222222222222"
		newInst = "i-3333333333333333c"
	)
	tests := []struct {
		name  string
		opts  ConsistencyOptions
		steps []step
	}{
		{
			name: "new image fails twice then works; old image never fails",
			steps: []step{
				{"ec2", "DescribeImages", ids("ImageId.1", oldAMI), ""},
				{"ec2", "CreateImage", ids("InstanceId", newInst), ""},
				{"ec2", "DescribeImages", ids("ImageId.1", newAMI), "InvalidAMIID.NotFound"},
				{"ec2", "DescribeImages", ids("ImageId.1", oldAMI), ""},
				{"ec2", "DescribeImages", ids("ImageId.1", newAMI), "InvalidAMIID.NotFound"},
				{"ec2", "DescribeImages", ids("ImageId.1", newAMI), ""},
				{"ec2", "CreateTags", ids("ResourceId.1", newSnap), "InvalidSnapshot.NotFound"},
				{"ec2", "CreateTags", ids("ResourceId.1", newSnap), "InvalidSnapshot.NotFound"},
				{"ec2", "CreateTags", ids("ResourceId.1", newSnap), ""},
			},
		},
		{
			name: "spared actions pass but still count as seen",
			opts: ConsistencyOptions{Calls: 1},
			steps: []step{
				{"ec2", "RunInstances", ids("ImageId", oldAMI), ""},
				{"ec2", "TerminateInstances", ids("InstanceId.1", newInst), ""},
				{"ec2", "DescribeInstances", ids("InstanceId.1", newInst), "InvalidInstanceID.NotFound"},
				{"ec2", "DescribeInstances", ids("InstanceId.1", newInst), ""},
			},
		},
		{
			name: "an id first named outside the window is not new",
			opts: ConsistencyOptions{Window: 2},
			steps: []step{
				{"ec2", "CopyImage", ids("SourceImageId", oldAMI), ""},
				{"ec2", "DescribeRegions", nil, ""},
				{"ec2", "DescribeRegions", nil, ""},
				{"ec2", "DescribeImages", ids("ImageId.1", newAMI), ""},
			},
		},
		{
			name: "other services and unrelated kinds are left alone",
			steps: []step{
				{"ec2", "RunInstances", ids("ImageId", oldAMI), ""},
				{"s3", "GetObject", ids("x", newInst), ""},
				{"ec2", "DescribeImages", ids("ImageId.1", newAMI), ""},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := EventualConsistency(tc.opts)
			for i, s := range tc.steps {
				got := f(nil, Call{Service: s.service, Action: s.action, Params: s.params})
				code := ""
				if got != nil {
					code = got.Code
					if got.Status != 400 {
						t.Errorf("step %d: status %d, want 400", i, got.Status)
					}
				}
				if code != s.want {
					t.Errorf("step %d (%s %v): fault %q, want %q", i, s.action, s.params, code, s.want)
				}
			}
		})
	}
}

// Through the proxy and moto, with the SDK: a new instance is invisible to
// the first two describes.
func TestEventualConsistencyThroughProxy(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Fault: EventualConsistency(ConsistencyOptions{})})
	c, _ := Clients(p.URL, "ca-central-1")
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	defer c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	for i, want := range []string{"InvalidInstanceID.NotFound", "InvalidInstanceID.NotFound", ""} {
		_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		var ae smithy.APIError
		got := ""
		if errors.As(err, &ae) {
			got = ae.ErrorCode()
		} else if err != nil {
			t.Fatalf("describe %d: %v", i, err)
		}
		if got != want {
			t.Errorf("describe %d: error code %q, want %q", i, got, want)
		}
	}
	if n := len(p.CallsFor("ec2", "DescribeInstances")); n != 3 {
		t.Errorf("recorded %d DescribeInstances calls, want 3", n)
	}
}
