//go:build unix

package awstest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// moto makes every state change final at once: an instance is running at
// the first DescribeInstances, an AMI and every copy of it available at the
// first DescribeImages. On AWS a build mostly waits for these transitions.
// A TimeModel set in ProxyOptions.Model makes the proxy answer as if they
// took time, so that a benchmark can measure how much a client adds to the
// waits (how late it notices, how often it asks).
//
// The proxy learns of a transition from the answer to the call that begins
// it, and from then on rewrites moto's answers until its modelled end:
//
//   - RunInstances, StopInstances, TerminateInstances: each instance in the
//     answer is pending, stopping or shutting-down (a StopInstances or
//     TerminateInstances whose previous state was already the final one
//     begins nothing). DescribeInstances and DescribeInstanceStatus show
//     that state (instanceState code and name: pending 0, stopping 64,
//     shutting-down 32) while moto shows the final one (running 16,
//     stopped 80, terminated 48). DescribeInstanceStatus leaves the
//     instance out unless IncludeAllInstances, as EC2 lists only running
//     instances by default.
//   - CreateImage, RegisterImage, CopyImage (per destination region, the
//     region of the call): DescribeImages shows imageState pending, and
//     DescribeSnapshots shows the image's snapshots (moto makes one per
//     image; the proxy finds it with a DescribeImages of the new image)
//     with status pending and progress rising linearly from 0% to 100% at
//     the end. Everything else in the answers is moto's.
//
// A describe call filtering by the state (DescribeInstances
// instance-state-name, DescribeImages state) does not list a resource shown
// in a state the filter leaves out.
//
// A describe call that names a resource by ID, or whose answer includes
// it, is a poll of it ([Event].Polls); the first answer that shows the
// final state at or after the modelled end sets [Event].Noticed.
// DescribeSnapshots calls are not polls of the image. Calls answered by a
// fault never reach moto or the model and are not counted; answers a fault
// discards (Fault.Forward) begin transitions but are not polls.
//
// Limits: StartInstances, RebootInstances, CopySnapshot, CreateSnapshot and
// instance status checks are not modelled; only the latest transition of a
// resource is modelled, and an answer in which moto shows another state
// than the transition's final one (the resource was changed behind the
// proxy's back) is passed on as it is. A filter that asks only for the
// transit state (instance-state-name pending) finds nothing, as moto
// matches it against the final state.

// TimeModel makes a [Proxy] answer as if EC2's instances and AMIs took
// time to change state (see ProxyOptions.Model). Set its fields before the
// proxy starts and do not change them afterwards; its methods are safe for
// concurrent use.
type TimeModel struct {
	// Scale is the wall-clock time per modelled time: 1.0/60 makes a
	// modelled 10-minute copy take 10 s. Zero means 1.
	Scale float64
	// Seed seeds the draws: the same seed and the same sequence of calls
	// draw the same durations. Each kind of transition draws from its own
	// sequence, so the durations of one kind do not depend on how many of
	// another were drawn.
	Seed int64
	// Durations are the distributions of modelled (unscaled) durations. A
	// zero Dist takes its value from [DefaultDurations].
	Durations Durations
	// Now is the wall clock. nil means time.Now; a test may inject a clock
	// it advances itself.
	Now func() time.Time

	mu      sync.Mutex
	started bool
	scale   float64
	dists   map[string]Dist
	rngs    map[string]*rand.Rand
	events  []*Event
	live    map[modelKey]*modelled // the latest transition of each resource
	snaps   map[modelKey]*modelled // a snapshot → its image's transition
}

// Durations are the distributions of the modelled durations of each kind
// of transition.
type Durations struct {
	// InstanceRun is pending → running, InstanceStop stopping → stopped,
	// InstanceTerminate shutting-down → terminated.
	InstanceRun, InstanceStop, InstanceTerminate Dist
	// ImageCreate, ImageRegister and ImageCopy are pending → available of
	// the AMI made by CreateImage, RegisterImage and CopyImage (each
	// destination region's copy on its own).
	ImageCreate, ImageRegister, ImageCopy Dist
}

// Dist is a distribution of durations: a split log-normal with median
// Median whose lower half has Min and whose upper half has Max two standard
// deviations (of the logarithm) from the median, clipped to [Min, Max].
// About 2.3% of the draws fall on each bound, half below Median. It needs
// 0 < Min <= Median <= Max; Min = Median = Max always draws that duration.
type Dist struct{ Min, Median, Max time.Duration }

// DefaultDurations returns the distributions used for zero fields of
// [TimeModel].Durations:
//
//   - InstanceRun 10s, median 30s, 90s; InstanceStop 15s, median 45s, 3m;
//     InstanceTerminate 10s, median 40s, 3m. Instances take tens of
//     seconds to run and to stop. AWS documents no figure; its
//     troubleshooting page calls an instance that stays shutting-down
//     "longer than a few minutes" delayed
//     (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/TroubleshootingInstancesShuttingDown.html),
//     hence the 3-minute bound.
//   - ImageCreate 2m, median 5m, 15m: minutes for an AMI, most of it the
//     first snapshot of the root volume.
//   - ImageRegister 10s, median 30s, 2m: a registration from a bundle
//     already in S3 or from existing snapshots has little to copy.
//   - ImageCopy 5m, median 10m, 20m per destination region: the 5 to 20
//     minutes reported for cross-region copies of our builds' AMIs. AWS
//     gives no figure for a standard copy ("best effort"); a time-based
//     copy, whose completion duration is asked for in 15-minute steps,
//     takes 15 minutes at the least
//     (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html,
//     SnapshotCopyCompletionDurationMinutes).
//
// Apart from the bounds cited, these are estimates, not measurements: set
// Durations from measured builds where the figures matter.
func DefaultDurations() Durations {
	return Durations{
		InstanceRun:       Dist{Min: 10 * time.Second, Median: 30 * time.Second, Max: 90 * time.Second},
		InstanceStop:      Dist{Min: 15 * time.Second, Median: 45 * time.Second, Max: 3 * time.Minute},
		InstanceTerminate: Dist{Min: 10 * time.Second, Median: 40 * time.Second, Max: 3 * time.Minute},
		ImageCreate:       Dist{Min: 2 * time.Minute, Median: 5 * time.Minute, Max: 15 * time.Minute},
		ImageRegister:     Dist{Min: 10 * time.Second, Median: 30 * time.Second, Max: 2 * time.Minute},
		ImageCopy:         Dist{Min: 5 * time.Minute, Median: 10 * time.Minute, Max: 20 * time.Minute},
	}
}

// Event is one modelled transition and what the client saw of it.
type Event struct {
	// Kind is "instance-run", "instance-stop", "instance-terminate",
	// "image-create", "image-register" or "image-copy".
	Kind string
	// Region and ID name the resource (for a copy, the destination region
	// and the copy).
	Region, ID string
	// Start is when the answer to the call that began it passed the proxy
	// (wall clock, from TimeModel.Now).
	Start time.Time
	// Done is when the transition ends: Start + Modelled × Scale.
	Done time.Time
	// Noticed is when the first answer that showed the final state passed
	// the proxy; zero if none did.
	Noticed time.Time
	// Polls counts the describe calls that asked about the resource from
	// Start to Noticed, the one that noticed included.
	Polls int
	// Modelled is the drawn, unscaled duration.
	Modelled time.Duration
}

// Events returns the modelled transitions in the order they began.
func (m *TimeModel) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Event, len(m.events))
	for i, e := range m.events {
		out[i] = *e
	}
	return out
}

type modelKey struct{ region, id string }

// modelled is the latest transition of one resource.
type modelled struct {
	ev             *Event
	transit, final string // state names during and after it
}

// transition describes the transition a call begins.
type transition struct{ kind, transit, final string }

var transitions = map[string]transition{
	"RunInstances":       {"instance-run", "pending", "running"},
	"StopInstances":      {"instance-stop", "stopping", "stopped"},
	"TerminateInstances": {"instance-terminate", "shutting-down", "terminated"},
	"CreateImage":        {"image-create", "pending", "available"},
	"RegisterImage":      {"image-register", "pending", "available"},
	"CopyImage":          {"image-copy", "pending", "available"},
}

var instanceStateCodes = map[string]int{
	"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80,
}

var instanceIDParamRE = regexp.MustCompile(`^InstanceId\.(\d+)$`)

// start checks the model and prepares it; a proxy calls it once.
func (m *TimeModel) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return nil
	}
	if m.Scale < 0 || math.IsNaN(m.Scale) || math.IsInf(m.Scale, 0) {
		return fmt.Errorf("time model: Scale %v: want a finite number >= 0 (0 means 1)", m.Scale)
	}
	m.scale = m.Scale
	if m.scale == 0 {
		m.scale = 1
	}
	def := DefaultDurations()
	m.dists = map[string]Dist{}
	for _, f := range []struct {
		kind, field string
		d, def      Dist
	}{
		{"instance-run", "InstanceRun", m.Durations.InstanceRun, def.InstanceRun},
		{"instance-stop", "InstanceStop", m.Durations.InstanceStop, def.InstanceStop},
		{"instance-terminate", "InstanceTerminate", m.Durations.InstanceTerminate, def.InstanceTerminate},
		{"image-create", "ImageCreate", m.Durations.ImageCreate, def.ImageCreate},
		{"image-register", "ImageRegister", m.Durations.ImageRegister, def.ImageRegister},
		{"image-copy", "ImageCopy", m.Durations.ImageCopy, def.ImageCopy},
	} {
		d := f.d
		if d == (Dist{}) {
			d = f.def
		}
		if d.Min <= 0 || d.Min > d.Median || d.Median > d.Max {
			return fmt.Errorf("time model: Durations.%s: Min %v, Median %v, Max %v: want 0 < Min <= Median <= Max (all zero for the default)",
				f.field, d.Min, d.Median, d.Max)
		}
		m.dists[f.kind] = d
	}
	m.rngs = map[string]*rand.Rand{}
	m.live = map[modelKey]*modelled{}
	m.snaps = map[modelKey]*modelled{}
	m.started = true
	return nil
}

// draw draws the next modelled duration of kind.
func (m *TimeModel) draw(kind string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drawLocked(kind)
}

func (m *TimeModel) drawLocked(kind string) time.Duration {
	r := m.rngs[kind]
	if r == nil {
		h := fnv.New64a()
		_, _ = h.Write([]byte(kind))
		r = rand.New(rand.NewPCG(uint64(m.Seed), h.Sum64()))
		m.rngs[kind] = r
	}
	d := m.dists[kind]
	z := r.NormFloat64()
	bound := d.Max
	if z < 0 {
		bound = d.Min
	}
	sigma := math.Abs(math.Log(float64(bound)/float64(d.Median))) / 2
	v := time.Duration(float64(d.Median) * math.Exp(z*sigma))
	return min(max(v, d.Min), d.Max)
}

func (m *TimeModel) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// begin starts a transition of the resource id in region.
func (m *TimeModel) begin(tr transition, region, id string, snaps []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.drawLocked(tr.kind)
	now := m.now()
	ev := &Event{Kind: tr.kind, Region: region, ID: id, Start: now, Done: now.Add(time.Duration(float64(d) * m.scale)), Modelled: d}
	m.events = append(m.events, ev)
	md := &modelled{ev: ev, transit: tr.transit, final: tr.final}
	m.live[modelKey{region, id}] = md
	for _, s := range snaps {
		m.snaps[modelKey{region, s}] = md
	}
}

// observe runs on every answer the proxy forwards (delivered is false when
// a fault discards it): it begins transitions and rewrites describe
// answers. It returns what it changed, for Call.Emulated.
func (m *TimeModel) observe(p *Proxy, resp *http.Response, call *Call, delivered bool) (string, error) {
	if call.Service != "ec2" {
		return "", nil
	}
	switch call.Action {
	case "RunInstances", "StopInstances", "TerminateInstances":
		return "", m.beginInstances(resp, call)
	case "CreateImage", "RegisterImage", "CopyImage":
		return "", m.beginImage(p, resp, call)
	case "DescribeInstances":
		return m.describe(resp, call, delivered, "instancesSet", instanceIDParamRE, m.instanceItem(false))
	case "DescribeInstanceStatus":
		all := strings.EqualFold(call.Params.Get("IncludeAllInstances"), "true")
		return m.describe(resp, call, delivered, "instanceStatusSet", instanceIDParamRE, m.instanceItem(!all))
	case "DescribeImages":
		return m.describe(resp, call, delivered, "imagesSet", imageIDParamRE, m.imageItem)
	case "DescribeSnapshots":
		return m.describeSnapshots(resp, call)
	}
	return "", nil
}

// beginInstances begins a transition for each instance in the answer to
// RunInstances, StopInstances or TerminateInstances.
func (m *TimeModel) beginInstances(resp *http.Response, call *Call) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := readBody(resp)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	tr := transitions[call.Action]
	return eachItem(body, "instancesSet", func(item []byte) ([]byte, error) {
		id := childText(item, "instanceId")
		if id == "" {
			return item, nil
		}
		if call.Action != "RunInstances" && childText(childElem(item, "previousState"), "name") == tr.final {
			return item, nil
		}
		m.begin(tr, call.Region, id, nil)
		return item, nil
	}, nil)
}

// beginImage begins the transition of the AMI in the answer to CreateImage,
// RegisterImage or CopyImage, with its snapshots.
func (m *TimeModel) beginImage(p *Proxy, resp *http.Response, call *Call) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := readBody(resp)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	id := imageIDRE.FindSubmatch(body)
	if id == nil {
		return nil
	}
	out, err := p.emulatedCall(resp.Request, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {string(id[1])}})
	if err != nil {
		return fmt.Errorf("find the snapshots of %s in %s: %w", id[1], call.Region, err)
	}
	var snaps []string
	for _, s := range snapshotIDRE.FindAllSubmatch(out, -1) {
		snaps = append(snaps, string(s[1]))
	}
	m.begin(transitions[call.Action], call.Region, string(id[1]), snaps)
	return nil
}

// itemEdit rewrites one item of a describe answer for a resource whose
// transition is md at now, and reports whether the answer shows the final
// state. A nil result drops the item.
type itemEdit func(item []byte, md *modelled, now time.Time) (out []byte, final bool)

// describe rewrites the items of a describe answer, counts polls and
// notices ends.
func (m *TimeModel) describe(resp *http.Response, call *Call, delivered bool, set string, idParam *regexp.Regexp, edit itemEdit) (string, error) {
	idTag, stateFilter := "instanceId", "instance-state-name"
	if set == "imagesSet" {
		idTag, stateFilter = "imageId", "state"
	}
	states := filterValues(call.Params, stateFilter)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	polled := map[*modelled]bool{}
	poll := func(md *modelled) {
		if delivered && !polled[md] && md.ev.Noticed.IsZero() {
			md.ev.Polls++
		}
		polled[md] = true
	}
	var shown []string
	if resp.StatusCode == http.StatusOK {
		body, err := readBody(resp)
		if err != nil {
			return "", fmt.Errorf("read answer: %w", err)
		}
		var changed bool
		out, err := rewriteEachItem(body, set, func(item []byte) ([]byte, error) {
			md := m.live[modelKey{call.Region, childText(item, idTag)}]
			if md == nil {
				return item, nil
			}
			out, final := edit(item, md, now)
			if out != nil && !final && states != nil && !states[md.transit] {
				out = nil // moto matched the final state, which is not shown
			}
			if out != nil {
				poll(md)
			}
			if !bytes.Equal(out, item) {
				changed = true
				shown = append(shown, md.ev.ID)
			}
			if final && delivered && md.ev.Noticed.IsZero() {
				md.ev.Noticed = now
			}
			return out, nil
		})
		if err != nil {
			return "", err
		}
		if changed {
			setBody(resp, resp.StatusCode, out)
		}
	}
	_, ids := indexed(call.Params, idParam)
	for _, id := range ids {
		if md := m.live[modelKey{call.Region, id}]; md != nil {
			poll(md)
		}
	}
	if len(shown) == 0 {
		return "", nil
	}
	return "time model: " + strings.Join(shown, ", ") + " not yet done", nil
}

var filterParamRE = regexp.MustCompile(`^Filter\.(\d+)\.Name$`)

// filterValues returns the values of the filters called name in params,
// or nil when there is none.
func filterValues(params url.Values, name string) map[string]bool {
	var out map[string]bool
	for k, v := range params {
		m := filterParamRE.FindStringSubmatch(k)
		if m == nil || len(v) == 0 || v[0] != name {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		_, values := indexed(params, regexp.MustCompile(`^Filter\.`+m[1]+`\.Value\.(\d+)$`))
		for _, val := range values {
			out[val] = true
		}
	}
	return out
}

// instanceItem edits an item of DescribeInstances or DescribeInstanceStatus;
// with dropTransit it leaves out an instance shown in a transit state.
func (m *TimeModel) instanceItem(dropTransit bool) itemEdit {
	return func(item []byte, md *modelled, now time.Time) ([]byte, bool) {
		if childText(childElem(item, "instanceState"), "name") != md.final {
			return item, false
		}
		if !now.Before(md.ev.Done) {
			return item, true
		}
		if dropTransit {
			return nil, false
		}
		state := fmt.Sprintf("<instanceState><code>%d</code><name>%s</name></instanceState>", instanceStateCodes[md.transit], md.transit)
		return replaceChild(item, "instanceState", state), false
	}
}

func (m *TimeModel) imageItem(item []byte, md *modelled, now time.Time) ([]byte, bool) {
	if childText(item, "imageState") != md.final {
		return item, false
	}
	if !now.Before(md.ev.Done) {
		return item, true
	}
	return replaceChild(item, "imageState", "<imageState>"+md.transit+"</imageState>"), false
}

// describeSnapshots shows the snapshots of a pending AMI pending, with
// their progress.
func (m *TimeModel) describeSnapshots(resp *http.Response, call *Call) (string, error) {
	if resp.StatusCode != http.StatusOK {
		return "", nil
	}
	body, err := readBody(resp)
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var shown []string
	out, err := rewriteEachItem(body, "snapshotSet", func(item []byte) ([]byte, error) {
		id := childText(item, "snapshotId")
		md := m.snaps[modelKey{call.Region, id}]
		if md == nil || !now.Before(md.ev.Done) || childText(item, "status") != "completed" {
			return item, nil
		}
		pct := 0
		if total := md.ev.Done.Sub(md.ev.Start); total > 0 {
			pct = min(int(100*now.Sub(md.ev.Start)/total), 99)
		}
		shown = append(shown, id)
		item = replaceChild(item, "status", "<status>pending</status>")
		return replaceChild(item, "progress", "<progress>"+strconv.Itoa(max(pct, 0))+"%</progress>"), nil
	})
	if err != nil || len(shown) == 0 {
		return "", err
	}
	setBody(resp, resp.StatusCode, out)
	return "time model: " + strings.Join(shown, ", ") + " not yet done", nil
}

// rewriteEachItem replaces each <item> directly inside any element named
// set with what edit returns for it (nil drops it).
func rewriteEachItem(body []byte, set string, edit func(item []byte) ([]byte, error)) ([]byte, error) {
	var out bytes.Buffer
	last := 0
	err := eachItem(body, set, func(item []byte) ([]byte, error) { return edit(item) }, func(start, end int, repl []byte) {
		out.Write(body[last:start])
		out.Write(repl)
		last = end
	})
	if err != nil {
		return nil, err
	}
	out.Write(body[last:])
	return out.Bytes(), nil
}

// eachItem calls fn for each <item> directly inside any element named set,
// in document order, and hands its result to put (when not nil) with the
// item's byte range.
func eachItem(body []byte, set string, fn func(item []byte) ([]byte, error), put func(start, end int, repl []byte)) error {
	return walkItems(body, set, false, func(start, end int) error {
		repl, err := fn(body[start:end])
		if err != nil {
			return err
		}
		if put != nil {
			put(start, end, repl)
		}
		return nil
	})
}

// childSpan finds the first child element called name directly inside the
// root element of elem: its whole range and the range of its content.
func childSpan(elem []byte, name string) (start, end, inStart, inEnd int, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(elem))
	depth := 0
	for {
		off := int(d.InputOffset())
		tok, err := d.RawToken()
		if err != nil {
			return 0, 0, 0, 0, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && !ok && t.Name.Local == name {
				start, inStart, ok = off, int(d.InputOffset()), true
			}
		case xml.EndElement:
			if depth == 2 && ok && t.Name.Local == name {
				return start, int(d.InputOffset()), inStart, off, true
			}
			depth--
		}
	}
}

// childElem returns the first child element called name of elem's root,
// or nil.
func childElem(elem []byte, name string) []byte {
	s, e, _, _, ok := childSpan(elem, name)
	if !ok {
		return nil
	}
	return elem[s:e]
}

// childText returns the content of the first child element called name of
// elem's root ("" when missing).
func childText(elem []byte, name string) string {
	_, _, s, e, ok := childSpan(elem, name)
	if !ok {
		return ""
	}
	return string(elem[s:e])
}

// replaceChild replaces the first child element called name of elem's
// root with repl; elem is unchanged when there is none.
func replaceChild(elem []byte, name, repl string) []byte {
	s, e, _, _, ok := childSpan(elem, name)
	if !ok {
		return elem
	}
	out := make([]byte, 0, len(elem)+len(repl))
	out = append(out, elem[:s]...)
	out = append(out, repl...)
	return append(out, elem[e:]...)
}
