package instance

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"
)

// PasswordDataAPI is the client behaviour GetWindowsPassword needs, to
// read the Windows Administrator password EC2 keeps for an instance.
type PasswordDataAPI interface {
	GetPasswordData(ctx context.Context, in *ec2.GetPasswordDataInput, optFns ...func(*ec2.Options)) (*ec2.GetPasswordDataOutput, error)
}

var _ PasswordDataAPI = (*ec2.Client)(nil)

// GetWindowsPasswordInput names the instance whose password is wanted and
// the key that decrypts it.
type GetWindowsPasswordInput struct {
	// InstanceID is the Windows instance. Required.
	InstanceID string
	// PrivateKeyPEM is the private key of the RSA key pair the instance was
	// launched with, unencrypted: PEM (PKCS #1, as CreateKeyPair returns
	// it, or PKCS #8) or OpenSSH format. Required.
	PrivateKeyPEM []byte
	// Wait bounds the wait for EC2 to have the password: MaxWait (zero
	// means 20 minutes) for the whole wait, MinDelay and MaxDelay between
	// checks (zero means 2s and 15s).
	Wait WaitOptions
}

// GetWindowsPasswordOutput is the result of GetWindowsPassword: the
// decrypted password. Its String and GoString methods do not print it.
type GetWindowsPasswordOutput struct {
	Password string
}

// String describes the output without the password.
func (o GetWindowsPasswordOutput) String() string { return "Windows password (redacted)" }

// GoString is String, so that %#v does not print the password.
func (o GetWindowsPasswordOutput) GoString() string { return o.String() }

// PasswordUnavailableError reports that EC2 had no password for the
// instance within the wait. Windows generates one at the first boot of an
// instance when its AMI is set up to give the Administrator a random
// password (EC2Launch or EC2Config), and EC2 keeps it only when the
// instance was launched with a key pair; otherwise it never comes.
type PasswordUnavailableError struct {
	InstanceID string
	Region     string
	// Waited is how long the password was waited for.
	Waited time.Duration
}

// Error names the instance and how long it was waited for, and says when
// EC2 has a password.
func (e *PasswordUnavailableError) Error() string {
	waited := e.Waited.Round(time.Second)
	if e.Waited < time.Second {
		waited = e.Waited.Round(time.Millisecond)
	}
	return fmt.Sprintf("instance %s in %s has no Windows password after %s: EC2 has one only when the AMI sets a random Administrator password at first boot (EC2Launch or EC2Config) and the instance was launched with an RSA key pair",
		e.InstanceID, e.Region, waited)
}

// GetWindowsPassword waits until EC2 has the Administrator password of a
// Windows instance (GetPasswordData answers with data), then decrypts it
// with the private key of the key pair the instance was launched with. It
// waits with the SDK's PasswordDataAvailable waiter; when the password does
// not come within in.Wait.MaxWait, the error is a *PasswordUnavailableError.
//
// The key is checked before the first call: a key that is not RSA, is
// protected by a passphrase or cannot be parsed is refused at once. The
// password and the key are never logged or put in errors.
func GetWindowsPassword(ctx context.Context, api PasswordDataAPI, in *GetWindowsPasswordInput, optFns ...func(*Options)) (*GetWindowsPasswordOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	if in.InstanceID == "" {
		return nil, fmt.Errorf("get the Windows password in %s: no instance ID", region)
	}
	key, err := rsaPrivateKey(in.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("get the Windows password of instance %s in %s: %w", in.InstanceID, region, err)
	}
	w := in.Wait.withDefaults()
	o.logf("waiting up to %s for the Windows password of instance %s in %s", w.MaxWait, in.InstanceID, region)

	// callErr is the error of the last GetPasswordData call, so that a
	// failed call is told from a wait that ran out without matching
	// messages.
	var callErr error
	start := time.Now()
	out, err := ec2.NewPasswordDataAvailableWaiter(api, func(wo *ec2.PasswordDataAvailableWaiterOptions) {
		wo.MinDelay, wo.MaxDelay = w.MinDelay, w.MaxDelay
		wo.Retryable = func(_ context.Context, _ *ec2.GetPasswordDataInput, out *ec2.GetPasswordDataOutput, err error) (bool, error) {
			if err != nil {
				callErr = err
				return false, err
			}
			return strings.TrimSpace(aws.ToString(out.PasswordData)) == "", nil
		}
	}).WaitForOutput(ctx, &ec2.GetPasswordDataInput{InstanceId: aws.String(in.InstanceID)}, w.MaxWait)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, fmt.Errorf("wait for the Windows password of instance %s in %s: %w", in.InstanceID, region, ctx.Err())
	case callErr != nil && !errors.Is(callErr, context.DeadlineExceeded):
		// A call cut short by the waiter's own deadline is a timeout.
		return nil, fmt.Errorf("get the Windows password of instance %s in %s: %w", in.InstanceID, region, callErr)
	default:
		return nil, &PasswordUnavailableError{InstanceID: in.InstanceID, Region: region, Waited: time.Since(start)}
	}
	password, err := decryptPasswordData(aws.ToString(out.PasswordData), key)
	if err != nil {
		return nil, fmt.Errorf("decrypt the Windows password of instance %s in %s: %w", in.InstanceID, region, err)
	}
	o.logf("got the Windows password of instance %s in %s", in.InstanceID, region)
	return &GetWindowsPasswordOutput{Password: password}, nil
}

// DecryptWindowsPassword decrypts the PasswordData of a GetPasswordData
// answer (base64 of the password encrypted with RSA PKCS #1 v1.5 for the
// key pair's public key) with the key pair's private key (see
// GetWindowsPasswordInput.PrivateKeyPEM for the formats). Errors never hold
// the data or the key.
func DecryptWindowsPassword(passwordData string, privateKeyPEM []byte) (string, error) {
	key, err := rsaPrivateKey(privateKeyPEM)
	if err != nil {
		return "", err
	}
	return decryptPasswordData(passwordData, key)
}

func decryptPasswordData(passwordData string, key *rsa.PrivateKey) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(passwordData), ""))
	if err != nil {
		return "", errors.New("the password data from EC2 is not base64")
	}
	// EC2 encrypts Windows passwords with PKCS #1 v1.5 padding, so there
	// is no other choice here. Decryption runs once, on data from EC2.
	//lint:ignore SA1019 EC2 encrypts a Windows password with RSA PKCS #1 v1.5; there is no other way to read it
	pt, err := rsa.DecryptPKCS1v15(nil, key, ct)
	if err != nil {
		return "", errors.New("the private key does not decrypt it; the key is not the one the instance was launched with")
	}
	return string(pt), nil
}

// rsaPrivateKey parses an unencrypted private key and requires RSA.
func rsaPrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, errors.New("the private key is protected by a passphrase; give an unencrypted key")
	case err != nil:
		return nil, fmt.Errorf("read the private key: %w", err)
	}
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ed25519.PrivateKey, ed25519.PrivateKey:
		return nil, errors.New("the key pair is ed25519: EC2 encrypts Windows passwords only for RSA key pairs")
	case *ecdsa.PrivateKey:
		return nil, errors.New("the key pair is ECDSA: EC2 encrypts Windows passwords only for RSA key pairs")
	default:
		return nil, fmt.Errorf("the key pair is %T: EC2 encrypts Windows passwords only for RSA key pairs", raw)
	}
}
