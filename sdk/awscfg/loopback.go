package awscfg

import (
	"net/netip"
	"net/url"
	"strings"
)

// LoopbackEndpoint reports whether the endpoint URL ep names a loopback
// host: an address in 127.0.0.0/8, ::1, or localhost. A local AWS emulator
// listens there; AWS and its VPC and FIPS endpoints never do.
func LoopbackEndpoint(ep string) bool {
	u, err := url.Parse(ep)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
