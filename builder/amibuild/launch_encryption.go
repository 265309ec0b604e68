package amibuild

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// LaunchEncryption asks for every EBS volume of the build instance to be
// encrypted, so that the AMI created from it is encrypted without an extra
// copy (encrypt_boot). EC2 encrypts (or re-encrypts with another key) the
// volumes it creates from the source AMI's snapshots at launch.
type LaunchEncryption struct {
	// KMSKeyID is the key; "" means the account's default EBS key.
	KMSKeyID string
}

// LaunchMappings returns the block device mappings to launch the build
// instance with: the template's launch_block_device_mappings and, with
// enc, every EBS volume encrypted: the template's EBS mappings get
// encrypted = true (and enc's key unless they name one), and every EBS
// device of the source AMI the template does not map is added with
// encryption, keeping its size and delete-on-termination setting.
func LaunchMappings(src types.Image, launch BlockDevices, enc *LaunchEncryption) []types.BlockDeviceMapping {
	m := launch.Mappings()
	if enc == nil {
		return m
	}
	mapped := map[string]bool{}
	for i := range m {
		mapped[aws.ToString(m[i].DeviceName)] = true
		ebs := m[i].Ebs
		if ebs == nil {
			continue // an instance store volume or a suppressed device
		}
		ebs.Encrypted = aws.Bool(true)
		if aws.ToString(ebs.KmsKeyId) == "" && enc.KMSKeyID != "" {
			ebs.KmsKeyId = aws.String(enc.KMSKeyID)
		}
	}
	for _, bdm := range src.BlockDeviceMappings {
		name := aws.ToString(bdm.DeviceName)
		if bdm.Ebs == nil || mapped[name] {
			continue
		}
		ebs := &types.EbsBlockDevice{
			Encrypted:           aws.Bool(true),
			VolumeSize:          bdm.Ebs.VolumeSize,
			DeleteOnTermination: bdm.Ebs.DeleteOnTermination,
		}
		if enc.KMSKeyID != "" {
			ebs.KmsKeyId = aws.String(enc.KMSKeyID)
		}
		m = append(m, types.BlockDeviceMapping{DeviceName: bdm.DeviceName, Ebs: ebs})
	}
	return m
}
