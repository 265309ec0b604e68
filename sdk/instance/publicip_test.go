//go:build unix

package instance

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPublicIP(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantCIDR string
		wantErr  string
	}{
		{name: "IPv4 as checkip.amazonaws.com answers", status: 200, body: "203.0.113.7\n", wantCIDR: "203.0.113.7/32"},
		{name: "IPv6", status: 200, body: "2001:db8::7", wantCIDR: "2001:db8::7/128"},
		{name: "IPv4 mapped into IPv6", status: 200, body: "::ffff:203.0.113.7", wantCIDR: "203.0.113.7/32"},
		{name: "server error", status: 503, body: "203.0.113.7", wantErr: "HTTP status 503 Service Unavailable"},
		{name: "not an address", status: 200, body: "<html>captive portal</html>", wantErr: `the answer "<html>captive portal</html>" is not an IP address`},
		{name: "CIDR instead of an address", status: 200, body: "203.0.113.0/24", wantErr: "is not an IP address"},
		{name: "unspecified", status: 200, body: "0.0.0.0", wantErr: "the answer 0.0.0.0 is not a usable address"},
		{name: "empty", status: 200, body: "", wantErr: `the answer "" is not an IP address`},
		{name: "long answer is cut", status: 200, body: strings.Repeat("x", 300), wantErr: strings.Repeat("x", 64) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			out, err := PublicIP(context.Background(), &PublicIPInput{URL: srv.URL + "/ip"})
			if got == nil || got.Method != http.MethodGet || got.URL.Path != "/ip" {
				t.Errorf("request = %v; want GET /ip", got)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "ask "+srv.URL+"/ip for this machine's public IP") {
					t.Fatalf("error = %v, want one naming the URL and containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.CIDR != tc.wantCIDR {
				t.Errorf("CIDR = %s, want %s", out.CIDR, tc.wantCIDR)
			}
		})
	}
}

func TestPublicIPUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := PublicIP(context.Background(), &PublicIPInput{URL: url})
	if err == nil || !strings.Contains(err.Error(), "ask "+url+" for this machine's public IP") {
		t.Errorf("error = %v, want one naming %s", err, url)
	}
}

func TestPublicIPDefaultURL(t *testing.T) {
	if DefaultCheckIPURL != "https://checkip.amazonaws.com" {
		t.Errorf("DefaultCheckIPURL = %q; HashiCorp's builders ask https://checkip.amazonaws.com", DefaultCheckIPURL)
	}
}
