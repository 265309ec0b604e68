package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/secret"
	"github.com/amiforge/packer-plugin-ami/builder/secret/secrettest"
)

const value = "hunter2-secret-value"

// TestStringEveryVerb checks that a String prints redacted, and an empty
// one empty, with every verb.
func TestStringEveryVerb(t *testing.T) {
	tests := []struct {
		format string
		s      secret.String
		want   string
	}{
		{"%v", value, "<redacted>"},
		{"%+v", value, "<redacted>"},
		{"%#v", value, `"<redacted>"`},
		{"%s", value, "<redacted>"},
		{"%q", value, `"<redacted>"`},
		{"%x", value, fmt.Sprintf("%x", "<redacted>")},
		{"%12s|", value, "  <redacted>|"},
		{"%d", value, "%!d(secret.String=<redacted>)"},
		{"%v", "", ""},
		{"%q", "", `""`},
		{"%#v", "", `""`},
	}
	for _, tc := range tests {
		t.Run(tc.format+" "+string(tc.s), func(t *testing.T) {
			if got := fmt.Sprintf(tc.format, tc.s); got != tc.want {
				t.Errorf("Sprintf(%q) = %q, want %q", tc.format, got, tc.want)
			}
		})
	}
	if got := fmt.Sprint(secret.String(value)); got != "<redacted>" {
		t.Errorf("Sprint = %q", got)
	}
	if got := secret.String(value).Reveal(); got != value {
		t.Errorf("Reveal = %q, want the value", got)
	}
}

// holder is a struct with a secret field and Format.
type holder struct {
	Name  string
	Key   secret.String
	Empty secret.String
}

func (h holder) Format(f fmt.State, verb rune) { secret.Format(f, verb, h) }

// TestStringMarshalAndLog checks JSON and slog, and a String held in
// other values.
func TestStringMarshalAndLog(t *testing.T) {
	h := holder{Name: "n", Key: value}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Name":"n","Key":"\u003credacted\u003e","Empty":""}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "key", h.Key)
	if strings.Contains(logs.String(), value) || !strings.Contains(logs.String(), "key=<redacted>") {
		t.Errorf("slog output = %q", logs.String())
	}
	secrettest.CheckRedacted(t, h, []string{value}, []string{"<redacted>"})
}

// config stands for a configuration struct: a secret of its own, secrets
// of a type it does not own, nested blocks, and unexported state.
type config struct {
	Region string
	Key    secret.String
	Block  block
	Ptr    *block
	Nil    *block
	Comm   foreign
	Vars   map[string]string
	hidden string
}

type block struct {
	Name   string
	Secret secret.String
}

type foreign struct {
	User           string
	SSHPassword    string
	PrivateKey     []byte
	PackerUserVars map[string]string
}

func (c config) Format(f fmt.State, verb rune) { secret.Format(f, verb, c) }

// TestFormat checks the description Format gives of a struct.
func TestFormat(t *testing.T) {
	c := config{
		Region: "eu-west-1",
		Key:    "key-secret",
		Block:  block{Name: "b", Secret: "block-secret"},
		Ptr:    &block{Name: "p", Secret: "pointer-secret"},
		Comm: foreign{User: "admin", SSHPassword: "password-secret", PrivateKey: []byte("private-secret"),
			PackerUserVars: map[string]string{"b": "var-secret", "a": "var-secret"}},
		Vars:   map[string]string{"k": "v"},
		hidden: "hidden-secret",
	}
	want := "{Region:eu-west-1 Key:<redacted> Block:{Name:b Secret:<redacted>} Ptr:{Name:p Secret:<redacted>} Nil:<nil> " +
		"Comm:{User:admin SSHPassword:<redacted> PrivateKey:<redacted> PackerUserVars:map[a:<redacted> b:<redacted>]} Vars:map[k:v]}"
	if got := fmt.Sprintf("%+v", c); got != want {
		t.Errorf("%%+v =\n%s\nwant\n%s", got, want)
	}
	if got := secret.Describe(c); got != want {
		t.Errorf("Describe =\n%s\nwant\n%s", got, want)
	}
	if got := fmt.Sprintf("%#v", c); got != "secret_test.config"+want {
		t.Errorf("%%#v = %s", got)
	}
	if got := secret.GoString(&c); got != "secret_test.config"+want {
		t.Errorf("GoString = %s", got)
	}
	if got := fmt.Sprintf("%d", c); got != "%!d(secret_test.config="+want+")" {
		t.Errorf("%%d = %s", got)
	}
	secrets := []string{"key-secret", "block-secret", "pointer-secret", "password-secret", "private-secret", "var-secret", "hidden-secret"}
	secrettest.CheckRedacted(t, c, secrets, []string{"eu-west-1", "admin"})
}
