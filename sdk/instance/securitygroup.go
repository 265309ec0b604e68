package instance

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// SecurityGroupAPI is the client behaviour needed for security groups.
type SecurityGroupAPI interface {
	CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, optFns ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	DeleteSecurityGroup(ctx context.Context, in *ec2.DeleteSecurityGroupInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
}

var _ SecurityGroupAPI = (*ec2.Client)(nil)

// CreateSecurityGroupInput describes a temporary security group that lets
// the builder reach the instance on one TCP port.
type CreateSecurityGroupInput struct {
	// VPCID is the VPC of the group. Empty means the default VPC.
	VPCID string
	// Name of the group. Empty means "ami-build-" and a random suffix.
	Name string
	// Description of the group. Empty means a generic description.
	Description string
	// Port is the TCP port to open, such as 22 for SSH or 5986 for WinRM.
	// Required.
	Port int32
	// SourceCIDRs may reach Port: IPv4 or IPv6 CIDR blocks. Empty means
	// 0.0.0.0/0.
	SourceCIDRs []string
	// Tags go on the group.
	Tags map[string]string
}

// CreateSecurityGroupOutput is the result of CreateSecurityGroup.
type CreateSecurityGroupOutput struct {
	GroupID string
	Name    string
}

// CreateSecurityGroup creates a security group with one ingress rule: TCP
// Port from SourceCIDRs. With Options.Ledger set, the group is recorded with
// an undo that deletes it (retrying while instances still use it). When the
// rule cannot be added, the group is deleted again before returning.
func CreateSecurityGroup(ctx context.Context, api SecurityGroupAPI, in *CreateSecurityGroupInput, optFns ...func(*Options)) (*CreateSecurityGroupOutput, error) {
	o := newOptions(optFns)
	region := regionOf(api)
	name := in.Name
	if name == "" {
		name = "ami-build-" + randomSuffix(8)
	}
	where := region
	if in.VPCID != "" {
		where = in.VPCID + " in " + region
	}
	if in.Port < 1 || in.Port > 65535 {
		return nil, fmt.Errorf("create security group %q in %s: port %d is out of range; want 1 to 65535", name, where, in.Port)
	}
	cidrs := in.SourceCIDRs
	if len(cidrs) == 0 {
		cidrs = []string{"0.0.0.0/0"}
	}
	perm := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(in.Port), ToPort: aws.Int32(in.Port)}
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("create security group %q in %s: source CIDR %q is not a CIDR block like 203.0.113.0/24 or 2001:db8::/32", name, where, c)
		}
		if p.Addr().Is4() {
			perm.IpRanges = append(perm.IpRanges, types.IpRange{CidrIp: aws.String(p.Masked().String())})
		} else {
			perm.Ipv6Ranges = append(perm.Ipv6Ranges, types.Ipv6Range{CidrIpv6: aws.String(p.Masked().String())})
		}
	}
	desc := in.Description
	if desc == "" {
		desc = "Temporary group for building an image"
	}
	req := &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(name),
		Description:       aws.String(desc),
		TagSpecifications: tagSpec(types.ResourceTypeSecurityGroup, in.Tags),
	}
	if in.VPCID != "" {
		req.VpcId = aws.String(in.VPCID)
	}
	o.logf("creating security group %q in %s", name, where)
	out, err := api.CreateSecurityGroup(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create security group %q in %s: %w", name, where, err)
	}
	id := aws.ToString(out.GroupId)
	o.record(ledger.KindSecurityGroup, id, region, func(ctx context.Context) error {
		return DeleteSecurityGroup(ctx, api, id, o.UndoWait, o.undoOptions())
	})

	o.logf("allowing tcp/%d from %v to security group %s", in.Port, cidrs, id)
	_, err = api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(id),
		IpPermissions: []types.IpPermission{perm},
	})
	if err != nil && apiCode(err) != codeDuplicatePermission {
		err = fmt.Errorf("allow tcp/%d into security group %s in %s: %w", in.Port, id, region, err)
		if derr := DeleteSecurityGroup(ctx, api, id, time.Minute, o.undoOptions()); derr != nil {
			return nil, errors.Join(err, derr)
		}
		if o.Ledger != nil {
			o.Ledger.Forget(ledger.KindSecurityGroup, id)
		}
		return nil, err
	}
	return &CreateSecurityGroupOutput{GroupID: id, Name: name}, nil
}

// DeleteSecurityGroup deletes a security group. While instances still use
// it (DependencyViolation, common right after terminating them) it retries
// with backoff (Options.RetryDelay, RetryMaxDelay) for up to maxWait (zero
// means 5 minutes). A group that does not exist is not an error.
func DeleteSecurityGroup(ctx context.Context, api SecurityGroupAPI, groupID string, maxWait time.Duration, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	region := regionOf(api)
	if maxWait <= 0 {
		maxWait = 5 * time.Minute
	}
	deadline := time.Now().Add(maxWait)
	delay := o.RetryDelay
	o.logf("deleting security group %s in %s", groupID, region)
	for {
		_, err := api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(groupID)})
		switch {
		case err == nil, apiCode(err) == codeGroupNotFound:
			return nil
		case apiCode(err) != codeDependency:
			return fmt.Errorf("delete security group %s in %s: %w", groupID, region, err)
		case time.Now().Add(delay).After(deadline):
			return fmt.Errorf("delete security group %s in %s: still in use after %s: %w", groupID, region, maxWait, err)
		}
		o.logf("security group %s is still in use; retrying in %s", groupID, delay)
		if serr := sleep(ctx, delay); serr != nil {
			return fmt.Errorf("delete security group %s in %s: %w", groupID, region, errors.Join(err, serr))
		}
		delay = min(2*delay, o.RetryMaxDelay)
	}
}
