package instance

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/ec2tag"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/lost"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// KeyPairAPI is the client behaviour CreateKeyPair and DeleteKeyPair
// need.
type KeyPairAPI interface {
	CreateKeyPair(ctx context.Context, in *ec2.CreateKeyPairInput, optFns ...func(*ec2.Options)) (*ec2.CreateKeyPairOutput, error)
	DeleteKeyPair(ctx context.Context, in *ec2.DeleteKeyPairInput, optFns ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error)
	// DescribeKeyPairs finds the key pair a failed create may have made.
	DescribeKeyPairs(ctx context.Context, in *ec2.DescribeKeyPairsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
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
//
// The key pair is tagged with a random token (CreateTokenTag). When the
// create call fails, the call may still have made the key pair (a lost
// response, or ctx cancelled while the request was in flight): a key pair
// with the name that carries the token is then deleted, since its private
// key is lost with the response. If the failure was InvalidKeyPair.Duplicate
// for such a key pair (the SDK retried a call whose first response was
// lost), the key pair is created once more. A key pair with the name that
// does not carry the token existed before and is never touched.
func CreateKeyPair(ctx context.Context, api KeyPairAPI, in *CreateKeyPairInput, optFns ...func(*Options)) (*CreateKeyPairOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
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
	token := randomSuffix(16)
	req := &ec2.CreateKeyPairInput{
		KeyName:           aws.String(name),
		KeyType:           types.KeyType(keyType),
		KeyFormat:         types.KeyFormatPem,
		TagSpecifications: ec2tag.Spec(types.ResourceTypeKeyPair, withToken(in.Tags, token)),
	}
	var out *ec2.CreateKeyPairOutput
	for attempt := 1; ; attempt++ {
		o.logf("creating %s key pair %q in %s", keyType, name, region)
		var err error
		out, err = api.CreateKeyPair(ctx, req)
		if err == nil {
			break
		}
		err = fmt.Errorf("create key pair %q in %s: %w", name, region, err)
		removed, rerr := removeLostKeyPair(ctx, api, name, token, o)
		if rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		if !removed || awserr.Code(err) != codeKeyPairDuplicate || attempt > 1 || ctx.Err() != nil {
			if removed {
				err = fmt.Errorf("%w (the key pair it made anyway was deleted)", err)
			}
			return nil, err
		}
		o.logf("the answer to creating key pair %q in %s was lost; creating it again", name, region)
	}
	o.record(ledger.KindKeyPair, name, region, func(ctx context.Context) error {
		return deleteKeyPair(ctx, api, name, o.undoOptions())
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

// removeLostKeyPair deletes the key pair named name when it carries token,
// that is when a create call that failed made it anyway. It reports whether
// there was one. When it cannot delete it, the key pair is recorded in
// o.Ledger (if set) for a later undo, and the error says so.
func removeLostKeyPair(ctx context.Context, api KeyPairAPI, name, token string, o Options) (bool, error) {
	region := awserr.Region(api, "")
	callerDone := ctx.Err() != nil
	ctx, cancel := lost.Context(ctx)
	defer cancel()
	found, err := lost.Find(ctx, callerDone, func() ([]string, error) {
		out, err := api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}})
		if awserr.Code(err) == codeKeyPairNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return marked(out.KeyPairs, name, token, func(k types.KeyPairInfo) (*string, *string, []types.Tag) {
			return k.KeyName, k.KeyName, k.Tags
		}), nil
	})
	if err != nil {
		return false, fmt.Errorf("look for key pair %q in %s, which the failed call may have created; delete it by hand if it exists: %w", name, region, err)
	}
	if len(found) == 0 {
		return false, nil
	}
	o.logf("key pair %q in %s was created although the call failed; deleting it", name, region)
	if err := deleteKeyPair(ctx, api, name, o.undoOptions()); err != nil {
		o.record(ledger.KindKeyPair, name, region, func(ctx context.Context) error {
			return deleteKeyPair(ctx, api, name, o.undoOptions())
		})
		return true, fmt.Errorf("key pair %q in %s was created although the call failed, and could not be deleted: %w", name, region, err)
	}
	return true, nil
}

// deleteKeyPair deletes a key pair by name. A key pair that does not exist
// is not an error.
func deleteKeyPair(ctx context.Context, api KeyPairAPI, name string, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	o.logf("deleting key pair %q in %s", name, region)
	_, err := api.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(name)})
	if err != nil && awserr.Code(err) != codeKeyPairNotFound {
		return fmt.Errorf("delete key pair %q in %s: %w", name, region, err)
	}
	return nil
}
