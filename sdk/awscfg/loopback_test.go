//go:build unix

package awscfg

import "testing"

func TestLoopbackEndpoint(t *testing.T) {
	for ep, want := range map[string]bool{
		"http://127.0.0.1:5000":                             true,
		"http://127.10.0.3":                                 true,
		"http://[::1]:5000":                                 true,
		"http://LocalHost:4566":                             true,
		"https://vpce-123.ec2.us-east-1.vpce.amazonaws.com": false,
		"https://ec2-fips.us-east-1.amazonaws.com":          false,
		"http://10.0.0.5:5000":                              false,
		"127.0.0.1:5000":                                    false, // no scheme: not a URL with a host
		"":                                                  false,
	} {
		if got := LoopbackEndpoint(ep); got != want {
			t.Errorf("LoopbackEndpoint(%q) = %v, want %v", ep, got, want)
		}
	}
}
