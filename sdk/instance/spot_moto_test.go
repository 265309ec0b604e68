//go:build unix

package instance_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// TestRunSpotOnMoto launches a spot instance through an instant fleet on
// moto and undoes the ledger: the fleet is deleted, the instance
// terminated and the launch template deleted.
func TestRunSpotOnMoto(t *testing.T) {
	moto := awstest.NewMoto(t, awstest.MotoOptions{})
	client, _ := awstest.Clients(moto.Endpoint, region)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ami := sourceAMI(t, ctx, client)

	var l ledger.Ledger
	out, err := instance.RunSpot(ctx, client, &instance.RunSpotInput{
		RunInput: instance.RunInput{
			ImageID: ami,
			Tags:    map[string]string{"Team": "data"},
			Wait:    quick,
		},
		InstanceTypes:      []string{"c5.xlarge", "c6i.xlarge"},
		MaxPrice:           "0.08",
		AllocationStrategy: "capacity-optimized",
		SpotTags:           map[string]string{"Name": "spot-request"},
		FleetTags:          map[string]string{"Fleet": "build"},
	}, fast, func(o *instance.Options) { o.Ledger = &l; o.Logf = t.Logf })
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instance.InstanceId)
	if out.Instance.InstanceLifecycle != types.InstanceLifecycleTypeSpot {
		t.Errorf("instance lifecycle %q, want spot", out.Instance.InstanceLifecycle)
	}
	if it := string(out.Instance.InstanceType); !slices.Contains([]string{"c5.xlarge", "c6i.xlarge"}, it) {
		t.Errorf("instance type %s is not one of those asked for", it)
	}
	tags := map[string]string{}
	for _, tg := range out.Instance.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["Team"] != "data" || tags[instance.CreateTokenTag] != out.ClientToken {
		t.Errorf("instance tags %v, want Team and the create token %s", tags, out.ClientToken)
	}
	lts, err := client.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{out.LaunchTemplateID}})
	if err != nil || len(lts.LaunchTemplates) != 1 {
		t.Fatalf("describe launch template %s: %v", out.LaunchTemplateID, err)
	}
	if name := aws.ToString(lts.LaunchTemplates[0].LaunchTemplateName); name != out.LaunchTemplateName || !strings.HasPrefix(name, "ami-build-fleet-") {
		t.Errorf("launch template name %q, output says %q", name, out.LaunchTemplateName)
	}
	fleets, err := client.DescribeFleets(ctx, &ec2.DescribeFleetsInput{FleetIds: []string{out.FleetID}})
	if err != nil || len(fleets.Fleets) != 1 {
		t.Fatalf("describe fleet %s: %v", out.FleetID, err)
	}
	fleetTags := map[string]string{}
	for _, tg := range fleets.Fleets[0].Tags {
		fleetTags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if f := fleets.Fleets[0]; f.Type != types.FleetTypeInstant || fleetTags["Fleet"] != "build" || fleetTags[instance.CreateTokenTag] != out.ClientToken {
		t.Errorf("fleet type %s tags %v", f.Type, fleetTags)
	}

	if err := l.Undo(ctx); err != nil {
		t.Fatalf("undo: %v", err)
	}
	desc, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.Reservations[0].Instances[0].State.Name; st != types.InstanceStateNameTerminated {
		t.Errorf("instance %s is %s after the undo", id, st)
	}
	lts, err = client.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lts.LaunchTemplates) != 0 {
		t.Errorf("launch templates left: %+v", lts.LaunchTemplates)
	}
	fleets, err = client.DescribeFleets(ctx, &ec2.DescribeFleetsInput{FleetIds: []string{out.FleetID}})
	if err != nil {
		t.Fatal(err)
	}
	if st := string(fleets.Fleets[0].FleetState); !strings.HasPrefix(st, "deleted") {
		t.Errorf("fleet %s is %s after the undo", out.FleetID, st)
	}
}
