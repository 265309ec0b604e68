//go:build unix

package awstest

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// fakeClock is a clock a test advances by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixed is a distribution that always draws d.
func fixed(d time.Duration) Dist { return Dist{Min: d, Median: d, Max: d} }

func runInstance(t *testing.T, c *ec2.Client) string {
	t.Helper()
	out, err := c.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil || len(out.Instances) != 1 {
		t.Fatalf("RunInstances: %v", err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// instanceState describes id and returns its state's name and code.
func instanceState(t *testing.T, c *ec2.Client, id string) string {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances %s: %v", id, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == id && in.State != nil {
				return string(in.State.Name) + "/" + strconv.Itoa(int(aws.ToInt32(in.State.Code)))
			}
		}
	}
	t.Fatalf("DescribeInstances %s: not in the answer", id)
	return ""
}

func imageState(t *testing.T, c *ec2.Client, id string) string {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("DescribeImages %s: %d images, %v", id, len(out.Images), err)
	}
	return string(out.Images[0].State)
}

// snapshotOf returns the snapshot of image id as moto sees it (one per
// image), described without the proxy.
func snapshotOf(t *testing.T, region, id string) string {
	t.Helper()
	obs, _ := ObserverClients(sharedMoto.Endpoint, region)
	out, err := obs.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("DescribeImages %s: %v", id, err)
	}
	for _, m := range out.Images[0].BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			return *m.Ebs.SnapshotId
		}
	}
	t.Fatalf("image %s has no snapshot", id)
	return ""
}

func snapshotProgress(t *testing.T, c *ec2.Client, id string) (status string, progress int) {
	t.Helper()
	out, err := c.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil || len(out.Snapshots) != 1 {
		t.Fatalf("DescribeSnapshots %s: %v", id, err)
	}
	s := out.Snapshots[0]
	p, err := strconv.Atoi(strings.TrimSuffix(aws.ToString(s.Progress), "%"))
	if err != nil {
		t.Fatalf("snapshot %s progress %q: %v", id, aws.ToString(s.Progress), err)
	}
	return string(s.State), p
}

// event returns the model's only event of kind for id.
func event(t *testing.T, m *TimeModel, kind, id string) Event {
	t.Helper()
	var found []Event
	for _, e := range m.Events() {
		if e.Kind == kind && e.ID == id {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s events for %s in %+v", len(found), kind, id, m.Events())
	}
	return found[0]
}

// An instance is pending, stopping or shutting-down until the clock passes
// the modelled transition; Events report when it was due, when the client
// saw it and how often it asked.
func TestTimeModelInstance(t *testing.T) {
	clock := newFakeClock()
	m := &TimeModel{
		Scale: 0.5, Now: clock.Now,
		Durations: Durations{InstanceRun: fixed(30 * time.Second), InstanceStop: fixed(40 * time.Second), InstanceTerminate: fixed(50 * time.Second)},
	}
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Model: m})
	const region = "eu-north-1"
	c, _ := Clients(p.URL, region)
	ctx := context.Background()

	id := runInstance(t, c)
	start := clock.Now()
	steps := []struct {
		name    string
		act     func()
		advance time.Duration
		want    string
	}{
		{"launched", nil, 0, "pending/0"},
		{"just before running", nil, 15*time.Second - time.Millisecond, "pending/0"},
		{"running", nil, time.Millisecond, "running/16"},
		{"running later", nil, time.Minute, "running/16"},
		{"stop", func() {
			if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
				t.Fatalf("StopInstances: %v", err)
			}
		}, 0, "stopping/64"},
		{"just before stopped", nil, 20*time.Second - time.Millisecond, "stopping/64"},
		{"stopped", nil, time.Millisecond, "stopped/80"},
		{"terminate", func() {
			if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
				t.Fatalf("TerminateInstances: %v", err)
			}
		}, 0, "shutting-down/32"},
		{"just before terminated", nil, 25*time.Second - time.Millisecond, "shutting-down/32"},
		{"terminated", nil, time.Millisecond, "terminated/48"},
	}
	for _, s := range steps {
		if s.act != nil {
			s.act()
		}
		clock.Advance(s.advance)
		if got := instanceState(t, c, id); got != s.want {
			t.Fatalf("%s: state %s, want %s", s.name, got, s.want)
		}
	}

	// What the Scale-d durations and the polls above imply.
	for _, w := range []struct {
		kind           string
		start          time.Duration // after the launch
		modelled, wall time.Duration
		noticed        time.Duration // after start
		polls          int
	}{
		{"instance-run", 0, 30 * time.Second, 15 * time.Second, 15 * time.Second, 3},
		{"instance-stop", 75 * time.Second, 40 * time.Second, 20 * time.Second, 20 * time.Second, 3},
		{"instance-terminate", 95 * time.Second, 50 * time.Second, 25 * time.Second, 25 * time.Second, 3},
	} {
		e := event(t, m, w.kind, id)
		if e.Region != region || e.Modelled != w.modelled || !e.Start.Equal(start.Add(w.start)) ||
			!e.Done.Equal(e.Start.Add(w.wall)) || !e.Noticed.Equal(e.Start.Add(w.noticed)) || e.Polls != w.polls {
			t.Errorf("%s event %+v; want region %s, modelled %v, start +%v, done start+%v, noticed start+%v, %d polls",
				w.kind, e, region, w.modelled, w.start, w.wall, w.noticed, w.polls)
		}
	}
}

// DescribeInstanceStatus leaves out a pending instance unless asked for
// all instances, as EC2 does, and shows its modelled state then.
func TestTimeModelInstanceStatus(t *testing.T) {
	clock := newFakeClock()
	m := &TimeModel{Now: clock.Now, Durations: Durations{InstanceRun: fixed(time.Minute)}}
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Model: m})
	c, _ := Clients(p.URL, "eu-west-3")
	ctx := context.Background()
	id := runInstance(t, c)
	status := func(all bool) []string {
		t.Helper()
		out, err := c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}, IncludeAllInstances: aws.Bool(all)})
		if err != nil {
			t.Fatalf("DescribeInstanceStatus: %v", err)
		}
		var states []string
		for _, s := range out.InstanceStatuses {
			states = append(states, string(s.InstanceState.Name))
		}
		return states
	}
	if got := status(false); len(got) != 0 {
		t.Errorf("pending instance listed as %v without IncludeAllInstances", got)
	}
	if got := status(true); len(got) != 1 || got[0] != "pending" {
		t.Errorf("with IncludeAllInstances: %v, want [pending]", got)
	}
	clock.Advance(time.Minute)
	if got := status(false); len(got) != 1 || got[0] != "running" {
		t.Errorf("after the run: %v, want [running]", got)
	}
	if e := event(t, m, "instance-run", id); e.Polls != 3 || !e.Noticed.Equal(e.Done) {
		t.Errorf("event %+v; want 3 polls, noticed at done", e)
	}
}

// A describe call filtering by state does not list a resource the model
// shows in another state, as EC2 would not.
func TestTimeModelStateFilters(t *testing.T) {
	clock := newFakeClock()
	m := &TimeModel{Now: clock.Now, Durations: Durations{InstanceRun: fixed(time.Minute), ImageCreate: fixed(time.Minute)}}
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Model: m})
	c, _ := Clients(p.URL, "me-central-1")
	ctx := context.Background()
	inst := runInstance(t, c)
	out, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("time-model-filter")})
	if err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	img := aws.ToString(out.ImageId)
	if got := imageState(t, c, img); got != "pending" {
		t.Fatalf("new image %s, want pending", got)
	}
	instances := func(filter string, values ...string) int {
		t.Helper()
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
			InstanceIds: []string{inst}, Filters: []ec2types.Filter{{Name: aws.String(filter), Values: values}},
		})
		if err != nil {
			t.Fatalf("DescribeInstances %s=%v: %v", filter, values, err)
		}
		n := 0
		for _, r := range out.Reservations {
			n += len(r.Instances)
		}
		return n
	}
	images := func(values ...string) int {
		t.Helper()
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
			Owners: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("state"), Values: values}, {Name: aws.String("name"), Values: []string{"time-model-filter"}}},
		})
		if err != nil {
			t.Fatalf("DescribeImages state=%v: %v", values, err)
		}
		return len(out.Images)
	}
	for _, tc := range []struct {
		name string
		got  func() int
		want int
	}{
		{"instance-state-name running", func() int { return instances("instance-state-name", "running") }, 0},
		{"instance-state-name pending, running", func() int { return instances("instance-state-name", "pending", "running") }, 1},
		{"image state available", func() int { return images("available") }, 0},
		{"image state pending, available", func() int { return images("pending", "available") }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.got(); got != tc.want {
				t.Errorf("%d listed, want %d", got, tc.want)
			}
		})
	}
	clock.Advance(time.Minute)
	if n := instances("instance-state-name", "running"); n != 1 {
		t.Errorf("running instance: %d listed by instance-state-name running", n)
	}
	if n := images("available"); n != 1 {
		t.Errorf("available image: %d listed by state available", n)
	}
}

// A new AMI is pending with its snapshot's progress rising until the
// modelled time, and each region's copy has its own.
func TestTimeModelImages(t *testing.T) {
	clock := newFakeClock()
	m := &TimeModel{
		Now: clock.Now,
		Durations: Durations{
			InstanceRun: fixed(time.Second), ImageCreate: fixed(4 * time.Minute),
			ImageCopy: Dist{Min: 5 * time.Minute, Median: 10 * time.Minute, Max: 20 * time.Minute},
		},
	}
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Model: m})
	const region = "ca-central-1"
	c, _ := Clients(p.URL, region)
	ctx := context.Background()
	inst := runInstance(t, c)

	out, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("time-model-create")})
	if err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	img := aws.ToString(out.ImageId)
	snap := snapshotOf(t, region, img)
	if got := imageState(t, c, img); got != "pending" {
		t.Errorf("new image %s, want pending", got)
	}
	if st, pr := snapshotProgress(t, c, snap); st != "pending" || pr != 0 {
		t.Errorf("new image's snapshot %s %d%%, want pending 0%%", st, pr)
	}
	clock.Advance(time.Minute)
	if st, pr := snapshotProgress(t, c, snap); st != "pending" || pr != 25 {
		t.Errorf("snapshot a quarter through: %s %d%%, want pending 25%%", st, pr)
	}
	clock.Advance(2*time.Minute + 59*time.Second)
	if st, pr := snapshotProgress(t, c, snap); st != "pending" || pr <= 0 || pr >= 100 {
		t.Errorf("snapshot a second before: %s %d%%, want pending with 0 < progress < 100", st, pr)
	}
	if got := imageState(t, c, img); got != "pending" {
		t.Errorf("image a second before: %s, want pending", got)
	}
	clock.Advance(time.Second)
	if got := imageState(t, c, img); got != "available" {
		t.Errorf("image at done: %s, want available", got)
	}
	if st, pr := snapshotProgress(t, c, snap); st != "completed" || pr != 100 {
		t.Errorf("snapshot at done: %s %d%%, want completed 100%%", st, pr)
	}
	if e := event(t, m, "image-create", img); e.Polls != 3 || !e.Noticed.Equal(e.Done) || e.Modelled != 4*time.Minute || e.Region != region {
		t.Errorf("image-create event %+v; want 3 polls (snapshot calls not counted), noticed at done, modelled 4m", e)
	}

	// One copy per destination region, each drawn and timed on its own.
	copies := map[string]string{}
	var clients = map[string]*ec2.Client{}
	for _, dst := range []string{"eu-central-2", "ap-south-2"} {
		dc, _ := Clients(p.URL, dst)
		clients[dst] = dc
		out, err := dc.CopyImage(ctx, &ec2.CopyImageInput{SourceImageId: aws.String(img), SourceRegion: aws.String(region), Name: aws.String("time-model-copy")})
		if err != nil {
			t.Fatalf("CopyImage to %s: %v", dst, err)
		}
		copies[dst] = aws.ToString(out.ImageId)
		if got := imageState(t, dc, copies[dst]); got != "pending" {
			t.Errorf("copy in %s: %s, want pending", dst, got)
		}
	}
	evs := map[string]Event{}
	var last time.Time
	for dst, id := range copies {
		e := event(t, m, "image-copy", id)
		if e.Region != dst || e.Modelled < 5*time.Minute || e.Modelled > 20*time.Minute || !e.Done.Equal(e.Start.Add(e.Modelled)) {
			t.Errorf("copy event %+v; want region %s, 5m <= modelled <= 20m, done = start + modelled", e, dst)
		}
		evs[dst] = e
		if e.Done.After(last) {
			last = e.Done
		}
	}
	clock.Advance(last.Sub(clock.Now()) - time.Second)
	for dst, id := range copies {
		want := "pending"
		if !evs[dst].Done.After(clock.Now()) {
			want = "available"
		}
		if got := imageState(t, clients[dst], id); got != want {
			t.Errorf("copy in %s a second before the later copy is done: %s, want %s", dst, got, want)
		}
	}
	clock.Advance(time.Second)
	for dst, id := range copies {
		if got := imageState(t, clients[dst], id); got != "available" {
			t.Errorf("copy in %s after both are done: %s", dst, got)
		}
		if e := event(t, m, "image-copy", id); e.Noticed.Before(e.Done) || e.Polls < 2 {
			t.Errorf("copy event %+v: noticed before done or fewer than 2 polls", e)
		}
	}
}

// The same seed draws the same durations, whatever else is drawn between;
// draws stay in [Min, Max] and about half fall below the median.
func TestTimeModelDraws(t *testing.T) {
	draws := func(seed int64, kind string, n int, interleave bool) []time.Duration {
		m := &TimeModel{Seed: seed}
		if err := m.start(); err != nil {
			t.Fatalf("start: %v", err)
		}
		var out []time.Duration
		for i := 0; i < n; i++ {
			if interleave {
				m.draw("instance-run")
			}
			out = append(out, m.draw(kind))
		}
		return out
	}
	a, b := draws(7, "image-copy", 200, false), draws(7, "image-copy", 200, true)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 draw %d: %v alone, %v with other kinds drawn between", i, a[i], b[i])
		}
	}
	other := draws(8, "image-copy", 200, false)
	same := 0
	for i := range a {
		if a[i] == other[i] {
			same++
		}
	}
	if same > 5 {
		t.Errorf("seeds 7 and 8 drew %d of 200 copy durations alike", same)
	}
	def := DefaultDurations()
	for _, tc := range []struct {
		kind string
		d    Dist
	}{
		{"instance-run", def.InstanceRun}, {"instance-stop", def.InstanceStop}, {"instance-terminate", def.InstanceTerminate},
		{"image-create", def.ImageCreate}, {"image-register", def.ImageRegister}, {"image-copy", def.ImageCopy},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			below := 0
			for _, d := range draws(1, tc.kind, 1000, false) {
				if d < tc.d.Min || d > tc.d.Max {
					t.Fatalf("draw %v outside [%v, %v]", d, tc.d.Min, tc.d.Max)
				}
				if d < tc.d.Median {
					below++
				}
			}
			if below < 430 || below > 570 {
				t.Errorf("%d of 1000 draws below the median %v", below, tc.d.Median)
			}
		})
	}
}

// The same calls through two proxies with models of the same seed draw
// the same durations.
func TestTimeModelSeedThroughProxy(t *testing.T) {
	run := func(region string) []time.Duration {
		m := &TimeModel{Seed: 42, Now: newFakeClock().Now}
		p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Model: m})
		c, _ := Clients(p.URL, region)
		runInstance(t, c)
		runInstance(t, c)
		var out []time.Duration
		for _, e := range m.Events() {
			out = append(out, e.Modelled)
		}
		return out
	}
	a, b := run("sa-east-1"), run("af-south-1")
	if len(a) != 2 || len(b) != 2 || a[0] != b[0] || a[1] != b[1] || a[0] == a[1] {
		t.Errorf("durations %v and %v; want two different draws, the same for both runs", a, b)
	}
}

// Without a model the proxy passes moto's answers on as they are.
func TestTimeModelNil(t *testing.T) {
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	c, _ := Clients(p.URL, "eu-south-1")
	id := runInstance(t, c)
	if got := instanceState(t, c, id); got != "running/16" {
		t.Errorf("without a model: %s, want moto's running/16", got)
	}
	for _, call := range p.Calls() {
		if call.Emulated != "" {
			t.Errorf("%s recorded as emulated: %q", call.Action, call.Emulated)
		}
	}
}

// The SDK's waiters wait through the model on the real clock and return
// once the modelled time has passed.
func TestTimeModelWaiters(t *testing.T) {
	m := &TimeModel{
		Scale:     1.0 / 600,
		Durations: Durations{InstanceRun: fixed(3 * time.Minute), ImageCreate: fixed(4 * time.Minute)},
	}
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{Model: m})
	c, _ := Clients(p.URL, "eu-south-2")
	ctx := context.Background()
	inst := runInstance(t, c)
	if err := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	}).Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst}}, time.Minute); err != nil {
		t.Fatalf("instance running waiter: %v", err)
	}
	out, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("time-model-waiter")})
	if err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	img := aws.ToString(out.ImageId)
	if err := ec2.NewImageAvailableWaiter(c, func(o *ec2.ImageAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	}).Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{img}}, time.Minute); err != nil {
		t.Fatalf("image available waiter: %v", err)
	}
	for _, e := range []Event{event(t, m, "instance-run", inst), event(t, m, "image-create", img)} {
		if e.Noticed.IsZero() || e.Noticed.Before(e.Done) || e.Polls < 1 || e.Done.Sub(e.Start) != e.Modelled/600 {
			t.Errorf("%s event %+v; want noticed at or after done, at least one poll, done = start + modelled/600", e.Kind, e)
		}
	}
}

// A model with an impossible distribution or scale stops the proxy from
// starting, naming the field.
func TestTimeModelInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Durations
		scal float64
		want string
	}{
		{"min above median", Durations{ImageCopy: Dist{Min: 10 * time.Minute, Median: 5 * time.Minute, Max: 20 * time.Minute}}, 0, "Durations.ImageCopy"},
		{"median above max", Durations{InstanceStop: Dist{Min: time.Second, Median: time.Minute, Max: 30 * time.Second}}, 0, "Durations.InstanceStop"},
		{"zero min", Durations{InstanceRun: Dist{Median: time.Second, Max: time.Minute}}, 0, "Durations.InstanceRun"},
		{"negative scale", Durations{}, -1, "Scale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := StartProxy(sharedMoto.Endpoint, ProxyOptions{Model: &TimeModel{Durations: tc.d, Scale: tc.scal}})
			if err == nil {
				p.Close()
				t.Fatalf("StartProxy accepted durations %+v, scale %v", tc.d, tc.scal)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

// Put a time model into the proxy so that instances and AMIs take time,
// one modelled minute per wall second, run the code under test, and see
// how long after each transition it noticed and how often it asked.
func ExampleTimeModel() {
	ctx := context.Background()
	moto, err := StartMoto(ctx, MotoOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer moto.Stop()
	model := &TimeModel{Scale: 1.0 / 60, Seed: 1}
	proxy, err := StartProxy(moto.Endpoint, ProxyOptions{Model: model})
	if err != nil {
		log.Fatal(err)
	}
	defer proxy.Close()

	// The code under test launches an instance and waits until it runs.
	c, _ := Clients(proxy.URL, "eu-west-1")
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		log.Fatal(err)
	}
	err = ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) { o.MinDelay = time.Second }).
		Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}}, time.Minute)
	if err != nil {
		log.Fatal(err)
	}

	for _, e := range model.Events() {
		fmt.Printf("%s %s: modelled %v, noticed %v after it was done, %d polls\n",
			e.Kind, e.ID, e.Modelled, e.Noticed.Sub(e.Done), e.Polls)
	}
}
