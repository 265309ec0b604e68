//go:build unix

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
)

// buildOpts describe a test template for one of the builders.
type buildOpts struct {
	Name      string   // ami_name; empty means a unique e2e-… name
	Extra     string   // extra lines in the source block
	Provision []string // inline shell commands
	// TempKey makes the build create a temporary key pair instead of using
	// the sshd client key.
	TempKey bool
	// PostProcessor is the body of an ami-distribute post-processor.
	PostProcessor string
}

// ebsTemplate is an ami-ebs build that provisions over SSH on the loopback
// sshd.
func (w *world) ebsTemplate(o buildOpts) string {
	if o.Name == "" {
		o.Name = uniqueName("e2e-ebs")
	}
	key := fmt.Sprintf("  ssh_private_key_file = %q\n", w.sshd.PrivateKeyPath)
	if o.TempKey {
		key = ""
	}
	return fmt.Sprintf(`source "ami-ebs" "e2e" {
  region        = %q
  instance_type = "t3.micro"
  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  ssh_host     = "127.0.0.1"
  ssh_port     = %d
  ssh_username = %q
  ssh_timeout  = "1m"
%s  ami_name     = %q
  tags = {
    Name = "e2e"
  }
%s
}

build {
  sources = ["source.ami-ebs.e2e"]
%s%s}
`, buildRegion, w.sshd.Port, w.sshd.User, key, o.Name, o.Extra, provisioner(o.Provision), postProcessor(o.PostProcessor))
}

// instanceTemplate is an ami-instance build whose provisioner makes a small
// ext4 image in dir that the builder then bundles into s3://bucket/prefix.
func (w *world) instanceTemplate(dir, prefix string, o buildOpts) string {
	if o.Name == "" {
		o.Name = uniqueName("e2e-store")
	}
	tree, img := filepath.Join(dir, "tree"), filepath.Join(dir, "root.img")
	provision := append([]string{
		"mkdir -p " + tree,
		"echo bundled > " + tree + "/marker.txt",
		"truncate -s 4M " + img,
		"mkfs.ext4 -q -F -d " + tree + " " + img,
	}, o.Provision...)
	key := fmt.Sprintf("  ssh_private_key_file = %q\n", w.sshd.PrivateKeyPath)
	if o.TempKey {
		key = ""
	}
	return fmt.Sprintf(`source "ami-instance" "e2e" {
  region         = %q
  instance_type  = "m3.medium"
  local_emulator = true
  source_ami    = %q
  ssh_host      = "127.0.0.1"
  ssh_port      = %d
  ssh_username  = %q
  ssh_timeout   = "1m"
%s  ami_name      = %q
  s3_bucket     = %q
  s3_prefix     = %q
  bundle_source = %q
%s
}

build {
  sources = ["source.ami-instance.e2e"]
%s%s}
`, buildRegion, storeSourceAMI, w.sshd.Port, w.sshd.User, key, o.Name, bucket, prefix, img, o.Extra,
		provisioner(provision), postProcessor(o.PostProcessor))
}

// distributeTemplate runs ami-distribute on an existing AMI with a null
// source.
func distributeTemplate(body string) string {
	return `source "null" "e2e" {
  communicator = "none"
}

build {
  sources = ["source.null.e2e"]
` + postProcessor(body) + `}
`
}

func provisioner(cmds []string) string {
	if len(cmds) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n  provisioner \"shell\" {\n    inline = [\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "      %q,\n", c)
	}
	b.WriteString("    ]\n  }\n")
	return b.String()
}

func postProcessor(body string) string {
	if body == "" {
		return ""
	}
	return "\n  post-processor \"ami-distribute\" {\n" + body + "\n  }\n"
}

// distributeBody is a post-processor body copying source (empty: the
// build's artifact) to the other two regions.
func distributeBody(source, extra string) string {
	s := ""
	if source != "" {
		s = fmt.Sprintf("    source_ami = %q\n", source)
	}
	return s + fmt.Sprintf(`    regions   = [%q, %q]
    ami_users = ["111122223333"]
    tags = {
      Distributed = "yes"
    }
%s`, euRegion, apRegion, extra)
}

// retries raises the SDK's attempts for runs with random faults: at a 10%
// fault rate, three attempts fail together once in a thousand calls.
const retries = "  max_retries = 10\n"
