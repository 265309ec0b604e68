// Package secrettest checks that a value prints without its secrets,
// whatever the verb and wherever fmt finds it.
package secrettest

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
)

// verbs are the formats every value is printed with.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%10.4v", "%-8s"}

// textVerbs print the value's description as text, so they must show
// what wants names.
var textVerbs = map[string]bool{"%v": true, "%+v": true, "%s": true}

// CheckRedacted prints v with every verb, with Sprint and Sprintln, and
// held by value and by pointer in exported struct fields, in slices, maps
// and interfaces. It fails t when an output holds one of secrets, as text
// or hex, and when the text of %v, %+v or %s, by value or held in an
// exported field, lacks one of wants.
//
// Held by pointer in an unexported field, v is printed with %v and %+v
// only, which show the pointer's address: fmt prints what an unexported
// field holds by reflection, without calling any method, so every other
// verb (whose error notation prints the value behind the pointer) and a
// value held directly in an unexported field show the secrets. No type can
// prevent that; see package secret.
func CheckRedacted[T any](t *testing.T, v T, secrets, wants []string) {
	t.Helper()
	type byValue struct{ C T }
	type byPointer struct{ C *T }
	type asAny struct{ C any }
	type hidden struct {
		Name string
		c    *T
	}
	holders := []struct {
		name     string
		value    any
		describe bool // the text verbs show v's fields
		onlyV    bool // printed with %v, %+v, Sprint and Sprintln only
	}{
		{"value", v, true, false},
		{"pointer", &v, true, false},
		{"exported field", byValue{v}, true, false},
		{"exported pointer field", byPointer{&v}, true, false},
		{"interface field", asAny{v}, true, false},
		{"slice", []T{v}, true, false},
		{"slice of pointers", []*T{&v}, false, false},
		{"map", map[string]T{"k": v}, true, false},
		{"unexported pointer field", hidden{Name: "h", c: &v}, false, true},
	}
	for _, h := range holders {
		outputs := map[string]string{
			"Sprint":   fmt.Sprint(h.value),
			"Sprintln": fmt.Sprintln(h.value),
		}
		for _, verb := range verbs {
			if !h.onlyV || verb == "%v" || verb == "%+v" {
				outputs[verb] = fmt.Sprintf(verb, h.value)
			}
		}
		for how, out := range outputs {
			for _, s := range secrets {
				if leaks(out, s) {
					t.Errorf("%s printed with %s leaks %q: %s", h.name, how, s, out)
				}
			}
			if h.describe && textVerbs[how] {
				for _, w := range wants {
					if !strings.Contains(out, w) {
						t.Errorf("%s printed with %s lacks %q: %s", h.name, how, w, out)
					}
				}
			}
		}
	}
}

// leaks reports whether out holds s as text or as hex.
func leaks(out, s string) bool {
	h := hex.EncodeToString([]byte(s))
	return strings.Contains(out, s) || strings.Contains(out, h) || strings.Contains(out, strings.ToUpper(h))
}

// Secret values for tests; each is distinct so that a leak names its field.
const (
	SecretKey        = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	SessionToken     = "FQoGZXIvYXdzEXAMPLEsessionTOKEN"
	ExternalID       = "ext-id-5ecret-value"
	SSHPassword      = "ssh-pa55word-value"
	BastionPassword  = "bastion-pa55word-value"
	ProxyPassword    = "proxy-pa55word-value"
	WinRMPassword    = "winrm-pa55word-value"
	PrivateKeyBody   = "b3BlbnNzaC1rZXktdjEPRIVATEKEYBODY"
	PrivateKey       = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + PrivateKeyBody + "\n-----END OPENSSH PRIVATE KEY-----\n"
	UserVariableName = "db_password"
	UserVariable     = "user-variable-5ecret"
)

// Secrets are the secret values above, as CheckRedacted takes them.
var Secrets = []string{SecretKey, SessionToken, ExternalID, SSHPassword, BastionPassword, ProxyPassword, WinRMPassword, PrivateKeyBody, UserVariable}

// FillCommunicator sets every secret a communicator configuration holds.
func FillCommunicator(c *communicator.Config) {
	c.Type = "ssh"
	c.SSHUsername = "admin"
	c.SSHPassword = SSHPassword
	c.SSHPrivateKey = []byte(PrivateKey)
	c.SSHPrivateKeyFile = "/keys/id_ed25519"
	c.SSHBastionHost = "bastion.example.com"
	c.SSHBastionPassword = BastionPassword
	c.SSHProxyHost = "proxy.example.com"
	c.SSHProxyPassword = ProxyPassword
	c.WinRMUser = "Administrator"
	c.WinRMPassword = WinRMPassword
}

// FillPackerConfig sets a user variable holding a secret.
func FillPackerConfig(c *common.PackerConfig) {
	c.PackerBuildName = "app"
	c.PackerUserVars = map[string]string{UserVariableName: UserVariable}
	c.PackerSensitiveVars = []string{UserVariableName}
}
