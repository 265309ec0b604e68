//go:build unix

package instance

//lint:file-ignore SA1019 EC2 encrypts Windows passwords with RSA PKCS #1 v1.5, which the test must do too

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"
)

// testRSAKeys are two RSA key pairs, made once: generating them is slow.
var testRSAKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

// pkcs1PEM encodes key as CreateKeyPair returns an RSA key pair.
func pkcs1PEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// passwordDataFor encrypts password for pub as EC2 does for GetPasswordData:
// RSA PKCS #1 v1.5, base64, here with the line breaks EC2 puts around it.
func passwordDataFor(t *testing.T, pub *rsa.PublicKey, password string) string {
	t.Helper()
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	return "\r\n" + base64.StdEncoding.EncodeToString(ct) + "\r\n"
}

// passwordAnswers answers GetPasswordData with each of data in turn,
// repeating the last one.
func passwordAnswers(data ...string) func(*ec2.GetPasswordDataInput) (*ec2.GetPasswordDataOutput, error) {
	var mu sync.Mutex
	i := 0
	return func(in *ec2.GetPasswordDataInput) (*ec2.GetPasswordDataOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		d := data[min(i, len(data)-1)]
		i++
		return &ec2.GetPasswordDataOutput{InstanceId: in.InstanceId, PasswordData: aws.String(d)}, nil
	}
}

func TestGetWindowsPassword(t *testing.T) {
	key, other := testRSAKeys()
	const password = "Tr0ub4dor&3-windows-admin"
	keyPEM := pkcs1PEM(key)

	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8PEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	opensshBlock, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	opensshPEM := pem.EncodeToMemory(opensshBlock)
	protected, err := ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte("secret phrase"))
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edBlock, err := ssh.MarshalPrivateKey(edKey, "")
	if err != nil {
		t.Fatal(err)
	}

	data := passwordDataFor(t, &key.PublicKey, password)
	tests := []struct {
		name      string
		key       []byte
		answer    func(*ec2.GetPasswordDataInput) (*ec2.GetPasswordDataOutput, error)
		wantCalls int
		// wantErr are texts the error must contain; none means success.
		wantErr     []string
		unavailable bool // the error is a *PasswordUnavailableError
	}{
		{name: "available at once", key: keyPEM, answer: passwordAnswers(data), wantCalls: 1},
		{name: "empty until generated", key: keyPEM, answer: passwordAnswers("", "", data), wantCalls: 3},
		{name: "PKCS #8 key", key: pkcs8PEM, answer: passwordAnswers(data), wantCalls: 1},
		{name: "OpenSSH key", key: opensshPEM, answer: passwordAnswers(data), wantCalls: 1},
		{
			name: "never generated", key: keyPEM, answer: passwordAnswers(""), unavailable: true,
			wantErr: []string{"i-0123456789abcdef0", "no Windows password", "random Administrator password", "key pair"},
		},
		{
			name: "call fails", key: keyPEM, wantCalls: 1,
			answer: func(*ec2.GetPasswordDataInput) (*ec2.GetPasswordDataOutput, error) {
				return nil, apiErr("UnauthorizedOperation")
			},
			wantErr: []string{"get the Windows password of instance i-0123456789abcdef0", "UnauthorizedOperation"},
		},
		{
			name: "encrypted for another key pair", key: pkcs1PEM(other), answer: passwordAnswers(data), wantCalls: 1,
			wantErr: []string{"decrypt the Windows password of instance i-0123456789abcdef0", "not the one the instance was launched with"},
		},
		{
			name: "not base64", key: keyPEM, answer: passwordAnswers("not*base64"), wantCalls: 1,
			wantErr: []string{"decrypt the Windows password", "base64"},
		},
		{
			name: "ed25519 key pair", key: pem.EncodeToMemory(edBlock), answer: passwordAnswers(data),
			wantErr: []string{"ed25519", "only for RSA key pairs"},
		},
		{
			name: "passphrase-protected key", key: pem.EncodeToMemory(protected), answer: passwordAnswers(data),
			wantErr: []string{"passphrase"},
		},
		{
			name: "no key", key: []byte("not a key"), answer: passwordAnswers(data),
			wantErr: []string{"private key"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEC2{getPasswordData: tc.answer}
			out, err := GetWindowsPassword(context.Background(), f, &GetWindowsPasswordInput{
				InstanceID:    "i-0123456789abcdef0",
				PrivateKeyPEM: tc.key,
				Wait:          quickWait,
			})
			if calls := len(f.Calls()); tc.wantCalls > 0 && calls != tc.wantCalls {
				t.Errorf("GetPasswordData calls = %d, want %d: %v", calls, tc.wantCalls, f.Calls())
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("GetWindowsPassword: %v", err)
				}
				if out.Password != password {
					t.Errorf("password = %q, want %q", out.Password, password)
				}
				return
			}
			if err == nil {
				t.Fatalf("GetWindowsPassword succeeded; want an error containing %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			var pu *PasswordUnavailableError
			if got := errors.As(err, &pu); got != tc.unavailable {
				t.Errorf("errors.As(*PasswordUnavailableError) = %t, want %t (%v)", got, tc.unavailable, err)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), strings.TrimSpace(data)[:40]) {
				t.Errorf("error reveals the password or its ciphertext: %v", err)
			}
			if tc.wantCalls == 0 && !tc.unavailable && len(f.Calls()) != 0 {
				t.Errorf("a bad key must be refused before any call; calls: %v", f.Calls())
			}
		})
	}
}

func TestGetWindowsPasswordNeedsInstanceID(t *testing.T) {
	key, _ := testRSAKeys()
	f := &fakeEC2{}
	_, err := GetWindowsPassword(context.Background(), f, &GetWindowsPasswordInput{PrivateKeyPEM: pkcs1PEM(key)})
	if err == nil || !strings.Contains(err.Error(), "instance ID") {
		t.Errorf("error = %v, want one naming the missing instance ID", err)
	}
	if len(f.Calls()) != 0 {
		t.Errorf("calls = %v, want none", f.Calls())
	}
}

func TestGetWindowsPasswordCancelled(t *testing.T) {
	key, _ := testRSAKeys()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeEC2{getPasswordData: func(*ec2.GetPasswordDataInput) (*ec2.GetPasswordDataOutput, error) {
		cancel()
		return &ec2.GetPasswordDataOutput{PasswordData: aws.String("")}, nil
	}}
	_, err := GetWindowsPassword(ctx, f, &GetWindowsPasswordInput{
		InstanceID:    "i-0123456789abcdef0",
		PrivateKeyPEM: pkcs1PEM(key),
		Wait:          WaitOptions{MinDelay: quickWait.MinDelay, MaxDelay: quickWait.MaxDelay},
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	var pu *PasswordUnavailableError
	if errors.As(err, &pu) {
		t.Errorf("a cancelled wait is not a missing password: %v", err)
	}
}

func TestWindowsPasswordOutputRedacted(t *testing.T) {
	out := &GetWindowsPasswordOutput{Password: "Sup3r-secret-pw"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{out, *out} {
			if s := fmt.Sprintf(format, v); strings.Contains(s, out.Password) {
				t.Errorf("%s of %T prints the password: %s", format, v, s)
			}
		}
	}
}

func TestDecryptWindowsPassword(t *testing.T) {
	key, _ := testRSAKeys()
	got, err := DecryptWindowsPassword(passwordDataFor(t, &key.PublicKey, "p@ss w0rd"), pkcs1PEM(key))
	if err != nil {
		t.Fatal(err)
	}
	if got != "p@ss w0rd" {
		t.Errorf("DecryptWindowsPassword = %q, want %q", got, "p@ss w0rd")
	}
}
