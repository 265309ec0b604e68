# An open-source project publishing its appliance as a public AMI in three
# regions, unencrypted so that anybody can launch it. Old images of the same
# name are replaced on rebuild.
# Covers: ami_groups = ["all"], snapshot_groups = ["all"], ami_regions,
# force_deregister, force_delete_snapshot, ena_support, sriov_support,
# ssh_clear_authorized_keys, {{ .SourceAMIName }} in ami_description,
# formatdate in ami_name, a manifest
# post-processor.
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "~> 1"
    }
  }
}

variable "app_version" {
  type    = string
  default = "3.4.0"
}

source "amazon-ebs" "appliance" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ec2-user"

  ssh_clear_authorized_keys = true

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name        = "openappliance-${var.app_version}-${formatdate("YYYY-MM-DD-hhmm", timestamp())}"
  ami_description = "OpenAppliance ${var.app_version} on {{ .SourceAMIName }}"

  ami_groups      = ["all"]
  snapshot_groups = ["all"]
  ami_regions     = ["eu-west-1", "ap-southeast-2"]

  ena_support   = true
  sriov_support = true

  force_deregister      = true
  force_delete_snapshot = true

  tags = {
    Name       = "openappliance-${var.app_version}"
    Version    = var.app_version
    License    = "Apache-2.0"
    BuiltWith  = "packer amazon-ebs"
  }
}

build {
  sources = ["source.amazon-ebs.appliance"]

  provisioner "shell" {
    inline = [
      "echo 'installing openappliance ${var.app_version}'",
      "id",
    ]
  }

  post-processor "manifest" {
    output     = "manifest.json"
    strip_path = true
  }
}
