package instance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// DefaultCheckIPURL is the service PublicIP asks by default: Amazon's, which
// answers with the caller's public address as plain text.
const DefaultCheckIPURL = "https://checkip.amazonaws.com"

// PublicIPInput says how to learn the public address of this machine.
type PublicIPInput struct {
	// URL answers a GET with the caller's address as plain text, such as
	// "203.0.113.7\n". Empty means DefaultCheckIPURL.
	URL string
	// Client sends the request. Nil means a client with a 30-second
	// timeout that honours the HTTP(S)_PROXY environment variables.
	Client *http.Client
}

// PublicIPOutput is the result of PublicIP.
type PublicIPOutput struct {
	// Addr is the public address.
	Addr netip.Addr
	// CIDR is the address as a one-address CIDR block: /32 for IPv4, /128
	// for IPv6, for a security group rule.
	CIDR string
}

// PublicIP asks a check-IP service for the public address of the machine
// running this code, as seen from the internet, for example to admit only
// that address into a temporary security group. An answer that is not a
// single IP address, or is the unspecified address, is an error.
func PublicIP(ctx context.Context, in *PublicIPInput, optFns ...func(*Options)) (*PublicIPOutput, error) {
	o := newOptions(optFns)
	url := in.URL
	if url == "" {
		url = DefaultCheckIPURL
	}
	client := in.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("ask %s for this machine's public IP: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s for this machine's public IP: %w", url, err)
	}
	defer resp.Body.Close()
	// An address is at most 45 characters; read a little more to tell a
	// longer answer apart.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return nil, fmt.Errorf("ask %s for this machine's public IP: read the answer: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ask %s for this machine's public IP: HTTP status %s", url, resp.Status)
	}
	text := strings.TrimSpace(string(body))
	addr, err := netip.ParseAddr(text)
	if err != nil {
		if len(text) > 64 {
			text = text[:64] + "…"
		}
		return nil, fmt.Errorf("ask %s for this machine's public IP: the answer %q is not an IP address", url, text)
	}
	addr = addr.Unmap()
	if addr.IsUnspecified() || addr.Zone() != "" {
		return nil, fmt.Errorf("ask %s for this machine's public IP: the answer %s is not a usable address", url, addr)
	}
	cidr := netip.PrefixFrom(addr, addr.BitLen()).String()
	o.logf("%s says this machine's public IP is %s", url, addr)
	return &PublicIPOutput{Addr: addr, CIDR: cidr}, nil
}
