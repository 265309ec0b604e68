//go:build unix

package e2e

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
	"github.com/amiforge/packer-plugin-ami/sdk/bundle"
)

// longBase64RE finds runs of base64 long enough to be key material (a PEM
// body line is 64 or 70 characters). Every run also gets scanned for the
// secrets named in the test, so this catches keys the test never sees,
// such as the private key of the temporary key pair, which EC2 returns
// once and the plugin keeps in memory.
var longBase64RE = regexp.MustCompile(`[A-Za-z0-9+/]{60,}={0,2}`)

// TestSecrets builds with every component and checks, with PACKER_LOG=1,
// that no secret reaches packer's output, its debug log or a command run
// on the instance: the AWS secret key and session token (from the
// environment, and in one run from the template), the sshd client key, the
// temporary key pair's private key and the generated X.509 key of
// ami-instance. Generated keys are written 0600; temporary key pairs are
// deleted.
func TestSecrets(t *testing.T) {
	w := theWorld(t)
	checkNoKeyMaterial := func(t *testing.T, res *packertest.Result) {
		t.Helper()
		log, err := res.Log()
		if err != nil {
			t.Fatal(err)
		}
		for where, text := range map[string]string{"packer output": res.Output(), "packer debug log": log} {
			if m := longBase64RE.FindString(text); m != "" {
				t.Errorf("%s holds a long base64 run, possibly key material: %.80s…", where, m)
			}
		}
	}
	checkKeyPairDeleted := func(t *testing.T) {
		t.Helper()
		created := w.proxy.CallsFor("ec2", "CreateKeyPair")
		if len(created) != 1 {
			t.Fatalf("CreateKeyPair calls = %d, want 1 (a temporary key pair)", len(created))
		}
		name := created[0].Params.Get("KeyName")
		var deleted []string
		for _, c := range w.proxy.CallsFor("ec2", "DeleteKeyPair") {
			deleted = append(deleted, c.Params.Get("KeyName"))
		}
		if !slices.Contains(deleted, name) {
			t.Errorf("temporary key pair %s was not deleted (DeleteKeyPair of %q)", name, deleted)
		}
	}

	t.Run("ami-instance generated X.509 key and temporary key pair", func(t *testing.T) {
		base := w.baseline(t)
		keys := filepath.Join(t.TempDir(), "keys")
		prefix := "rel/" + uniqueName("secrets")
		res := w.run(t, runSpec{Template: w.instanceTemplate(w.scratch(t), prefix, buildOpts{
			TempKey: true, Extra: fmt.Sprintf("  x509_generated_dir = %q\n", keys),
		})})
		if res.ExitCode != 0 {
			t.Fatalf("packer build exited %d", res.ExitCode)
		}
		keyPath := filepath.Join(keys, "x509-key.pem")
		for _, f := range []string{keyPath, filepath.Join(keys, "x509-cert.pem")} {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatalf("generated file: %v", err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
			}
		}
		keyPEM, err := os.ReadFile(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		key, err := bundle.ParsePrivateKeyPEM(keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		extra := map[string]string{
			"X.509 key's first prime (hex)": key.Primes[0].Text(16)[:32],
			"X.509 key's exponent (hex)":    key.D.Text(16)[:32],
			"X.509 key (PKCS #1 DER, hex)":  fmt.Sprintf("%x", x509.MarshalPKCS1PrivateKey(key))[100:140],
		}
		for i, l := range pemBodyLines(keyPEM) {
			extra[fmt.Sprintf("X.509 key PEM line %d", i)] = l
		}
		w.scanSecrets(t, res, w.sshd.CommandLog(), extra)
		checkNoKeyMaterial(t, res)
		checkKeyPairDeleted(t)
		amis := artifactAMIs(t, res, "ami-instance.e2e")
		w.expectNoLeaks(t, base, append(w.artifactKeep(t, amis), w.objectsUnder(t, prefix)...)...)
		w.removeAMIs(t, amis)
		w.removeObjects(t, prefix)
	})

	t.Run("ami-ebs credentials in the template and temporary key pair", func(t *testing.T) {
		base := w.baseline(t)
		creds := fmt.Sprintf("  access_key = %q\n  secret_key = %q\n  token      = %q\n",
			awstest.TestAccessKeyID, awstest.TestSecretAccessKey, sessionToken)
		res := w.run(t, runSpec{Template: w.ebsTemplate(buildOpts{
			TempKey: true, Extra: creds, Provision: []string{"echo provisioned"},
			PostProcessor: distributeBody("", creds),
		})})
		if res.ExitCode != 0 {
			t.Fatalf("packer build exited %d", res.ExitCode)
		}
		checkNoKeyMaterial(t, res)
		checkKeyPairDeleted(t)
		// The session token went to AWS (as a header the proxy redacts).
		for _, c := range w.proxy.Calls() {
			if c.Service != "moto-api" && c.Header.Get("X-Amz-Security-Token") == "" {
				t.Errorf("%s %s was sent without the session token", c.Service, c.Action)
				break
			}
		}
		amis := artifactAMIs(t, res, "ami-ebs.e2e")
		w.expectNoLeaks(t, base, w.artifactKeep(t, amis)...)
		w.removeAMIs(t, amis)
	})

	t.Run("failed runs", func(t *testing.T) {
		// Error paths print AWS errors and requests; none may carry a secret.
		res := w.run(t, runSpec{
			Template: w.ebsTemplate(buildOpts{TempKey: true}),
			Args:     []string{"build"},
			Fault:    awstest.FailAlways("ec2", "RunInstances", awstest.ErrorFault("AuthFailure", 401)),
		})
		if res.ExitCode == 0 {
			t.Fatal("packer build succeeded although RunInstances fails")
		}
		if !strings.Contains(res.Output(), "AuthFailure") {
			t.Errorf("the failure does not mention AuthFailure")
		}
		checkNoKeyMaterial(t, res)
		checkKeyPairDeleted(t)
	})
}
