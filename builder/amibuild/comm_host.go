package amibuild

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// CommHost returns the host function of communicator.StepConnect: host
// (ssh_host or winrm_host) when set, else 127.0.0.1 with Session Manager,
// else the build instance's address chosen by sshInterface (see
// RunConfig.SSHInterface).
func CommHost(host, sshInterface string) func(multistep.StateBag) (string, error) {
	return func(state multistep.StateBag) (string, error) {
		if host != "" {
			return host, nil
		}
		if sshInterface == SSHInterfaceSessionManager {
			return "127.0.0.1", nil
		}
		inst, ok := StateInstance.Get(state)
		if !ok {
			return "", fmt.Errorf("no build instance to connect to")
		}
		return InstanceAddress(inst, sshInterface)
	}
}

// InstanceAddress returns the address of inst to connect to, chosen by
// sshInterface. With an empty sshInterface it is the public IP address when
// there is one, else the private IP address, else a DNS name.
func InstanceAddress(inst types.Instance, sshInterface string) (string, error) {
	id := aws.ToString(inst.InstanceId)
	pick := func(what, v string) (string, error) {
		if v == "" {
			return "", fmt.Errorf("ssh_interface: build instance %s has no %s (check associate_public_ip_address, the subnet, or set ssh_host)", id, what)
		}
		return v, nil
	}
	switch sshInterface {
	case SSHInterfacePublicIP:
		return pick("public IP address", aws.ToString(inst.PublicIpAddress))
	case SSHInterfacePrivateIP:
		return pick("private IP address", aws.ToString(inst.PrivateIpAddress))
	case SSHInterfacePublicDNS:
		return pick("public DNS name", aws.ToString(inst.PublicDnsName))
	case SSHInterfacePrivateDNS:
		return pick("private DNS name", aws.ToString(inst.PrivateDnsName))
	}
	for _, v := range []*string{inst.PublicIpAddress, inst.PrivateIpAddress, inst.PublicDnsName, inst.PrivateDnsName} {
		if s := aws.ToString(v); s != "" {
			return s, nil
		}
	}
	return "", fmt.Errorf("build instance %s has no address to connect to; set ssh_host or check the subnet", id)
}

// SessionPort is the SSH port function of communicator.StepConnect with
// Session Manager: the local port of the session, from state.
func SessionPort(state multistep.StateBag) (int, error) {
	port, ok := StateSessionPort.Get(state)
	if !ok {
		return 0, fmt.Errorf("internal error: no Session Manager session in the build state")
	}
	return port, nil
}
