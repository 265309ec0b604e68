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
	out, err := STSClient(endpoint, region).GetCallerIdentity(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("get caller identity: %w", err)
	}
	return aws.ToString(out.Account), nil
}

func regionInventory(ctx context.Context, endpoint, region, account string) (Leaks, error) {
	var l Leaks
	c, _ := ObserverClients(endpoint, region)
	id := func(s *string) string { return region + ":" + aws.ToString(s) }

	instances := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{})
	for instances.HasMorePages() {
		page, err := instances.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("describe instances in %s: %w", region, err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				if in.State == nil || in.State.Name != ec2types.InstanceStateNameTerminated {
					l.Instances = append(l.Instances, id(in.InstanceId))
				}
			}
		}
	}

	keys, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		return l, fmt.Errorf("describe key pairs in %s: %w", region, err)
	}
	for _, k := range keys.KeyPairs {
		l.KeyPairs = append(l.KeyPairs, id(k.KeyName))
	}

	groups := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{})
	for groups.HasMorePages() {
		page, err := groups.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("describe security groups in %s: %w", region, err)
		}
		for _, g := range page.SecurityGroups {
			if aws.ToString(g.GroupName) != "default" {
				l.SecurityGroups = append(l.SecurityGroups, id(g.GroupId))
			}
		}
	}

	images := ec2.NewDescribeImagesPaginator(c, &ec2.DescribeImagesInput{Owners: []string{"self"}, IncludeDeprecated: aws.Bool(true)})
	for images.HasMorePages() {
		page, err := images.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("describe images in %s: %w", region, err)
		}
		for _, im := range page.Images {
			l.Images = append(l.Images, id(im.ImageId))
		}
	}

	// OwnerIds=self also returns moto's ~1,160 preloaded snapshots per
	// region (0.4 s); the owner-id filter returns only the caller's (10 ms).
	snaps := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{
		Filters: []ec2types.Filter{{Name: aws.String("owner-id"), Values: []string{account}}},
	})
	for snaps.HasMorePages() {
		page, err := snaps.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("describe snapshots in %s: %w", region, err)
		}
		for _, s := range page.Snapshots {
			l.Snapshots = append(l.Snapshots, id(s.SnapshotId))
		}
	}

	vols := ec2.NewDescribeVolumesPaginator(c, &ec2.DescribeVolumesInput{})
	for vols.HasMorePages() {
		page, err := vols.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("describe volumes in %s: %w", region, err)
		}
		for _, v := range page.Volumes {
			l.Volumes = append(l.Volumes, id(v.VolumeId))
		}
	}
	templates := ec2.NewDescribeLaunchTemplatesPaginator(c, &ec2.DescribeLaunchTemplatesInput{})
	for templates.HasMorePages() {
		page, err := templates.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("describe launch templates in %s: %w", region, err)
		}
		for _, t := range page.LaunchTemplates {
			l.LaunchTemplates = append(l.LaunchTemplates, id(t.LaunchTemplateId))
		}
	}

	// A deleted fleet stays listed for a while in a deleted* state.
	fleets := ec2.NewDescribeFleetsPaginator(c, &ec2.DescribeFleetsInput{})
	for fleets.HasMorePages() {
		page, err := fleets.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("describe fleets in %s: %w", region, err)
		}
		for _, f := range page.Fleets {
			if !strings.HasPrefix(string(f.FleetState), "deleted") {
				l.Fleets = append(l.Fleets, id(f.FleetId))
			}
		}
	}
	return l, nil
}

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
		objects := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: b.Name})
		for objects.HasMorePages() {
			page, err := objects.NextPage(ctx)
			if err != nil {
				return l, fmt.Errorf("list objects in s3://%s: %w", name, err)
			}
			for _, o := range page.Contents {
				l.S3Objects = append(l.S3Objects, name+"/"+aws.ToString(o.Key))
			}
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
	cfg := Config(endpoint, region)
	cfg.RetryMaxAttempts = 4
	c := iam.NewFromConfig(cfg)
	roles := iam.NewListRolesPaginator(c, &iam.ListRolesInput{})
	for roles.HasMorePages() {
		page, err := roles.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("list IAM roles: %w", err)
		}
		for _, r := range page.Roles {
			l.IAMRoles = append(l.IAMRoles, aws.ToString(r.Arn))
		}
	}
	profiles := iam.NewListInstanceProfilesPaginator(c, &iam.ListInstanceProfilesInput{})
	for profiles.HasMorePages() {
		page, err := profiles.NextPage(ctx)
		if err != nil {
			return l, fmt.Errorf("list IAM instance profiles: %w", err)
		}
		for _, p := range page.InstanceProfiles {
			l.IAMProfiles = append(l.IAMProfiles, aws.ToString(p.Arn))
		}
	}
	return l, nil
}
