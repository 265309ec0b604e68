// Package ec2tag converts tag maps to the EC2 API's tag types. The order is
// always by key, so that two requests made from the same map are equal
// byte for byte (a replayed request with an idempotency token must be).
package ec2tag

import (
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tags returns m as EC2 tags sorted by key; empty (not nil) for an empty m.
func Tags(m map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// Spec returns the tag specification that tags a resource of type rt with
// m when it is made, or nil when m is empty.
func Spec(rt types.ResourceType, m map[string]string) []types.TagSpecification {
	if len(m) == 0 {
		return nil
	}
	return []types.TagSpecification{{ResourceType: rt, Tags: Tags(m)}}
}
