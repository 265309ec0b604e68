# A security team's base image for accounts where instances accept no
# inbound connection at all: the build instance gets no public address and
# no SSH rule, and Packer reaches it through AWS Systems Manager Session
# Manager. The instance profile lets the SSM agent register; the machine
# running Packer has the Session Manager plugin installed.
# Covers: ssh_interface = "session_manager", iam_instance_profile,
# pause_before_ssm, session_manager_port (from a variable; 0 picks a free
# port), associate_public_ip_address = false, a shell provisioner.
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "session_port" {
  type        = number
  default     = 0
  description = "Local port of the Session Manager tunnel; 0 picks a free one."
}

source "amazon-ebs" "hardened" {
  region        = "us-east-1"
  instance_type = "t3.small"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  associate_public_ip_address = false
  iam_instance_profile        = "SSMInstanceProfile"
  ssh_interface               = "session_manager"
  session_manager_port        = var.session_port
  pause_before_ssm            = "2s"
  ssh_username                = "ec2-user"

  ami_name = "hardened-base-{{timestamp}}"
  tags = {
    Name    = "hardened-base"
    Access  = "session-manager"
    BaseAMI = "{{ .SourceAMI }}"
  }
}

build {
  sources = ["source.amazon-ebs.hardened"]

  provisioner "shell" {
    inline = ["echo reached through Session Manager"]
  }
}
