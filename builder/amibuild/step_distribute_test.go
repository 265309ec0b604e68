//go:build unix

package amibuild

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/distribute"
	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// TestStepDistributeUnknownCopy checks what the build tells the user when
// cleanup cannot find out whether an interrupted CopyImage made a copy:
// the region, the AMI name and the tag to check, and no claim that every
// copy was removed.
func TestStepDistributeUnknownCopy(t *testing.T) {
	e := newTestEnv(t)
	name := uniqueName(t)
	id, _ := createImage(t, e.ec2, aws.ToString(sourceImage(t, e.ec2).ImageId), name)
	const target = "eu-west-1"
	// CopyImage gets no answer, nor does its replay in cleanup, and the
	// search for the copy's tag fails: the outcome cannot be known.
	e.proxy.SetFault(func(_ *http.Request, c awstest.Call) *awstest.Fault {
		switch {
		case awstest.Matches(c, "ec2", "CopyImage"):
			return &awstest.Fault{Name: "no answer", Reset: true}
		case awstest.Matches(c, "ec2", "DescribeImages") && c.Params.Get("Filter.1.Name") == "tag:"+distribute.CopyTokenTag:
			return &awstest.Fault{Name: "tag search fails", Code: "InternalError"}
		}
		return nil
	})
	ui := &transcriptUI{MockUi: e.ui}
	StateUI.Put(e.state, ui)
	StateImageID.Put(e.state, id)
	cfg := &AMIConfig{AMIName: name, AMIRegions: []string{target}}
	if errs := cfg.PrepareDistribution(testRegion); len(errs) > 0 {
		t.Fatal(errs)
	}
	step := &StepDistribute{Region: testRegion, Config: cfg, Wait: image.WaitOptions{MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxWait: time.Minute}}
	err := e.runHalt(t, step)
	defer step.Cleanup(e.state)

	copies := e.proxy.CallsFor("ec2", "CopyImage")
	if len(copies) < 2 {
		t.Fatalf("CopyImage calls = %d, want the copy and its replay in cleanup", len(copies))
	}
	token := copies[0].Params.Get("ClientToken")
	if token == "" || copies[1].Params.Get("ClientToken") != token {
		t.Fatalf("the replay's client token %q differs from the copy's %q", copies[1].Params.Get("ClientToken"), token)
	}
	var ue *distribute.UnknownCopyError
	if !errors.As(err, &ue) || ue.Region != target || ue.Name != name || ue.ClientToken != token {
		t.Errorf("error %v: UnknownCopyError %+v, want region %s, name %q, token %s", err, ue, target, name, token)
	}
	said := ui.String()
	t.Logf("output:\n%s", said)
	for _, want := range []string{
		"check " + target + " for an AMI named " + `"` + name + `"`,
		"tagged " + distribute.CopyTokenTag + "=" + token,
		string(distribute.StatusUnknown),
	} {
		if !strings.Contains(said, want) {
			t.Errorf("output does not say %q", want)
		}
	}
	for _, claim := range []string{"every copy", "were removed", "was removed"} {
		if strings.Contains(strings.ToLower(said), claim) {
			t.Errorf("output claims %q", claim)
		}
	}
	if amis, ok := StateAMIs.Get(e.state); ok {
		t.Errorf("StateAMIs = %v after a failed distribution", amis)
	}
}
