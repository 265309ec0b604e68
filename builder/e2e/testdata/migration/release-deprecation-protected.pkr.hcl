# A release-engineering team that keeps release AMIs for six months: each
# one is deprecated after that, and protected from accidental
# deregistration meanwhile. Copies go to a recently opted-in region that the
# plugin's region list may not know yet.
# Covers: deprecate_at with timeadd, deregistration_protection block,
# skip_region_validation, ami_regions, ami_virtualization_type, tags with
# {{ .BuildRegion }}, shell provisioner with expect_disconnect.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.1"
    }
  }
}

variable "release" {
  type    = string
  default = "v42"
}

source "amazon-ebs" "release" {
  region        = "us-west-2"
  instance_type = "c6i.large"
  ssh_username  = "ec2-user"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name                = "service-${var.release}"
  ami_virtualization_type = "hvm"
  ami_regions             = ["us-east-1", "ap-southeast-5"]
  skip_region_validation  = true
  deprecate_at            = timeadd(timestamp(), "4380h")

  deregistration_protection {
    enabled       = true
    with_cooldown = false
  }

  tags = {
    Name        = "service-${var.release}"
    Release     = var.release
    BuildRegion = "{{ .BuildRegion }}"
  }
}

build {
  sources = ["source.amazon-ebs.release"]

  provisioner "shell" {
    inline            = ["sudo dnf -y update", "sudo reboot"]
    expect_disconnect = true
  }

  provisioner "shell" {
    pause_before = "30s"
    inline       = ["uptime"]
  }
}
