# A runtime team moving services to Graviton: an arm64 image built on a
# t4g instance, EBS-optimized, with an ED25519 temporary key pair.
# Covers: arm64 source_ami_filter, ebs_optimized, temporary_key_pair_type,
# ena_support, ami_regions with copies, snapshot_users, tags with
# {{ .SourceAMIOwnerName }}, formatdate in ami_name.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

source "amazon-ebs" "arm64" {
  region                  = "eu-west-1"
  instance_type           = "t4g.small"
  ebs_optimized           = true
  ssh_username            = "ec2-user"
  temporary_key_pair_type = "ed25519"

  source_ami_filter {
    filters = {
      name         = "al2023-ami-2023.*-kernel-6.1-arm64"
      architecture = "arm64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name       = "runtime-arm64-${formatdate("YYYYMMDDhhmm", timestamp())}"
  ena_support    = true
  ami_regions    = ["eu-central-1"]
  snapshot_users = ["210987654321"]

  tags = {
    Name         = "runtime-arm64"
    Architecture = "arm64"
    BaseOwner    = "{{ .SourceAMIOwnerName }}"
  }
}

build {
  sources = ["source.amazon-ebs.arm64"]

  provisioner "shell" {
    inline = ["sudo dnf -y install java-21-amazon-corretto-headless"]
  }
}
