//go:build unix

package instance

import (
	"strings"
	"testing"
)

func TestEC2CertFile(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":      "cert-ec2.pem",
		"eu-west-1":      "cert-ec2.pem",
		"us-gov-west-1":  "cert-ec2-gov.pem",
		"cn-north-1":     "cert-ec2-cn-north-1.pem",
		"cn-northwest-1": "cert-ec2-cn-north-1.pem",
	} {
		if got := ec2CertFile(region); got != want {
			t.Errorf("ec2CertFile(%q) = %q, want %q", region, got, want)
		}
	}
}

func TestLimitedBuffer(t *testing.T) {
	b := limitedBuffer{max: 5}
	for _, p := range []string{"abc", "defg", "h"} {
		if n, err := b.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; a full buffer must still accept the write", p, n, err)
		}
	}
	if b.String() != "abcde" || !b.over {
		t.Errorf("kept %q, over %t; want the first 5 bytes and over", b.String(), b.over)
	}
}

func TestNoEC2CertWarningNamesTheRegionsCertificate(t *testing.T) {
	noEnv(t)
	raw := validRaw(t)
	delete(raw, "ec2_cert_path")
	raw["region"] = "us-gov-west-1"
	var c Config
	warnings, err := c.Prepare(raw)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if w := strings.Join(warnings, "\n"); !strings.Contains(w, "cert-ec2-gov.pem") || !strings.Contains(w, "EC2 AMI tools") {
		t.Errorf("warnings %q do not name GovCloud's certificate and where it is read", warnings)
	}
}
