//go:generate packer-sdc mapstructure-to-hcl2 -type PollingConfig
//go:generate packer-sdc struct-markdown

package amibuild

import (
	"fmt"
	"time"
)

// PollingConfig tunes how the builder waits for instances and images to
// reach a state. By default the first check comes within a few seconds and
// the interval backs off to 30 seconds, for at most 60 minutes.
//
// ```hcl
//
//	aws_polling {
//	  delay_seconds = 10
//	  max_attempts  = 120
//	}
//
// ```
type PollingConfig struct {
	// The fixed number of seconds between two checks. Zero uses the
	// adaptive default.
	DelaySeconds int `mapstructure:"delay_seconds" required:"false"`
	// The maximum number of checks before giving up. The longest wait is
	// `max_attempts` × `delay_seconds` (15 seconds when `delay_seconds` is
	// not set). Zero keeps the default limit of 60 minutes.
	MaxAttempts int `mapstructure:"max_attempts" required:"false"`
}

// defaultPollDelay is the delay used to turn max_attempts into a duration
// when delay_seconds is not set.
const defaultPollDelay = 15 * time.Second

// Prepare validates the polling configuration.
func (c *PollingConfig) Prepare() []error {
	var errs []error
	if c.DelaySeconds < 0 {
		errs = append(errs, fmt.Errorf("aws_polling.delay_seconds: %d is negative; use 0 for the default or a number of seconds", c.DelaySeconds))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("aws_polling.max_attempts: %d is negative; use 0 for the default or a number of attempts", c.MaxAttempts))
	}
	return errs
}

// Durations returns the minimum delay, maximum delay and maximum wait;
// zero values mean the SDK's defaults.
func (c *PollingConfig) Durations() (minDelay, maxDelay, maxWait time.Duration) {
	delay := time.Duration(c.DelaySeconds) * time.Second
	if delay > 0 {
		minDelay, maxDelay = delay, delay
	}
	if c.MaxAttempts > 0 {
		per := delay
		if per == 0 {
			per = defaultPollDelay
		}
		maxWait = time.Duration(c.MaxAttempts) * per
	}
	return minDelay, maxDelay, maxWait
}
