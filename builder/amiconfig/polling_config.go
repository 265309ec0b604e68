//go:generate packer-sdc mapstructure-to-hcl2 -type PollingConfig
//go:generate packer-sdc struct-markdown

package amiconfig

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/image"
)

// PollingConfig tunes how the builder waits for instances and images to
// reach a state. By default the first check comes at once and then one
// every 5 seconds for an instance, for at most 20 minutes, and every 10
// seconds for an image, for at most 60 minutes.
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
	// defaults of 5 seconds for instances and 10 seconds for images.
	DelaySeconds int `mapstructure:"delay_seconds" required:"false"`
	// The maximum number of checks before giving up. The longest wait is
	// `max_attempts` × `delay_seconds` (15 seconds, HashiCorp's default
	// delay, when `delay_seconds` is not set; checks still come every 5 or
	// 10 seconds then). Zero keeps the default limits.
	MaxAttempts int `mapstructure:"max_attempts" required:"false"`

	// scale multiplies every delay between checks (not the longest wait);
	// read from TimeScaleEnv by Prepare, 0 = 1.
	scale float64
}

// defaultPollDelay is the delay used to turn max_attempts into a duration
// when delay_seconds is not set (HashiCorp's default delay, so that a
// template's max_attempts keeps its longest wait).
const defaultPollDelay = 15 * time.Second

// TimeScaleEnv names the environment variable that speeds up polling in
// tests: a number in (0,1] multiplying every delay between two checks
// (never the longest wait), so that a test against an emulator that makes
// resources wait notices their changes sooner. Users never need it.
// Prepare reports a malformed value as an error.
const TimeScaleEnv = "PACKER_PLUGIN_AMI_TEST_TIME_SCALE"

// parseTimeScale reads the value of TimeScaleEnv; "" means 1.
func parseTimeScale(v string) (float64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 1, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1 {
		return 0, fmt.Errorf("%s: %q is not a number greater than 0 and at most 1; it is a test setting, unset it", TimeScaleEnv, v)
	}
	return f, nil
}

// Prepare validates the polling configuration.
func (c *PollingConfig) Prepare() []error {
	var errs []error
	if c.DelaySeconds < 0 {
		errs = append(errs, fmt.Errorf("aws_polling.delay_seconds: %d is negative; use 0 for the default or a number of seconds", c.DelaySeconds))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("aws_polling.max_attempts: %d is negative; use 0 for the default or a number of attempts", c.MaxAttempts))
	}
	scale, err := parseTimeScale(os.Getenv(TimeScaleEnv))
	if err != nil {
		errs = append(errs, err)
	}
	c.scale = scale
	return errs
}

// durations returns the minimum delay, maximum delay and maximum wait;
// zero values mean the SDK's defaults (sdkDelay between two checks).
// The time scale read by Prepare multiplies the delays, not the wait.
func (c *PollingConfig) durations(sdkDelay time.Duration) (minDelay, maxDelay, maxWait time.Duration) {
	delay := time.Duration(c.DelaySeconds) * time.Second
	if c.MaxAttempts > 0 {
		per := delay
		if per == 0 {
			per = defaultPollDelay
		}
		maxWait = time.Duration(c.MaxAttempts) * per
	}
	if c.scale > 0 && c.scale < 1 {
		if delay == 0 {
			delay = sdkDelay
		}
		delay = max(time.Duration(float64(delay)*c.scale), time.Millisecond)
	}
	if delay > 0 {
		minDelay, maxDelay = delay, delay
	}
	return minDelay, maxDelay, maxWait
}

// Durations returns the minimum delay, maximum delay and maximum wait of
// image waits; zero values mean the SDK's defaults.
func (c *PollingConfig) Durations() (minDelay, maxDelay, maxWait time.Duration) {
	return c.durations(image.DefaultPollDelay)
}
