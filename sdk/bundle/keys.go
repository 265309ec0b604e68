package bundle

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Sign signs m with the user's private key (RSASSA-PKCS1-v1_5 with SHA-1
// over SignedBytes of Marshal's output) and stores the signature in m. After
// Sign, Bytes returns Marshal's output.
func (m *Manifest) Sign(key *rsa.PrivateKey) error {
	if key == nil {
		return &InputError{Field: "UserKey", Reason: "missing"}
	}
	sb, err := SignedBytes(m.Marshal())
	if err != nil {
		return err
	}
	sum := sha1.Sum(sb)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA1, sum[:])
	if err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	m.Signature = sig
	m.raw = nil
	return nil
}

// Verify checks m's signature over the signed part of Bytes with the public
// key of the user's certificate. It returns an error wrapping ErrSignature
// when the signature does not match.
func (m *Manifest) Verify(cert *x509.Certificate) error {
	pub, err := rsaPublicKey(cert, "UserCert")
	if err != nil {
		return err
	}
	if len(m.Signature) == 0 {
		return fmt.Errorf("%w: the manifest is not signed", ErrSignature)
	}
	sb, err := SignedBytes(m.Bytes())
	if err != nil {
		return err
	}
	sum := sha1.Sum(sb)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], m.Signature); err != nil {
		return fmt.Errorf("%w with the certificate of %q", ErrSignature, cert.Subject.String())
	}
	return nil
}

// DecryptKey returns the AES key and IV of the bundle, decrypted from the
// user's copies in m with the user's private key. An error wraps
// ErrKeyDecrypt when the key does not fit.
func (m *Manifest) DecryptKey(priv *rsa.PrivateKey) (key, iv []byte, err error) {
	if priv == nil {
		return nil, nil, &InputError{Field: "UserKey", Reason: "missing"}
	}
	if key, err = decryptHexSecret(priv, m.UserEncryptedKey); err != nil {
		return nil, nil, fmt.Errorf("user_encrypted_key: %w", err)
	}
	if iv, err = decryptHexSecret(priv, m.UserEncryptedIV); err != nil {
		return nil, nil, fmt.Errorf("user_encrypted_iv: %w", err)
	}
	return key, iv, nil
}

// encryptHexSecret encrypts the lowercase hex form of secret for pub with
// RSA PKCS #1 v1.5, as the format requires.
func encryptHexSecret(pub *rsa.PublicKey, secret []byte) ([]byte, error) {
	//lint:ignore SA1019 the bundle format mandates PKCS #1 v1.5 encryption.
	return rsa.EncryptPKCS1v15(rand.Reader, pub, []byte(hex.EncodeToString(secret)))
}

func decryptHexSecret(priv *rsa.PrivateKey, ct []byte) ([]byte, error) {
	//lint:ignore SA1019 the bundle format mandates PKCS #1 v1.5 encryption.
	pt, err := rsa.DecryptPKCS1v15(nil, priv, ct)
	if err != nil {
		return nil, ErrKeyDecrypt
	}
	if len(pt) != 32 {
		return nil, fmt.Errorf("%w: decrypted value is %d bytes, want 32 hex digits", ErrKeyDecrypt, len(pt))
	}
	b, err := hex.DecodeString(string(pt))
	if err != nil {
		return nil, fmt.Errorf("%w: decrypted value is not hexadecimal", ErrKeyDecrypt)
	}
	return b, nil
}

func rsaPublicKey(cert *x509.Certificate, field string) (*rsa.PublicKey, error) {
	if cert == nil {
		return nil, &InputError{Field: field, Reason: "missing"}
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, &InputError{Field: field, Reason: fmt.Sprintf("certificate %q has a %T key, want RSA", cert.Subject.String(), cert.PublicKey)}
	}
	return pub, nil
}

// ParseCertificatePEM parses the first CERTIFICATE block of PEM data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, errors.New("no PEM CERTIFICATE block found")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// ParsePrivateKeyPEM parses the first RSA private key of PEM data, in
// PKCS #1 ("RSA PRIVATE KEY") or PKCS #8 ("PRIVATE KEY") form.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, errors.New("no PEM RSA PRIVATE KEY or PRIVATE KEY block found")
		}
		switch blk.Type {
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("private key is %T, want RSA", k)
			}
			return rk, nil
		}
	}
}

// LoadCertificate reads a PEM certificate file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseCertificatePEM(b)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, err)
	}
	return c, nil
}

// LoadPrivateKey reads a PEM RSA private key file.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return k, nil
}
