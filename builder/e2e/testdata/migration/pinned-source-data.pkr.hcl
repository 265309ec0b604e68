# A security team that pins the source AMI through a data source (in their
# real template an amazon-ami lookup reviewed in each change) and feeds its
# output to source_ami; sharing and copies are switched on per environment
# through variables that default to nothing.
# Covers: data-source-fed source_ami, ami_users, ami_regions and
# snapshot_users from variables with empty defaults, force_deregister,
# tags from a local map merged with per-build values.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "share_with" {
  type    = list(string)
  default = []
}

variable "copy_to" {
  type    = list(string)
  default = []
}

data "null" "base_ami" {
  input = "ami-0c101f26f147fa7fd"
}

locals {
  common_tags = {
    Owner      = "secops"
    CostCenter = "cc-4711"
  }
}

source "amazon-ebs" "hardened" {
  region        = "us-east-1"
  instance_type = "t3.medium"
  source_ami    = data.null.base_ami.output
  ssh_username  = "ec2-user"

  ami_name         = "secops-hardened-${formatdate("YYYY-MM-DD-hhmm", timestamp())}"
  ami_users        = var.share_with
  snapshot_users   = var.share_with
  ami_regions      = var.copy_to
  force_deregister = true

  tags = merge(local.common_tags, {
    Name       = "secops-hardened"
    SourceAMI  = data.null.base_ami.output
  })
}

build {
  sources = ["source.amazon-ebs.hardened"]

  provisioner "shell" {
    inline = ["sudo dnf -y update --security"]
  }
}
