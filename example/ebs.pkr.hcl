# Builds an EBS-backed Amazon Linux 2023 AMI with nginx installed, in real AWS.
#
#   packer init example/ebs.pkr.hcl
#   packer build -var region=eu-west-1 example/ebs.pkr.hcl
#
# Credentials come from the standard AWS chain (AWS_PROFILE, environment,
# SSO, instance role). The IAM permissions needed are in iam/ami-ebs-policy.json,
# plus iam/ami-builder-copies-policy.json when ami_regions or ami_users is set.

packer {
  required_plugins {
    ami = {
      source  = "github.com/amiforge/ami"
      version = ">= 0.1.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

# Where the AMI goes besides its build region, and who may launch it. Both
# default to nothing, so a development build stays private in one region; a
# release job passes, for example,
#   -var 'ami_regions=["eu-central-1"]' -var 'ami_users=["123456789012"]'
variable "ami_regions" {
  type    = list(string)
  default = []
}

variable "ami_users" {
  type    = list(string)
  default = []
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "ami-ebs" "web" {
  region        = var.region
  instance_type = var.instance_type

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  # Only this machine may reach the build instance while it is provisioned.
  temporary_security_group_source_cidrs = ["0.0.0.0/0"]

  ssh_username = "ec2-user"

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 8
    volume_type           = "gp3"
    delete_on_termination = true
  }

  ami_name        = "web-nginx-${local.timestamp}"
  ami_description = "Amazon Linux 2023 with nginx"

  # Copied and shared like amazon-ebs does it; if any region fails, every
  # copy is removed again.
  ami_regions = var.ami_regions
  ami_users   = var.ami_users

  run_tags = {
    Purpose = "packer-build"
  }

  tags = {
    Name      = "web-nginx"
    SourceAMI = "{{ .SourceAMI }}"
    BuiltBy   = "packer-plugin-ami"
  }

  snapshot_tags = {
    Name = "web-nginx"
  }
}

build {
  sources = ["source.ami-ebs.web"]

  provisioner "shell" {
    inline = [
      "sudo dnf -y install nginx",
      "sudo systemctl enable nginx",
    ]
  }
}
