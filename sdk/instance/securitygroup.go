package instance

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/lost"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/poll"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/amiforge/packer-plugin-ami/sdk/internal/ec2tag"
	"github.com/amiforge/packer-plugin-ami/sdk/ledger"
)

// SecurityGroupAPI is the client behaviour CreateSecurityGroup and
// DeleteSecurityGroup need.
type SecurityGroupAPI interface {
	CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, optFns ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	DeleteSecurityGroup(ctx context.Context, in *ec2.DeleteSecurityGroupInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	// DescribeSecurityGroups finds the group a failed create may have made.
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
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
	// Required unless NoIngress.
	Port int32
	// NoIngress creates the group without any ingress rule, for an
	// instance that is reached without an inbound connection (through
	// Session Manager). Port and SourceCIDRs must then be empty.
	NoIngress bool
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
// Port from SourceCIDRs (none with NoIngress). With Options.Ledger set, the group is recorded with
// an undo that deletes it (retrying while instances still use it). When the
// rule cannot be added, the group is deleted again before returning.
//
// The group is tagged with a random token (CreateTokenTag). When the create
// call fails, the call may still have made the group (a lost response, or
// ctx cancelled while the request was in flight): a group with the name in
// the VPC that carries the token is then used as if the call had succeeded
// (for example when the SDK's retry of a call whose response was lost got
// InvalidGroup.Duplicate), or deleted when ctx is done. A group with the
// name that does not carry the token existed before and is never touched.
func CreateSecurityGroup(ctx context.Context, api SecurityGroupAPI, in *CreateSecurityGroupInput, optFns ...func(*Options)) (*CreateSecurityGroupOutput, error) {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	name := in.Name
	if name == "" {
		name = "ami-build-" + randomSuffix(8)
	}
	where := region
	if in.VPCID != "" {
		where = in.VPCID + " in " + region
	}
	rule, err := ingressRule(in)
	if err != nil {
		return nil, fmt.Errorf("create security group %q in %s: %w", name, where, err)
	}
	desc := in.Description
	if desc == "" {
		desc = "Temporary group for building an image"
	}
	token := randomSuffix(16)
	req := &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(name),
		Description:       aws.String(desc),
		TagSpecifications: ec2tag.Spec(types.ResourceTypeSecurityGroup, withToken(in.Tags, token)),
	}
	if in.VPCID != "" {
		req.VpcId = aws.String(in.VPCID)
	}
	o.logf("creating security group %q in %s", name, where)
	var id string
	out, err := api.CreateSecurityGroup(ctx, req)
	if err == nil {
		id = aws.ToString(out.GroupId)
	} else {
		err = fmt.Errorf("create security group %q in %s: %w", name, where, err)
		lostGroup := lostCreate{
			noun: "security group", name: name, where: where, region: region, kind: ledger.KindSecurityGroup,
			find: func(ctx context.Context) ([]string, error) {
				return securityGroupsWithToken(ctx, api, in.VPCID, name, token)
			},
			remove: func(ctx context.Context, id string) error {
				return deleteSecurityGroup(ctx, api, id, time.Minute, o.undoOptions())
			},
			undo: func(id string) func(context.Context) error { return o.undoSecurityGroup(api, id) },
		}
		if id, err = o.recoverLost(ctx, lostGroup, err); err != nil {
			return nil, err
		}
	}
	o.record(ledger.KindSecurityGroup, id, region, o.undoSecurityGroup(api, id))
	if !in.NoIngress {
		if err := o.allowIngress(ctx, api, id, rule); err != nil {
			return nil, err
		}
	}
	return &CreateSecurityGroupOutput{GroupID: id, Name: name}, nil
}

// ingress is the rule CreateSecurityGroup adds: tcp/port from cidrs, as
// given, and as EC2 takes it.
type ingress struct {
	port  int32
	cidrs []string
	perm  types.IpPermission
}

// ingressRule checks in's port and sources and returns the rule that lets
// the sources reach the port.
func ingressRule(in *CreateSecurityGroupInput) (ingress, error) {
	if in.NoIngress && (in.Port != 0 || len(in.SourceCIDRs) > 0) {
		return ingress{}, fmt.Errorf("no ingress rule, but port %d or source CIDRs are given", in.Port)
	}
	if !in.NoIngress && (in.Port < 1 || in.Port > 65535) {
		return ingress{}, fmt.Errorf("port %d is out of range; want 1 to 65535", in.Port)
	}
	r := ingress{port: in.Port, cidrs: in.SourceCIDRs}
	if len(r.cidrs) == 0 {
		r.cidrs = []string{"0.0.0.0/0"}
	}
	r.perm = types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(in.Port), ToPort: aws.Int32(in.Port)}
	for _, c := range r.cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return ingress{}, fmt.Errorf("source CIDR %q is not a CIDR block like 203.0.113.0/24 or 2001:db8::/32", c)
		}
		if p.Addr().Is4() {
			r.perm.IpRanges = append(r.perm.IpRanges, types.IpRange{CidrIp: aws.String(p.Masked().String())})
		} else {
			r.perm.Ipv6Ranges = append(r.perm.Ipv6Ranges, types.Ipv6Range{CidrIpv6: aws.String(p.Masked().String())})
		}
	}
	return r, nil
}

// allowIngress adds the rule r to the new security group id. When that
// fails, the group is deleted again (and forgotten by o.Ledger), since a
// group without its rule is of no use, even when ctx is done.
func (o Options) allowIngress(ctx context.Context, api SecurityGroupAPI, id string, r ingress) error {
	o.logf("allowing tcp/%d from %v to security group %s", r.port, r.cidrs, id)
	_, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(id),
		IpPermissions: []types.IpPermission{r.perm},
	})
	if err == nil || awserr.Code(err) == codeDuplicatePermission {
		return nil
	}
	err = fmt.Errorf("allow tcp/%d into security group %s in %s: %w", r.port, id, awserr.Region(api, ""), err)
	// The call may have failed because the caller gave up (Ctrl-C): the
	// group is removed all the same, within lost.Context.
	ctx, cancel := lost.Context(ctx)
	defer cancel()
	if derr := deleteSecurityGroup(ctx, api, id, time.Minute, o.undoOptions()); derr != nil {
		return errors.Join(err, derr)
	}
	if o.Ledger != nil {
		o.Ledger.Forget(ledger.KindSecurityGroup, id)
	}
	return err
}

// undoSecurityGroup is the ledger undo of the security group id: it deletes
// it, waiting for up to o.UndoWait while instances still use it.
func (o Options) undoSecurityGroup(api SecurityGroupAPI, id string) func(context.Context) error {
	return func(ctx context.Context) error {
		return deleteSecurityGroup(ctx, api, id, o.UndoWait, o.undoOptions())
	}
}

// deleteSecurityGroup deletes a security group. While instances still use
// it (DependencyViolation, common right after terminating them) it retries
// with backoff (Options.RetryDelay, RetryMaxDelay) for up to maxWait (zero
// means 5 minutes). A group that does not exist is not an error.
func deleteSecurityGroup(ctx context.Context, api SecurityGroupAPI, groupID string, maxWait time.Duration, optFns ...func(*Options)) error {
	o := newOptions(optFns)
	region := awserr.Region(api, "")
	if maxWait <= 0 {
		maxWait = 5 * time.Minute
	}
	deadline := time.Now().Add(maxWait)
	delay := o.RetryDelay
	o.logf("deleting security group %s in %s", groupID, region)
	for {
		_, err := api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(groupID)})
		switch {
		case err == nil, awserr.Code(err) == codeGroupNotFound:
			return nil
		case awserr.Code(err) != codeDependency:
			return fmt.Errorf("delete security group %s in %s: %w", groupID, region, err)
		case time.Now().Add(delay).After(deadline):
			return fmt.Errorf("delete security group %s in %s: still in use after %s: %w", groupID, region, maxWait, err)
		}
		o.logf("security group %s is still in use; retrying in %s", groupID, delay)
		if serr := poll.Sleep(ctx, delay); serr != nil {
			return fmt.Errorf("delete security group %s in %s: %w", groupID, region, errors.Join(err, serr))
		}
		delay = min(2*delay, o.RetryMaxDelay)
	}
}

// securityGroupsWithToken returns the IDs of the groups named name (in
// vpcID, if set) that carry token.
func securityGroupsWithToken(ctx context.Context, api SecurityGroupAPI, vpcID, name, token string) ([]string, error) {
	filters := []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}
	if vpcID != "" {
		filters = append(filters, types.Filter{Name: aws.String("vpc-id"), Values: []string{vpcID}})
	}
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	if err != nil {
		return nil, err
	}
	return marked(out.SecurityGroups, name, token, func(g types.SecurityGroup) (*string, *string, []types.Tag) {
		return g.GroupName, g.GroupId, g.Tags
	}), nil
}
