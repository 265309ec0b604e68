//go:build unix

// Command local runs the local example templates with the real packer binary
// against one local AWS emulator, then prints every AMI they made, in every
// region, and checks that nothing else was left behind. `make demo` runs it:
//
//	go run ./example/local -packer ./bin/packer
//
// By default it runs two builds:
//
//   - distribute.pkr.hcl: ami-ebs builds an EBS-backed AMI, provisioned over
//     SSH, and ami-distribute copies it to eu-west-1 and ap-southeast-2,
//     shares it and tags every copy, printing the per-region table;
//   - instance.pkr.hcl: ami-instance bundles an ext4 image made by the
//     provisioner, uploads the bundle to S3 and registers an instance-store
//     AMI from its manifest.
//
// -only picks among ebs (ebs.pkr.hcl alone), instance and distribute;
// -template (repeatable) runs other templates instead. The runner starts
// moto_server on a free 127.0.0.1 port, an OpenSSH server on 127.0.0.1 that
// stands in for every build instance and an S3 bucket for bundles; it
// builds the plugin and installs it into a private plugin directory. It
// stops everything again on exit and on Ctrl-C. Nothing reaches real AWS.
//
// With -bench-json FILE the runner measures instead of demonstrating
// (bench mode, bench.go): each chosen example (all three unless -only) is
// built -reps times through a proxy adding -latency to every AWS call, and
// compared with the minimum calls its settings need and with a build of
// Packer's null builder running the same provisioners; the results go to
// FILE as JSON for `ami-bench -only e2e`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// demo is one of the local example templates.
type demo struct {
	name, file, about string
}

// demos are the local examples -only chooses from, in the order they run.
var demos = []demo{
	{"ebs", "ebs.pkr.hcl", "ami-ebs: an EBS-backed AMI, provisioned over SSH"},
	{"distribute", "distribute.pkr.hcl", "ami-ebs, then ami-distribute: an EBS-backed AMI, provisioned over SSH, copied to two more regions, shared and tagged"},
	{"instance", "instance.pkr.hcl", "ami-instance: an instance-store AMI bundled into S3 and registered from its manifest"},
	{"copies", "copies.pkr.hcl", "ami-ebs with ami_regions: an EBS-backed AMI the builder copies to four more regions"},
	{"vm", "vm.pkr.hcl", "ami-instance on a Debian VM under qemu: copy mode bundles the running root; the AMI's image is then unbundled and booted"},
}

const (
	defaultOnly = "distribute,instance"
	allDemos    = "ebs,copies,distribute,instance"
)

func main() {
	var o options
	flag.StringVar(&o.packer, "packer", "", "packer binary (default: <module root>/bin/packer)")
	flag.StringVar(&o.only, "only", defaultOnly, "local examples to build, comma-separated: ebs, copies, distribute, instance")
	flag.Func("template", "a template to build instead of the local examples (repeatable)", func(s string) error {
		o.templates = append(o.templates, s)
		return nil
	})
	flag.StringVar(&o.region, "region", "us-east-1", "region of the builds")
	flag.StringVar(&o.bucket, "bucket", "demo-bundles", "S3 bucket the runner creates for instance-store bundles")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (packer logs, provisioner output)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "time limit of each packer build")
	flag.StringVar(&o.benchJSON, "bench-json", "", "bench mode: measure the builds against the minimum and write the results as JSON to this file (- for standard output); see bench.go")
	flag.IntVar(&o.reps, "reps", 2, "bench mode: runs of each measurement; the best is kept")
	flag.DurationVar(&o.latency, "latency", 50*time.Millisecond, "bench mode: latency added to every AWS call")
	flag.BoolVar(&o.listCalls, "calls", false, "bench mode: list every AWS call of each packer build")
	flag.Float64Var(&o.modelSpeed, "model-speed", 0, "bench mode: also build each example under awstest's time model, this many times faster than AWS (0 = not)")
	vm := flag.Bool("vm", false, "build the vm example only: an instance-store AMI from a Debian VM booted under qemu (needs root, qemu and debootstrap; see sdk/vmtest), then boot the AMI's image and check it")
	flag.Parse()
	if *vm {
		o.only = "vm"
	}
	if o.benchJSON != "" && !flagSet("only") {
		o.only = allDemos
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	runner := run
	if o.benchJSON != "" {
		runner = runBench
	}
	if err := runner(ctx, o, os.Stdout); err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted; the emulator and the SSH server were stopped")
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	packer         string
	only           string   // names of demos
	templates      []string // paths; replace only when set
	region, bucket string
	keep           bool
	timeout        time.Duration
	benchJSON      string        // bench mode when set
	reps           int           // bench mode: runs of each measurement
	latency        time.Duration // bench mode: added to every AWS call
	listCalls      bool          // bench mode: list the calls of each build
	modelSpeed     float64       // bench mode: also build under the time model, this many times faster than AWS
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// template is one template to build and what the runner knows of it.
type template struct {
	path, about string
	vars        map[string]bool // declared variables
	regions     []string        // target regions of ami-distribute
	publishes   bool            // ami-distribute writes parameters and launch templates
}

// product is an AMI a build made and kept.
type product struct {
	region, id, kind, build string
}

// run builds the chosen templates one after the other, then shows every
// AMI they made and checks that nothing else was left behind.
func run(ctx context.Context, o options, w io.Writer) (err error) {
	start := time.Now()
	s, err := setUp(ctx, &o, w, false)
	if err != nil {
		return err
	}
	defer s.close()

	var products []product
	for i, t := range s.templates {
		made, err := s.build(ctx, o, i+1, t, w)
		if err != nil {
			return err
		}
		products = append(products, made...)
	}
	if err := s.report(ctx, o, products, w); err != nil {
		return err
	}
	step(w, fmt.Sprintf("done in %s", time.Since(start).Round(100*time.Millisecond)))
	return nil
}

// build runs `packer build` of t, the n-th template, with its output
// indented on w, and returns the AMIs it made. The vm example builds on a
// Debian VM, which stays up until the stage closes, and its AMI's image is
// booted and checked afterwards.
func (s *stage) build(ctx context.Context, o options, n int, t template, w io.Writer) ([]product, error) {
	out, err := s.outDir(n)
	if err != nil {
		return nil, err
	}
	var v *vmStage
	if filepath.Base(t.path) == "vm.pkr.hcl" {
		if v, err = startVM(ctx, s.work, w); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, v.close)
	}
	rel, _ := filepath.Rel(mustRoot(), t.path)
	step(w, fmt.Sprintf("packer build %s  (%s)", rel, t.about))
	vars := templateVars(t, o, s.sshd, out)
	if v != nil {
		vars = templateVarsFor(t, o, v.m.Port, v.img.User, v.keyPath, out)
	}
	args := append([]string{"build"}, vars...)
	res, err := s.packer.Run(ctx, packertest.RunOptions{
		Args:    append(args, t.path),
		Stdout:  newIndent(w),
		Timeout: o.timeout,
	})
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("packer build %s exited %d (rerun with -keep to keep its debug log %s)", rel, res.ExitCode, res.LogPath)
	}
	made := artifacts(res.Stdout)
	if len(made) == 0 {
		return nil, fmt.Errorf("packer build %s reported no AMI", rel)
	}
	if v != nil {
		if err := checkVMImage(ctx, v, s.s3, o.bucket, out, w); err != nil {
			return nil, err
		}
	}
	return made, nil
}

// report shows what the builds made: every AMI in every region, what was
// published and the bundle objects; then the leak check, which fails when
// anything else was left behind.
func (s *stage) report(ctx context.Context, o options, products []product, w io.Writer) error {
	images, objects, kept, leaked := s.kept(ctx, products, o.bucket)
	if images == nil && leaked != nil {
		return leaked
	}
	step(w, "every AMI made, in every region")
	if err := writeImages(w, products, images); err != nil {
		return err
	}
	if slices.ContainsFunc(s.templates, func(t template) bool { return t.publishes }) {
		step(w, "published: the AMIs each account owns, "+demoParameter+" and the default version of launch template "+demoTemplate)
		if err := writePublished(ctx, w, s.moto.Endpoint, s.regions); err != nil {
			return err
		}
	}
	if needsBucket(s.templates) {
		step(w, fmt.Sprintf("bundle objects in s3://%s", o.bucket))
		writeObjects(w, o.bucket, objects)
	}
	step(w, s.leakCheckTitle())
	if leaked != nil {
		return leaked
	}
	fmt.Fprintf(w, "    only the products remain: %s\n", kept)
	fmt.Fprintf(w, "    no instances, volumes, key pairs, security groups or unfinished uploads\n")
	return nil
}

// templateVars returns the -var arguments for the variables t declares:
// the region, the SSH server, the output directory and the bucket.
func templateVars(t template, o options, sshd *awstest.SSHD, out string) []string {
	return templateVarsFor(t, o, sshd.Port, sshd.User, sshd.PrivateKeyPath, out)
}

// templateVarsFor is templateVars for any SSH server, such as the VM of
// the vm example.
func templateVarsFor(t template, o options, port int, user, keyPath, out string) []string {
	var args []string
	for _, v := range []struct{ name, value string }{
		{"region", o.region},
		{"ssh_port", strconv.Itoa(port)},
		{"ssh_username", user},
		{"ssh_private_key_file", keyPath},
		{"output_dir", out},
		{"s3_bucket", o.bucket},
	} {
		if t.vars[v.name] {
			args = append(args, "-var", v.name+"="+v.value)
		}
	}
	return args
}

// selectTemplates resolves -template or -only into templates and reads
// what the runner needs from each.
func selectTemplates(o options) ([]template, error) {
	var ts []template
	if len(o.templates) > 0 {
		for _, p := range o.templates {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, err
			}
			t, err := readTemplate(abs)
			if err != nil {
				return nil, err
			}
			t.about = "your template"
			ts = append(ts, t)
		}
		return ts, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(o.only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.ContainsFunc(demos, func(d demo) bool { return d.name == n }) {
			return nil, fmt.Errorf("-only: unknown example %q (choose from ebs, distribute, instance, vm)", n)
		}
		want[n] = true
	}
	if len(want) == 0 {
		return nil, errors.New("-only: no example chosen (choose from ebs, distribute, instance, vm)")
	}
	root, err := packertest.ModuleRoot()
	if err != nil {
		return nil, err
	}
	for _, d := range demos {
		if !want[d.name] {
			continue
		}
		t, err := readTemplate(filepath.Join(root, "example", "local", d.file))
		if err != nil {
			return nil, err
		}
		t.about = d.about
		ts = append(ts, t)
	}
	return ts, nil
}

// readTemplate parses an HCL template for its declared variables and the
// literal target regions of its ami-distribute post-processors.
func readTemplate(path string) (template, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return template{}, fmt.Errorf("template: %w", err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return template{}, fmt.Errorf("template: %w", diags)
	}
	t := template{path: path, vars: map[string]bool{}}
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for _, blk := range b.Blocks {
			switch {
			case blk.Type == "variable" && len(blk.Labels) == 1:
				t.vars[blk.Labels[0]] = true
			case blk.Type == "post-processor" && len(blk.Labels) == 1 && blk.Labels[0] == "ami-distribute":
				for _, inner := range blk.Body.Blocks {
					t.publishes = t.publishes || inner.Type == "ssm_parameters" || inner.Type == "launch_templates" || inner.Type == "target_accounts"
				}
				t.regions = append(t.regions, literalStrings(blk.Body, "regions")...)
			case blk.Type == "source" && len(blk.Labels) == 2 && blk.Labels[0] == "ami-ebs":
				t.regions = append(t.regions, literalStrings(blk.Body, "ami_regions")...)
			case blk.Type == "build" || blk.Type == "post-processors":
				walk(blk.Body)
			}
		}
	}
	walk(f.Body.(*hclsyntax.Body))
	return t, nil
}

// literalStrings returns the known string elements of the attribute name
// of body when its value needs no evaluation context (a literal list);
// nil otherwise.
func literalStrings(body *hclsyntax.Body, name string) []string {
	a, ok := body.Attributes[name]
	if !ok {
		return nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || !v.CanIterateElements() {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsKnown() && e.Type() == cty.String {
			out = append(out, e.AsString())
		}
	}
	return out
}

func needsBucket(ts []template) bool {
	return slices.ContainsFunc(ts, func(t template) bool { return t.vars["s3_bucket"] })
}

func createBucket(ctx context.Context, c *s3.Client, bucket, region string) error {
	in := &s3.CreateBucketInput{
		Bucket:          aws.String(bucket),
		ObjectOwnership: s3types.ObjectOwnershipBucketOwnerPreferred,
	}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{
			LocationConstraint: s3types.BucketLocationConstraint(region),
		}
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		return fmt.Errorf("create bucket %s in %s: %w", bucket, region, err)
	}
	return nil
}

var (
	artifactHead = regexp.MustCompile(`^--> (\S+): `)
	artifactAMI  = regexp.MustCompile(`^([a-z]{2}(?:-[a-z]+)+-\d+): (ami-[0-9a-f]+)`)
)

// artifacts reads the AMIs of the final artifacts from packer's output:
//
//	==> Builds finished. The artifacts of successful builds are:
//	--> ami-ebs.demo: AMIs distributed:
//	us-east-1: ami-… (source)
//	eu-west-1: ami-… (copy of ami-…)
//
// The builder in the build's name says what kind of AMI it is; copies made
// by ami-distribute are of the same kind as their source.
func artifacts(out string) []product {
	_, tail, ok := strings.Cut(out, "==> Builds finished.")
	if !ok {
		return nil
	}
	var ps []product
	build := ""
	for _, line := range strings.Split(tail, "\n") {
		if m := artifactHead.FindStringSubmatch(line); m != nil {
			build = m[1]
			continue
		}
		m := artifactAMI.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || build == "" {
			continue
		}
		kind := "?"
		switch {
		case strings.HasPrefix(build, "ami-ebs."):
			kind = "ebs"
		case strings.HasPrefix(build, "ami-instance."):
			kind = "instance-store"
		}
		if !slices.ContainsFunc(ps, func(p product) bool { return p.region == m[1] && p.id == m[2] }) {
			ps = append(ps, product{region: m[1], id: m[2], kind: kind, build: build})
		}
	}
	return ps
}

// image is what the emulator says of one product.
type image struct {
	img        ec2types.Image
	sharedWith []string
}

func describe(ctx context.Context, endpoint string, ps []product) (map[string]image, error) {
	byRegion := map[string][]string{}
	for _, p := range ps {
		byRegion[p.region] = append(byRegion[p.region], p.id)
	}
	out := map[string]image{}
	for region, ids := range byRegion {
		c, _ := awstest.Clients(endpoint, region)
		res, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: ids})
		if err != nil {
			return nil, fmt.Errorf("describe %s in %s: %w", strings.Join(ids, ", "), region, err)
		}
		for _, img := range res.Images {
			id := aws.ToString(img.ImageId)
			attr, err := c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
				ImageId:   img.ImageId,
				Attribute: ec2types.ImageAttributeNameLaunchPermission,
			})
			if err != nil {
				return nil, fmt.Errorf("launch permissions of %s in %s: %w", id, region, err)
			}
			var shared []string
			for _, lp := range attr.LaunchPermissions {
				switch {
				case lp.UserId != nil:
					shared = append(shared, aws.ToString(lp.UserId))
				case lp.Group != "":
					shared = append(shared, string(lp.Group))
				case lp.OrganizationArn != nil:
					shared = append(shared, orgShort(aws.ToString(lp.OrganizationArn)))
				case lp.OrganizationalUnitArn != nil:
					shared = append(shared, orgShort(aws.ToString(lp.OrganizationalUnitArn)))
				}
			}
			slices.Sort(shared)
			out[region+":"+id] = image{img: img, sharedWith: shared}
		}
	}
	for _, p := range ps {
		if _, ok := out[p.region+":"+p.id]; !ok {
			return nil, fmt.Errorf("%s in %s was reported by packer but does not exist", p.id, p.region)
		}
	}
	return out, nil
}

// orgShort turns an organization or OU ARN into its last path element.
func orgShort(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func writeImages(w io.Writer, ps []product, images map[string]image) error {
	tw := tabwriter.NewWriter(newIndent(w), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tAMI\tNAME\tTYPE\tTAGS\tSHARED WITH")
	for _, p := range ps {
		im := images[p.region+":"+p.id]
		var tags []string
		for _, t := range im.img.Tags {
			tags = append(tags, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
		}
		slices.Sort(tags)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.region, p.id, aws.ToString(im.img.Name), p.kind,
			dash(strings.Join(tags, ",")), dash(strings.Join(im.sharedWith, ",")))
	}
	return tw.Flush()
}

func listObjects(ctx context.Context, c *s3.Client, bucket string) ([]s3types.Object, error) {
	var objs []s3types.Object
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s: %w", bucket, err)
		}
		objs = append(objs, page.Contents...)
	}
	return objs, nil
}

func writeObjects(w io.Writer, bucket string, objs []s3types.Object) {
	if len(objs) == 0 {
		fmt.Fprintln(w, "    (none)")
		return
	}
	var total int64
	for _, o := range objs {
		fmt.Fprintf(w, "    %9d  s3://%s/%s\n", aws.ToInt64(o.Size), bucket, aws.ToString(o.Key))
		total += aws.ToInt64(o.Size)
	}
	fmt.Fprintf(w, "    %9d  bytes in %d objects\n", total, len(objs))
}

// keptSummary removes the products from leaks — the AMIs, their snapshots
// and the bundle objects — and describes what it removed.
func keptSummary(l *awstest.Leaks, ps []product, images map[string]image, bucket string, objs []s3types.Object) string {
	amis := map[string]bool{}
	snaps := map[string]bool{}
	regions := map[string]bool{}
	for _, p := range ps {
		amis[p.region+":"+p.id] = true
		regions[p.region] = true
		for _, bdm := range images[p.region+":"+p.id].img.BlockDeviceMappings {
			if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
				snaps[p.region+":"+aws.ToString(bdm.Ebs.SnapshotId)] = true
			}
		}
	}
	keys := map[string]bool{}
	for _, o := range objs {
		keys[bucket+"/"+aws.ToString(o.Key)] = true
	}
	drop := func(ids *[]string, keep map[string]bool) int {
		n := len(*ids)
		*ids = slices.DeleteFunc(*ids, func(id string) bool { return keep[id] })
		return n - len(*ids)
	}
	nAMI := drop(&l.Images, amis)
	nSnap := drop(&l.Snapshots, snaps)
	nObj := drop(&l.S3Objects, keys)
	s := fmt.Sprintf("%d AMIs in %d regions, %d snapshots of theirs", nAMI, len(regions), nSnap)
	if nObj > 0 {
		s += fmt.Sprintf(", %d bundle objects", nObj)
	}
	return s
}

func step(w io.Writer, msg string) { fmt.Fprintf(w, "\n==> %s\n", msg) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func mustRoot() string {
	root, err := packertest.ModuleRoot()
	if err != nil {
		return "."
	}
	return root
}

// indent writes every line four spaces in, so that the runner's own
// headings stand out from packer's output.
type indent struct {
	w   io.Writer
	mid bool // the last write ended inside a line
}

func newIndent(w io.Writer) *indent { return &indent{w: w} }

func (i *indent) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		if !i.mid && line != "\n" {
			b.WriteString("    ")
		}
		b.WriteString(line)
		i.mid = !strings.HasSuffix(line, "\n")
	}
	if _, err := io.WriteString(i.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
