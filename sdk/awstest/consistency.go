//go:build unix

package awstest

import (
	"net/http"
	"regexp"
	"sync"
)

// ConsistencyOptions configures [EventualConsistency]. The zero value uses
// the defaults noted on each field.
type ConsistencyOptions struct {
	// Calls is how many calls naming a new resource fail before it becomes
	// visible. Zero means 2.
	Calls int
	// Window is how many calls after a create call a first mention of an id
	// of the created kind counts as the new resource. Zero means 30.
	Window int
	// Creates maps a create action to the id prefixes of the resources it
	// makes ("ami", "snap", "i", "vol"). nil means the map of [DefaultCreates].
	Creates map[string][]string
	// Spare lists actions that are never failed, because a NotFound there
	// means "already gone" to a careful client rather than "not yet
	// visible" (deletes, terminations, deregistrations). nil means
	// the list of [DefaultSpare].
	Spare []string
}

// DefaultCreates returns the EC2 actions [EventualConsistency] treats as
// creating resources, with the prefixes of the ids they create; a new map
// each time, which the caller may change.
func DefaultCreates() map[string][]string {
	return map[string][]string{
		"CreateImage":    {"ami", "snap"},
		"CopyImage":      {"ami", "snap"},
		"RegisterImage":  {"ami", "snap"},
		"RunInstances":   {"i", "vol"},
		"CreateSnapshot": {"snap"},
		"CopySnapshot":   {"snap"},
		"CreateVolume":   {"vol"},
	}
}

// DefaultSpare returns the actions [EventualConsistency] never fails; a
// new slice each time.
func DefaultSpare() []string {
	return []string{
		"TerminateInstances", "DeregisterImage", "DeleteSnapshot", "DeleteVolume",
		"DeleteKeyPair", "DeleteSecurityGroup", "CreateImage", "CopyImage", "RunInstances", "RegisterImage",
	}
}

// notFoundCodes are the error codes EC2 answers for an id it cannot see.
var notFoundCodes = map[string]string{
	"ami":  "InvalidAMIID.NotFound",
	"snap": "InvalidSnapshot.NotFound",
	"i":    "InvalidInstanceID.NotFound",
	"vol":  "InvalidVolume.NotFound",
}

var resourceIDRE = regexp.MustCompile(`^(ami|snap|i|vol)-[0-9a-f]{8,17}$`)

// EventualConsistency returns a fault function that simulates EC2's
// eventual consistency: for a while after a call creates an AMI, snapshot,
// instance or volume, calls that name the new resource fail with its
// NotFound code (InvalidAMIID.NotFound, InvalidSnapshot.NotFound,
// InvalidInstanceID.NotFound, InvalidVolume.NotFound, HTTP 400), as EC2
// does until the resource has propagated.
//
// The proxy sees requests, not responses, so the new resource is
// recognised by its id: after a create call (see [ConsistencyOptions]
// Creates), the first request within Window calls that names an id of a
// created kind that no earlier request named is taken to name the new
// resource. That id then fails the next Calls requests naming it (except
// Spare actions) and works afterwards. The outcome depends only on the
// sequence of calls, so a run can be replayed. Combine it with other
// faults using [FirstFault].
func EventualConsistency(opts ConsistencyOptions) FaultFunc {
	if opts.Calls <= 0 {
		opts.Calls = 2
	}
	if opts.Window <= 0 {
		opts.Window = 30
	}
	if opts.Creates == nil {
		opts.Creates = DefaultCreates()
	}
	if opts.Spare == nil {
		opts.Spare = DefaultSpare()
	}
	spare := map[string]bool{}
	for _, a := range opts.Spare {
		spare[a] = true
	}
	var (
		mu      sync.Mutex
		seen    = map[string]bool{}   // ids named by any request so far
		pending = map[string]int{}    // prefix -> calls left in the window
		fresh   = map[string]int{}    // id -> failures left
		faults  = map[string]*Fault{} // prefix -> fault
	)
	for prefix, code := range notFoundCodes {
		faults[prefix] = &Fault{Name: "eventual consistency " + code, Code: code, Status: http.StatusBadRequest}
	}
	return func(_ *http.Request, c Call) *Fault {
		if c.Service != "ec2" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		for prefix, left := range pending {
			if left <= 1 {
				delete(pending, prefix)
			} else {
				pending[prefix] = left - 1
			}
		}
		var hit *Fault
		for _, vs := range c.Params {
			for _, v := range vs {
				m := resourceIDRE.FindStringSubmatch(v)
				if m == nil {
					continue
				}
				id, prefix := m[0], m[1]
				if !seen[id] {
					seen[id] = true
					if pending[prefix] > 0 {
						fresh[id] = opts.Calls
					}
				}
				if n := fresh[id]; n > 0 && !spare[c.Action] && hit == nil {
					fresh[id] = n - 1
					hit = faults[prefix]
				}
			}
		}
		for _, prefix := range opts.Creates[c.Action] {
			pending[prefix] = opts.Window
		}
		return hit
	}
}
