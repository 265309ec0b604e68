package instance_test

//lint:file-ignore SA1019 EC2 encrypts Windows passwords with RSA PKCS #1 v1.5; the example plays EC2's part

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	"github.com/amiforge/packer-plugin-ami/sdk/instance"
)

// Decrypt the PasswordData of a GetPasswordData answer with the key pair's
// private key. Here the example encrypts a password as EC2 does.
func ExampleDecryptWindowsPassword() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fmt.Println(err)
		return
	}
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &key.PublicKey, []byte("Example-Passw0rd"))
	if err != nil {
		fmt.Println(err)
		return
	}
	passwordData := base64.StdEncoding.EncodeToString(ct)
	privateKeyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})

	password, err := instance.DecryptWindowsPassword(passwordData, privateKeyPEM)
	fmt.Println(password, err)

	_, err = instance.DecryptWindowsPassword("not base64!", privateKeyPEM)
	fmt.Println(err != nil)
	// Output:
	// Example-Passw0rd <nil>
	// true
}
