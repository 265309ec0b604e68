//go:build unix

package ebs

import (
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// TestStepCreateImageReportsProgress: while the new AMI is pending the
// step tells the UI how far its snapshots are, once a minute, on the
// schedule and limits of aws_polling.
func TestStepCreateImageReportsProgress(t *testing.T) {
	ui := &packersdk.MockUi{}
	step := &stepCreateImage{Region: testRegion, Wait: image.WaitOptions{MinDelay: 5 * time.Second, MaxDelay: 5 * time.Second, MaxWait: time.Hour}}
	w := step.waitOptions(ui)
	if w.MinDelay != 5*time.Second || w.MaxDelay != 5*time.Second || w.MaxWait != time.Hour {
		t.Errorf("wait options changed: %+v", w)
	}
	if w.Progress == nil || w.ProgressInterval != time.Minute {
		t.Fatalf("progress every %v (callback set: %v), want every minute", w.ProgressInterval, w.Progress != nil)
	}
	w.Progress(image.Progress{ImageID: "ami-1", Region: testRegion, State: "pending", Elapsed: 2 * time.Minute, SnapshotPercent: 70})
	want := testRegion + ": ami-1 pending, snapshots 70 %, 2m0s"
	if len(ui.SayMessages) != 1 || ui.SayMessages[0].Message != want {
		t.Errorf("UI messages = %+v, want %q", ui.SayMessages, want)
	}
}
