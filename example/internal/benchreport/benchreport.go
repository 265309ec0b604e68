// Package benchreport is the JSON report `go run ./example/local
// -bench-json FILE` writes and example/ami-bench reads: for each local
// example template, the best wall time of its `packer build`, of a build of
// Packer's null builder with the same provisioners and of the minimum call
// sequence, the calls per component against that component's minimum, and
// optionally the same build under awstest's time model.
package benchreport

// Report is the whole report.
type Report struct {
	// LatencyMS is the latency the proxy added to every call.
	LatencyMS float64 `json:"latency_ms"`
	// Reps is how many runs of each measurement were made (the best kept).
	Reps      int        `json:"reps"`
	Templates []Template `json:"templates"`
}

// Template is one example template's measurements.
type Template struct {
	Template         string  `json:"template"`
	WallSeconds      float64 `json:"wall_seconds"`
	NullBuildSeconds float64 `json:"null_build_seconds"`
	MinimumSeconds   float64 `json:"minimum_seconds"`
	// Unattributed counts the calls without a known app id.
	Unattributed int         `json:"unattributed_calls"`
	Components   []Component `json:"components"`
	Model        *Model      `json:"model,omitempty"`
}

// Component is one component's calls in a template's build (told apart by
// the app id in the User-Agent) and its minimum.
type Component struct {
	Component    string `json:"component"`
	Calls        int    `json:"calls"`
	MinimumCalls int    `json:"minimum_calls"`
}

// Model is one build under the time model.
type Model struct {
	// Speed is how many times faster than AWS the model runs.
	Speed float64 `json:"speed"`
	// WallSeconds is the build under the model (wall).
	WallSeconds float64 `json:"wall_seconds"`
	// IdealAWSSeconds is the modelled AWS time on the critical path (model
	// time).
	IdealAWSSeconds float64 `json:"ideal_aws_seconds"`
	// Waits counts the transitions the build waited for.
	Waits int `json:"waits"`
	// MedianLagSeconds and P95LagSeconds are the detection lags over those
	// waits (model time).
	MedianLagSeconds float64 `json:"median_lag_seconds"`
	P95LagSeconds    float64 `json:"p95_lag_seconds"`
	// NoWaitSeconds is the same build without the model, at the model's
	// latency (wall).
	NoWaitSeconds float64 `json:"no_wait_seconds"`
}
