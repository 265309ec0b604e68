# A small platform team's Amazon Linux 2023 base image. Developers build it
# from their laptops with the defaults (no sharing, build region only); CI
# passes -var-file=prod.pkrvars.hcl to share it and copy it to other regions.
# Covers: list variables with empty defaults for ami_users and ami_regions,
# source_ami_filter, locals with a timestamp in ami_name, tags and run_tags
# with {{ .SourceAMIName }}, force_deregister, a shell provisioner over SSH.
# build: yes

packer {
  required_plugins {
    amazon = {
      version = ">= 1.2.8"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "ami_users" {
  type        = list(string)
  description = "Accounts the AMI is shared with. Empty for dev builds."
  default     = []
}

variable "ami_regions" {
  type        = list(string)
  description = "Regions the AMI is copied to. Empty for dev builds."
  default     = []
}

variable "environment" {
  type    = string
  default = "dev"
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "al2023" {
  region        = var.region
  instance_type = "t3.small"
  ssh_username  = "ec2-user"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-6.1-x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name         = "platform-al2023-${var.environment}-${local.timestamp}"
  ami_description  = "Platform base image (Amazon Linux 2023)"
  ami_users        = var.ami_users
  ami_regions      = var.ami_regions
  force_deregister = true

  tags = {
    Name          = "platform-al2023-${var.environment}"
    Environment   = var.environment
    BaseAMI       = "{{ .SourceAMI }}"
    BaseAMIName   = "{{ .SourceAMIName }}"
    ManagedBy     = "packer"
  }

  run_tags = {
    Name    = "packer-builder-al2023"
    Purpose = "image-build"
  }
}

build {
  sources = ["source.amazon-ebs.al2023"]

  provisioner "shell" {
    inline = [
      "echo 'Provisioning platform base image'",
      "uname -a",
      "cat /etc/os-release || true",
    ]
  }
}
