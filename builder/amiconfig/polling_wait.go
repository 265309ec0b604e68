package amiconfig

import (
	"fmt"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// ImageWait returns the wait options for images.
func (c *PollingConfig) ImageWait() image.WaitOptions {
	lo, hi, max := c.Durations()
	return image.WaitOptions{MinDelay: lo, MaxDelay: hi, MaxWait: max}
}

// InstanceWait returns the wait options for instances.
func (c *PollingConfig) InstanceWait() instance.WaitOptions {
	lo, hi, max := c.durations(instance.DefaultPollDelay)
	return instance.WaitOptions{MinDelay: lo, MaxDelay: hi, MaxWait: max}
}

// progressInterval is the shortest time between two progress lines of a
// wait for an AMI.
const progressInterval = time.Minute

// ImageProgress returns w reporting, at most once a minute while the image
// is pending, a line through say such as "eu-west-1: ami-… pending,
// snapshots 45 %, 3m10s" (the snapshots' progress and the time waited).
// The schedule and limits of w are kept.
func ImageProgress(w image.WaitOptions, say func(string)) image.WaitOptions {
	w.ProgressInterval = progressInterval
	w.Progress = func(p image.Progress) {
		pct := "unknown"
		if p.SnapshotPercent >= 0 {
			pct = fmt.Sprintf("%d %%", p.SnapshotPercent)
		}
		say(fmt.Sprintf("%s: %s %s, snapshots %s, %s", p.Region, p.ImageID, p.State, pct, p.Elapsed.Round(time.Second)))
	}
	return w
}
