//go:build unix

package awstest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/errgroup"
)

// Leaks lists resources found in the emulator that were not in the
// baseline. EC2 entries are "region:id" (key pairs "region:name"), S3
// buckets "bucket", objects "bucket/key" and unfinished multipart uploads
// "bucket/key#uploadId", IAM roles and instance profiles their ARN (IAM is
// global). Each list is sorted.
type Leaks struct {
	Instances        []string // not terminated
	KeyPairs         []string
	SecurityGroups   []string // other than "default"
	Images           []string // owned by the caller
	Snapshots        []string // owned by the caller
	Volumes          []string
	LaunchTemplates  []string
	Fleets           []string // EC2 Fleets not deleted
	S3Buckets        []string
	S3Objects        []string
	MultipartUploads []string
	IAMRoles         []string
	IAMProfiles      []string // instance profiles
}

func (l *Leaks) lists() []struct {
	name string
	ids  *[]string
} {
	return []struct {
		name string
		ids  *[]string
	}{
		{"instances", &l.Instances},
		{"key pairs", &l.KeyPairs},
		{"security groups", &l.SecurityGroups},
		{"images", &l.Images},
		{"snapshots", &l.Snapshots},
		{"volumes", &l.Volumes},
		{"launch templates", &l.LaunchTemplates},
		{"fleets", &l.Fleets},
		{"S3 buckets", &l.S3Buckets},
		{"S3 objects", &l.S3Objects},
		{"S3 multipart uploads", &l.MultipartUploads},
		{"IAM roles", &l.IAMRoles},
		{"IAM instance profiles", &l.IAMProfiles},
	}
}

// Empty reports whether nothing leaked.
func (l Leaks) Empty() bool { return l.Count() == 0 }

// Count returns the number of leaked resources.
func (l Leaks) Count() int {
	n := 0
	for _, k := range l.lists() {
		n += len(*k.ids)
	}
	return n
}

// String lists the leaks one kind per line, or "no leaks".
func (l Leaks) String() string {
	var b strings.Builder
	for _, k := range l.lists() {
		if len(*k.ids) > 0 {
			fmt.Fprintf(&b, "%d %s: %s\n", len(*k.ids), k.name, strings.Join(*k.ids, ", "))
		}
	}
	if b.Len() == 0 {
		return "no leaks"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Snapshot is the state of the emulator at one point in time, used as the
// baseline of [ListLeaks]. Take it with [TakeSnapshot].
type Snapshot struct {
	found Leaks
	set   map[string]bool // "kind\x00id"
}

// Resources returns everything the snapshot saw, in the shape of Leaks.
func (s *Snapshot) Resources() Leaks { return s.found }

func (s *Snapshot) has(kind, id string) bool { return s.set[kind+"\x00"+id] }

// TakeSnapshot lists the resources that exist now in regions (and in S3
// and IAM),
// to be passed to [ListLeaks] later.
func TakeSnapshot(ctx context.Context, endpoint string, regions []string) (*Snapshot, error) {
	found, err := inventory(ctx, endpoint, regions)
	if err != nil {
		return nil, fmt.Errorf("take snapshot: %w", err)
	}
	s := &Snapshot{found: found, set: map[string]bool{}}
	for _, k := range found.lists() {
		for _, id := range *k.ids {
			s.set[k.name+"\x00"+id] = true
		}
	}
	return s, nil
}

// ListLeaks lists the resources in regions (and in S3) that are not in
// baseline. A nil baseline reports everything except default security
// groups; with moto's preloaded AMIs that includes their snapshots, so
// take a baseline first.
func ListLeaks(ctx context.Context, endpoint string, regions []string, baseline *Snapshot) (Leaks, error) {
	found, err := inventory(ctx, endpoint, regions)
	if err != nil {
		return Leaks{}, fmt.Errorf("list leaks: %w", err)
	}
	if baseline == nil {
		return found, nil
	}
	for _, k := range found.lists() {
		*k.ids = slices.DeleteFunc(*k.ids, func(id string) bool { return baseline.has(k.name, id) })
		if len(*k.ids) == 0 {
			*k.ids = nil
		}
	}
	return found, nil
}

// inventory lists everything in regions (and S3 and IAM), fanning out over regions (at most
// four at a time; the first error cancels the rest).
func inventory(ctx context.Context, endpoint string, regions []string) (Leaks, error) {
	if len(regions) == 0 {
		return Leaks{}, fmt.Errorf("no regions given")
	}
	account, err := accountID(ctx, endpoint, regions[0])
	if err != nil {
		return Leaks{}, err
	}
	var (
		mu  sync.Mutex
		all Leaks
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, region := range slices.Compact(slices.Sorted(slices.Values(regions))) {
		g.Go(func() error {
			r, err := regionInventory(gctx, endpoint, region, account)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			dst, src := all.lists(), r.lists()
			for i := range dst {
				*dst[i].ids = append(*dst[i].ids, *src[i].ids...)
			}
			return nil
		})
	}
	g.Go(func() error {
		r, err := s3Inventory(gctx, endpoint, regions[0])
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		all.S3Buckets, all.S3Objects, all.MultipartUploads = r.S3Buckets, r.S3Objects, r.MultipartUploads
		return nil
	})
	g.Go(func() error {
		r, err := iamInventory(gctx, endpoint, regions[0])
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		all.IAMRoles, all.IAMProfiles = r.IAMRoles, r.IAMProfiles
		return nil
	})
	if err := g.Wait(); err != nil {
		return Leaks{}, err
	}
	for _, k := range all.lists() {
		slices.Sort(*k.ids)
	}
	return all, nil
}

func accountID(ctx context.Context, endpoint, region string) (string, error) {
	// An observer's call: retried like ObserverClients' calls.
	out, err := sts.NewFromConfig(observerConfig(endpoint, region)).GetCallerIdentity(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("get caller identity: %w", err)
	}
	return aws.ToString(out.Account), nil
}

// regionInventory lists the EC2 resources of one region that a run can
// leave behind.
func regionInventory(ctx context.Context, endpoint, region, account string) (Leaks, error) {
	c, _ := ObserverClients(endpoint, region)
	r := &regionLister{c: c, region: region, account: account}
	for _, kind := range []struct {
		name string
		list func(context.Context) error
	}{
		{"instances", r.instances},
		{"key pairs", r.keyPairs},
		{"security groups", r.securityGroups},
		{"images", r.images},
		{"snapshots", r.snapshots},
		{"volumes", r.volumes},
		{"launch templates", r.launchTemplates},
		{"fleets", r.fleets},
	} {
		if err := kind.list(ctx); err != nil {
			return r.found, fmt.Errorf("describe %s in %s: %w", kind.name, region, err)
		}
	}
	return r.found, nil
}

// regionLister gathers the EC2 resources of one region into found, one
// kind per method, each entry named "region:id".
type regionLister struct {
	c               *ec2.Client
	region, account string
	found           Leaks
}

// id names a resource of the region by its id (or key pair name).
func (r *regionLister) id(s *string) string { return r.region + ":" + aws.ToString(s) }

// instances lists the instances that are not terminated.
func (r *regionLister) instances(ctx context.Context) error {
	return eachPage(ctx, ec2.NewDescribeInstancesPaginator(r.c, &ec2.DescribeInstancesInput{}), func(page *ec2.DescribeInstancesOutput) {
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				if in.State == nil || in.State.Name != ec2types.InstanceStateNameTerminated {
					r.found.Instances = append(r.found.Instances, r.id(in.InstanceId))
				}
			}
		}
	})
}

// keyPairs lists the key pairs by name.
func (r *regionLister) keyPairs(ctx context.Context) error {
	keys, err := r.c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		return err
	}
	for _, k := range keys.KeyPairs {
		r.found.KeyPairs = append(r.found.KeyPairs, r.id(k.KeyName))
	}
	return nil
}

// securityGroups lists the security groups other than the default ones.
func (r *regionLister) securityGroups(ctx context.Context) error {
	return eachPage(ctx, ec2.NewDescribeSecurityGroupsPaginator(r.c, &ec2.DescribeSecurityGroupsInput{}), func(page *ec2.DescribeSecurityGroupsOutput) {
		for _, g := range page.SecurityGroups {
			if aws.ToString(g.GroupName) != "default" {
				r.found.SecurityGroups = append(r.found.SecurityGroups, r.id(g.GroupId))
			}
		}
	})
}

// images lists the caller's own images, deprecated ones included.
func (r *regionLister) images(ctx context.Context) error {
	in := &ec2.DescribeImagesInput{Owners: []string{"self"}, IncludeDeprecated: aws.Bool(true)}
	return eachPage(ctx, ec2.NewDescribeImagesPaginator(r.c, in), func(page *ec2.DescribeImagesOutput) {
		for _, im := range page.Images {
			r.found.Images = append(r.found.Images, r.id(im.ImageId))
		}
	})
}

// snapshots lists the caller's own snapshots. OwnerIds=self also returns
// moto's ~1,160 preloaded snapshots per region (0.4 s); the owner-id
// filter returns only the caller's (10 ms).
func (r *regionLister) snapshots(ctx context.Context) error {
	in := &ec2.DescribeSnapshotsInput{
		Filters: []ec2types.Filter{{Name: aws.String("owner-id"), Values: []string{r.account}}},
	}
	return eachPage(ctx, ec2.NewDescribeSnapshotsPaginator(r.c, in), func(page *ec2.DescribeSnapshotsOutput) {
		for _, s := range page.Snapshots {
			r.found.Snapshots = append(r.found.Snapshots, r.id(s.SnapshotId))
		}
	})
}

// volumes lists every volume.
func (r *regionLister) volumes(ctx context.Context) error {
	return eachPage(ctx, ec2.NewDescribeVolumesPaginator(r.c, &ec2.DescribeVolumesInput{}), func(page *ec2.DescribeVolumesOutput) {
		for _, v := range page.Volumes {
			r.found.Volumes = append(r.found.Volumes, r.id(v.VolumeId))
		}
	})
}

// launchTemplates lists every launch template.
func (r *regionLister) launchTemplates(ctx context.Context) error {
	return eachPage(ctx, ec2.NewDescribeLaunchTemplatesPaginator(r.c, &ec2.DescribeLaunchTemplatesInput{}), func(page *ec2.DescribeLaunchTemplatesOutput) {
		for _, t := range page.LaunchTemplates {
			r.found.LaunchTemplates = append(r.found.LaunchTemplates, r.id(t.LaunchTemplateId))
		}
	})
}

// fleets lists the EC2 Fleets not deleted: a deleted fleet stays listed
// for a while in a deleted* state.
func (r *regionLister) fleets(ctx context.Context) error {
	return eachPage(ctx, ec2.NewDescribeFleetsPaginator(r.c, &ec2.DescribeFleetsInput{}), func(page *ec2.DescribeFleetsOutput) {
		for _, f := range page.Fleets {
			if !strings.HasPrefix(string(f.FleetState), "deleted") {
				r.found.Fleets = append(r.found.Fleets, r.id(f.FleetId))
			}
		}
	})
}

// paginator is the shape of the AWS SDK's paginators.
type paginator[Page, Options any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*Options)) (Page, error)
}

// eachPage hands every page of a listing to fn, stopping at the first
// error.
func eachPage[Page, Options any](ctx context.Context, p paginator[Page, Options], fn func(Page)) error {
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		fn(page)
	}
	return nil
}

// s3Inventory lists the S3 buckets, their objects and their unfinished
// multipart uploads.
func s3Inventory(ctx context.Context, endpoint, region string) (Leaks, error) {
	var l Leaks
	_, c := ObserverClients(endpoint, region)
	buckets, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return l, fmt.Errorf("list S3 buckets: %w", err)
	}
	for _, b := range buckets.Buckets {
		name := aws.ToString(b.Name)
		l.S3Buckets = append(l.S3Buckets, name)
		err := eachPage(ctx, s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: b.Name}), func(page *s3.ListObjectsV2Output) {
			for _, o := range page.Contents {
				l.S3Objects = append(l.S3Objects, name+"/"+aws.ToString(o.Key))
			}
		})
		if err != nil {
			return l, fmt.Errorf("list objects in s3://%s: %w", name, err)
		}
		in := &s3.ListMultipartUploadsInput{Bucket: b.Name}
		for {
			page, err := c.ListMultipartUploads(ctx, in)
			if err != nil {
				return l, fmt.Errorf("list multipart uploads in s3://%s: %w", name, err)
			}
			for _, u := range page.Uploads {
				l.MultipartUploads = append(l.MultipartUploads, name+"/"+aws.ToString(u.Key)+"#"+aws.ToString(u.UploadId))
			}
			if !aws.ToBool(page.IsTruncated) || page.NextKeyMarker == nil && page.NextUploadIdMarker == nil {
				break
			}
			in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
		}
	}
	return l, nil
}

// iamInventory lists the IAM roles and instance profiles of the account.
func iamInventory(ctx context.Context, endpoint, region string) (Leaks, error) {
	var l Leaks
	c := iam.NewFromConfig(observerConfig(endpoint, region))
	err := eachPage(ctx, iam.NewListRolesPaginator(c, &iam.ListRolesInput{}), func(page *iam.ListRolesOutput) {
		for _, r := range page.Roles {
			l.IAMRoles = append(l.IAMRoles, aws.ToString(r.Arn))
		}
	})
	if err != nil {
		return l, fmt.Errorf("list IAM roles: %w", err)
	}
	err = eachPage(ctx, iam.NewListInstanceProfilesPaginator(c, &iam.ListInstanceProfilesInput{}), func(page *iam.ListInstanceProfilesOutput) {
		for _, p := range page.InstanceProfiles {
			l.IAMProfiles = append(l.IAMProfiles, aws.ToString(p.Arn))
		}
	})
	if err != nil {
		return l, fmt.Errorf("list IAM instance profiles: %w", err)
	}
	return l, nil
}
