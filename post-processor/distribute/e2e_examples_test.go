//go:build unix

package distribute

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// exampleTemplate returns the path of a template under example/.
func exampleTemplate(t *testing.T, rel string) string {
	t.Helper()
	root, err := packertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "example", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestE2EExamples validates the real-AWS example and builds the local one
// against moto, with the loopback sshd as the build instance, as the demo
// does.
func TestE2EExamples(t *testing.T) {
	e := newE2EWorld(t)

	t.Run("validate example/distribute.pkr.hcl", func(t *testing.T) {
		e.proxy.Reset()
		res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"validate", exampleTemplate(t, "distribute.pkr.hcl")}})
		if res.ExitCode != 0 {
			t.Fatalf("packer validate exited %d", res.ExitCode)
		}
		if n := len(e.proxy.Calls()); n != 0 {
			t.Errorf("packer validate made %d AWS calls", n)
		}
	})

	t.Run("build example/local/distribute.pkr.hcl", func(t *testing.T) {
		sshd := awstest.NewSSHD(t)
		out := filepath.Join(t.TempDir(), "instance")
		if err := os.MkdirAll(out, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(out, 0o777); err != nil { // the SSH user may differ
			t.Fatal(err)
		}
		// The launch template the example bumps, here and in the other
		// account (teamAccount, which the example names too).
		ctx := context.Background()
		for _, c := range []*ec2.Client{e.clients[srcRegion], e.clients[euRegion], e.clients[apRegion], ec2.NewFromConfig(teamConfig(e.moto.Endpoint, euRegion))} {
			_, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
				LaunchTemplateName: aws.String("demo-web"),
				LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")},
			})
			if err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
				t.Fatal(err)
			}
		}
		e.proxy.Reset()
		res := e.packer.RunT(t, packertest.RunOptions{Args: []string{"build", "-machine-readable",
			"-var", "ssh_port=" + strconv.Itoa(sshd.Port),
			"-var", "ssh_username=" + sshd.User,
			"-var", "ssh_private_key_file=" + sshd.PrivateKeyPath,
			"-var", "output_dir=" + out,
			exampleTemplate(t, filepath.Join("local", "distribute.pkr.hcl")),
		}})
		if res.ExitCode != 0 {
			t.Fatalf("packer build exited %d", res.ExitCode)
		}
		amis := distributedAMIs(t, res, "ami-ebs.demo")
		if len(amis) != 3 {
			t.Fatalf("distributed AMIs = %v, want three regions", amis)
		}
		for _, r := range allRegions {
			if got := e.launchPermissions(t, r, amis[r]); len(got) != 3 {
				t.Errorf("%s: launch permissions = %q, want two accounts and an organization", r, got)
			}
		}
		if !strings.Contains(res.Output(), "Per-region results") {
			t.Error("the per-region table is missing from the output")
		}
		m := readManifest(t, filepath.Join(out, "distribute-manifest.json"))
		if m.ArtifactID == "" || len(m.Regions) != 4 || len(m.Parameters) != 4 || len(m.LaunchTemplates) != 4 {
			t.Errorf("manifest = %+v", m)
		}
		l := e.leaks(t)
		var want []string
		for _, r := range allRegions {
			want = append(want, r+":"+amis[r])
		}
		if !slices.Equal(l.Images, sortedCopy(want)) {
			t.Errorf("images = %q, want %q", l.Images, sortedCopy(want))
		}
	})
}
