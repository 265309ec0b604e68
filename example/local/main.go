// Command local runs example/local/ebs.pkr.hcl with the real packer binary
// against a local AWS emulator, then prints the AMIs it made. `make demo`
// runs it:
//
//	go run ./example/local -packer ./bin/packer -template example/local/ebs.pkr.hcl
//
// It starts moto_server on a free 127.0.0.1 port and an OpenSSH server on
// 127.0.0.1 that stands in for the build instance, builds and installs the
// plugin into a private plugin directory, runs `packer build`, lists the
// AMIs (region, id, name, tags) and what the build left behind, and stops
// everything again. Nothing reaches real AWS.
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
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

func main() {
	var o options
	flag.StringVar(&o.packer, "packer", "", "packer binary (default: <module root>/bin/packer)")
	flag.StringVar(&o.template, "template", "example/local/ebs.pkr.hcl", "template to build")
	flag.StringVar(&o.region, "region", "us-east-1", "region of the build")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (packer log, provisioner output)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "time limit of the build")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	packer, template, region string
	keep                     bool
	timeout                  time.Duration
}

func run(ctx context.Context, o options, w io.Writer) (err error) {
	template, err := filepath.Abs(o.template)
	if err != nil {
		return err
	}
	if _, err := os.Stat(template); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	work, err := os.MkdirTemp("", "ami-demo-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintf(w, "\nwork directory kept: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	step(w, "starting moto_server (local AWS) on 127.0.0.1")
	moto, err := awstest.StartMoto(ctx, awstest.MotoOptions{})
	if err != nil {
		return err
	}
	defer moto.Stop()
	fmt.Fprintf(w, "    %s\n", moto.Endpoint)

	step(w, "starting an OpenSSH server on 127.0.0.1 as the build instance")
	sshd, err := awstest.StartSSHD(ctx, filepath.Join(work, "sshd"))
	if err != nil {
		return err
	}
	defer sshd.Stop()
	fmt.Fprintf(w, "    %s@%s:%d\n", sshd.User, sshd.Host, sshd.Port)

	// The SSH user may differ from ours: let it write the provisioner's file.
	outDir := filepath.Join(work, "instance")
	if err := os.MkdirAll(outDir, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(outDir, 0o777); err != nil {
		return err
	}

	step(w, "building the plugin and installing it into a private plugin directory")
	pk, err := packertest.Setup(ctx, work, packertest.Options{
		Packer: o.packer,
		Env:    awstest.Env(moto.Endpoint, o.region),
	})
	if err != nil {
		return err
	}

	ec2c, _ := awstest.Clients(moto.Endpoint, o.region)
	baseline, err := awstest.TakeSnapshot(ctx, moto.Endpoint, []string{o.region})
	if err != nil {
		return err
	}

	step(w, "packer build "+o.template)
	res, err := pk.Run(ctx, packertest.RunOptions{
		Args: []string{"build",
			"-var", "region=" + o.region,
			"-var", "ssh_port=" + strconv.Itoa(sshd.Port),
			"-var", "ssh_username=" + sshd.User,
			"-var", "ssh_private_key_file=" + sshd.PrivateKeyPath,
			"-var", "output_dir=" + outDir,
			template,
		},
		Stdout:  w,
		Timeout: o.timeout,
	})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("packer build exited %d (debug log: %s; rerun with -keep to keep it)", res.ExitCode, res.LogPath)
	}

	if b, err := os.ReadFile(filepath.Join(outDir, "provisioned.txt")); err == nil {
		step(w, "the provisioner wrote, over SSH: "+strings.TrimSpace(string(b)))
	}

	step(w, "AMIs in the emulator")
	if err := printImages(ctx, w, ec2c, o.region); err != nil {
		return err
	}

	leaks, err := awstest.ListLeaks(ctx, moto.Endpoint, []string{o.region}, baseline)
	if err != nil {
		return err
	}
	leaks.Images, leaks.Snapshots = nil, nil
	if leaks.Empty() {
		step(w, "nothing else left behind: no instances, key pairs or security groups")
	} else {
		return errors.New("the build left resources behind:\n" + leaks.String())
	}
	return nil
}

func step(w io.Writer, msg string) { fmt.Fprintf(w, "\n==> %s\n", msg) }

func printImages(ctx context.Context, w io.Writer, c *ec2.Client, region string) error {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		return fmt.Errorf("list AMIs in %s: %w", region, err)
	}
	if len(out.Images) == 0 {
		return errors.New("the build made no AMI")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tAMI\tNAME\tSTATE\tTAGS")
	for _, img := range out.Images {
		var tags []string
		for _, t := range img.Tags {
			tags = append(tags, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
		}
		sort.Strings(tags)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", region, aws.ToString(img.ImageId), aws.ToString(img.Name),
			img.State, strings.Join(tags, ","))
	}
	return tw.Flush()
}
