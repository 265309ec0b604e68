//go:build unix

package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/amiforge/packer-plugin-ami/builder/amiconfig"
	"github.com/amiforge/packer-plugin-ami/example/internal/benchreport"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// TestRunBench runs bench mode on ebs.pkr.hcl once: the report must hold
// the build, its null build and its minimum, every call must carry the
// app id of ami-ebs, and moto and the SSH server must be gone afterwards.
func TestRunBench(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "bench.json")
	w := &watchWriter{}
	err := runBench(ctx, options{only: "ebs", region: "us-east-1", bucket: "demo-bundles", timeout: 2 * time.Minute,
		benchJSON: out, reps: 1, latency: 10 * time.Millisecond}, w)
	got := w.String()
	if err != nil {
		t.Fatalf("runBench() = %v; output:\n%s", err, got)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r benchreport.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if r.LatencyMS != 10 || r.Reps != 1 || len(r.Templates) != 1 {
		t.Fatalf("report = %s, want one template, 10 ms, 1 run", b)
	}
	tpl := r.Templates[0]
	if tpl.Template != "ebs.pkr.hcl" || tpl.WallSeconds <= 0 || tpl.NullBuildSeconds <= 0 || tpl.MinimumSeconds <= 0 {
		t.Errorf("template = %+v, want ebs.pkr.hcl with every time measured", tpl)
	}
	if tpl.Unattributed != 0 {
		t.Errorf("%d calls without the app id of ami-ebs", tpl.Unattributed)
	}
	if len(tpl.Components) != 1 || tpl.Components[0].Component != "ami-ebs" {
		t.Fatalf("components = %+v, want ami-ebs alone", tpl.Components)
	}
	if c := tpl.Components[0]; c.MinimumCalls != 13 || c.Calls < c.MinimumCalls {
		t.Errorf("ami-ebs: %d calls, minimum %d; want a minimum of 13 and no fewer calls", c.Calls, c.MinimumCalls)
	}
	if !strings.Contains(got, "ami-ebs: ") || !strings.Contains(got, "beyond the minimum: ") {
		t.Errorf("output lacks the calls beyond the minimum:\n%s", got)
	}
	for _, addr := range listeners(t, got) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after runBench() returned", addr)
		}
	}
}

func TestNullTemplate(t *testing.T) {
	for _, name := range []string{"ebs.pkr.hcl", "distribute.pkr.hcl", "instance.pkr.hcl"} {
		t.Run(name, func(t *testing.T) {
			src, err := nullTemplate(name)
			if err != nil {
				t.Fatal(err)
			}
			f, diags := hclsyntax.ParseConfig([]byte(src), "null.pkr.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatalf("null template does not parse: %v\n%s", diags, src)
			}
			orig, err := readTemplate(name)
			if err != nil {
				t.Fatal(err)
			}
			var sources, provisioners, vars int
			for _, blk := range f.Body.(*hclsyntax.Body).Blocks {
				switch blk.Type {
				case "variable":
					vars++
				case "source":
					sources++
					if got := strings.Join(blk.Labels, "."); got != "null.bench" {
						t.Errorf("source %s, want null.bench", got)
					}
					for _, a := range []string{"communicator", "ssh_host", "ssh_port", "ssh_username", "ssh_private_key_file"} {
						if _, ok := blk.Body.Attributes[a]; !ok {
							t.Errorf("the null source has no %s", a)
						}
					}
					for a := range blk.Body.Attributes {
						if a == "region" || a == "instance_type" || a == "ami_name" {
							t.Errorf("the null source has the AWS setting %s", a)
						}
					}
				case "build":
					for _, b := range blk.Body.Blocks {
						switch b.Type {
						case "provisioner":
							provisioners++
						default:
							t.Errorf("the null build has a %s block", b.Type)
						}
					}
				}
			}
			if sources != 1 || provisioners != 1 || vars != len(orig.vars) {
				t.Errorf("%d sources, %d provisioners, %d variables; want 1, 1 and %d:\n%s", sources, provisioners, vars, len(orig.vars), src)
			}
		})
	}
}

func TestComponentOfAndExtra(t *testing.T) {
	call := func(ua string) awstest.Call {
		return awstest.Call{Header: http.Header{"User-Agent": {ua}}}
	}
	for _, tc := range []struct{ ua, want string }{
		{"aws-sdk-go-v2/1.41.0 os/linux app/" + amiconfig.AppIDDistribute, "ami-distribute"},
		{"aws-sdk-go-v2/1.41.0 app/" + amiconfig.AppIDEBS + " m/E", "ami-ebs"},
		{"aws-sdk-go-v2/1.41.0 app/other-tool", unattributed},
		{"aws-sdk-go-v2/1.41.0 os/linux", unattributed},
	} {
		if got := componentOf(call(tc.ua)); got != tc.want {
			t.Errorf("componentOf(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
	got := extra(map[string]int{"ec2:DescribeImages": 3, "ec2:RunInstances": 1}, map[string]int{"ec2:DescribeImages": 1, "ec2:RunInstances": 1, "ec2:CreateTags": 1})
	if want := "-1 ec2:CreateTags, +2 ec2:DescribeImages"; got != want {
		t.Errorf("extra() = %q, want %q", got, want)
	}
}
