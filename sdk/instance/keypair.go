package instance

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// KeyPairAPI is the client behaviour needed for key pairs.
type KeyPairAPI interface {
	CreateKeyPair(ctx context.Context, in *ec2.CreateKeyPairInput, optFns ...func(*ec2.Options)) (*ec2.CreateKeyPairOutput, error)
	DeleteKeyPair(ctx context.Context, in *ec2.DeleteKeyPairInput, optFns ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error)
}

var _ KeyPairAPI = (*ec2.Client)(nil)

// Key types accepted by CreateKeyPairInput.KeyType.
const (
	KeyTypeED25519 = "ed25519"
	KeyTypeRSA     = "rsa"
)

// CreateKeyPairInput describes a temporary key pair.
type CreateKeyPairInput struct {
	// Name of the key pair. Empty means "ami-build-" and a random suffix.
	Name string
	// KeyType is "ed25519" (the default when empty) or "rsa".
	KeyType string
	// Tags go on the key pair.
	Tags map[string]string
}

// CreateKeyPairOutput is the result of CreateKeyPair.
type CreateKeyPairOutput struct {
	Name      string
	KeyPairID string
	// PrivateKeyPEM is the private key (OpenSSH format for ed25519, PEM for
	// RSA). It is returned only here: never logged, never in errors.
	PrivateKeyPEM []byte
}

// String describes the key pair without its private key.
func (o CreateKeyPairOutput) String() string {
	return fmt.Sprintf("key pair %s (%s)", o.Name, o.KeyPairID)
}

// GoString is String, so that %#v does not print the private key.
func (o CreateKeyPairOutput) GoString() string { return o.String() }

// CreateKeyPair creates a key pair and returns its private key. With
// Options.Ledger set, the key pair is recorded with an undo that deletes it.
func CreateKeyPair(ctx context.Context, api KeyPairAPI, in *CreateKeyPairInput, optFns ...func(*Options)) (*CreateKeyPairOutput, error) {
	o := newOptions(optFns)
	region := regionOf(api)
	name := in.Name
	if name == "" {
		name = "ami-build-" + randomSuffix(8)
	}
	keyType := in.KeyType
	switch keyType {
	case "":
		keyType = KeyTypeED25519
	case KeyTypeED25519, KeyTypeRSA:
	default:
		return nil, fmt.Errorf("create key pair %q in %s: key type %q is unknown; want %q or %q", name, region, in.KeyType, KeyTypeED25519, KeyTypeRSA)
	}
	o.logf("creating %s key pair %q in %s", keyType, name, region)
	out, err := api.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{
		KeyName:           aws.String(name),
		KeyType:           types.KeyType(keyType),
		KeyFormat:         types.KeyFormatPem,
		TagSpecifications: tagSpec(types.ResourceTypeKeyPair, in.Tags),
	})
	if err != nil {
		return nil, fmt.Errorf("create key pair %q in %s: %w", name, region, err)
	}
	o.record(ledger.KindKeyPair, name, region, func(ctx context.Context) error {
		return DeleteKeyPair(ctx, api, name, o.undoOptions())
	})
	if aws.ToString(out.KeyMaterial) == "" {
		return nil, fmt.Errorf("create key pair %q in %s: no private key in the answer", name, region)
	}
	return &CreateKeyPairOutput{
		Name:          name,
		KeyPairID:     aws.ToString(out.KeyPairId),
		PrivateKeyPEM: []byte(aws.ToString(out.KeyMaterial)),
	}, nil
}

// DeleteKeyPair deletes a key pair by name. A key pair that does not exist
// is not an error.
func DeleteKeyPair(ctx context.Context, api KeyPairAPI, name string, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	region := regionOf(api)
	o.logf("deleting key pair %q in %s", name, region)
	_, err := api.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(name)})
	if err != nil && apiCode(err) != codeKeyPairNotFound {
		return fmt.Errorf("delete key pair %q in %s: %w", name, region, err)
	}
	return nil
}
