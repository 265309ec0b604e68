package amibuild

import (
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
