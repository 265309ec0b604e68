//go:build unix

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// decoys are resources that exist before any run and that no run may
// change: an AMI in every region (named like the builds' AMIs), a key
// pair, a security group, a running instance and S3 objects beside the
// bundles.
type decoys struct {
	amis      map[string]string // region → AMI
	keyPair   string
	group     string // security group id
	instance  string
	objects   map[string][]byte // key → content
	decoyTags map[string]string
}

const decoyPrefix = "e2e-" // builds name their AMIs e2e-…, so do the decoys

func makeDecoys(ctx context.Context, w *world) (decoys, error) {
	d := decoys{
		amis:      map[string]string{},
		keyPair:   "e2e-decoy-key",
		objects:   map[string][]byte{"rel/keep.txt": []byte("decoy object beside the bundles\n"), "rel/e2e-decoy/image.manifest.xml": []byte("<manifest/>\n")},
		decoyTags: map[string]string{"Decoy": "yes", "Family": "e2e-family"},
	}
	for _, r := range allRegions {
		id, err := registerAMI(ctx, w.ec2[r], decoyPrefix+"decoy-"+r, d.decoyTags)
		if err != nil {
			return d, err
		}
		d.amis[r] = id
	}
	c := w.ec2[buildRegion]
	if _, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(d.keyPair)}); err != nil {
		return d, fmt.Errorf("create key pair: %w", err)
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("e2e-decoy-sg"), Description: aws.String("decoy"),
	})
	if err != nil {
		return d, fmt.Errorf("create security group: %w", err)
	}
	d.group = aws.ToString(sg.GroupId)
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(ebsSourceAMI), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), KeyName: aws.String(d.keyPair),
		SecurityGroupIds: []string{d.group},
	})
	if err != nil {
		return d, fmt.Errorf("run instance: %w", err)
	}
	d.instance = aws.ToString(run.Instances[0].InstanceId)
	for k, v := range d.objects {
		if _, err := w.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(v)}); err != nil {
			return d, fmt.Errorf("put %s: %w", k, err)
		}
	}
	return d, nil
}

// ids returns every decoy id and name.
func (d decoys) ids() []string {
	ids := []string{d.keyPair, d.group, d.instance}
	for _, id := range d.amis {
		ids = append(ids, id)
	}
	return ids
}

// checkDecoys fails the test when a decoy changed or when the last run sent
// a mutating call naming one.
func (w *world) checkDecoys(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	d := w.decoys
	for r, id := range d.amis {
		img, ok := w.describeImage(t, r, id)
		if !ok {
			t.Errorf("decoy AMI %s in %s is gone", id, r)
			continue
		}
		if got := tagMap(img.Tags); fmt.Sprint(got) != fmt.Sprint(d.decoyTags) {
			t.Errorf("decoy AMI %s tags = %v, want %v", id, got, d.decoyTags)
		}
		if img.Public != nil && *img.Public {
			t.Errorf("decoy AMI %s became public", id)
		}
		attr, err := w.ec2[r].DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
			ImageId: aws.String(id), Attribute: types.ImageAttributeNameLaunchPermission,
		})
		if err != nil {
			t.Errorf("decoy AMI %s launch permissions: %v", id, err)
		} else if len(attr.LaunchPermissions) != 0 {
			t.Errorf("decoy AMI %s was shared: %v", id, attr.LaunchPermissions)
		}
	}
	c := w.ec2[buildRegion]
	if _, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{d.keyPair}}); err != nil {
		t.Errorf("decoy key pair %s: %v", d.keyPair, err)
	}
	if _, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{d.group}}); err != nil {
		t.Errorf("decoy security group %s: %v", d.group, err)
	}
	inst, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{d.instance}})
	if err != nil || len(inst.Reservations) == 0 {
		t.Errorf("decoy instance %s: %v", d.instance, err)
	} else if st := inst.Reservations[0].Instances[0].State; st == nil || st.Name != types.InstanceStateNameRunning {
		t.Errorf("decoy instance %s is %v, want running", d.instance, st)
	}
	for k, v := range d.objects {
		got, err := w.readObject(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("decoy object s3://%s/%s: %q, %v; want it unchanged", bucket, k, got, err)
		}
	}
	for _, call := range w.proxy.Calls() {
		if readOnly(call.Action) {
			continue
		}
		for _, vs := range call.Params {
			for _, v := range vs {
				for _, id := range d.ids() {
					if v == id {
						t.Errorf("the run called %s in %s naming decoy %s", call.Action, call.Region, id)
					}
				}
			}
		}
		if call.Service == "s3" {
			if _, ok := d.objects[call.Key]; ok {
				t.Errorf("the run called s3 %s on decoy object %s", call.Action, call.Key)
			}
		}
	}
}

func readOnly(action string) bool {
	for _, p := range []string{"Describe", "Get", "List", "Head"} {
		if strings.HasPrefix(action, p) {
			return true
		}
	}
	return false
}
