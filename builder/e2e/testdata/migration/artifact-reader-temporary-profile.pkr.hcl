# A build that pulls its application bundle from a private S3 bucket and
# ships logs while it provisions. The team has no standing instance profile
# for image builds: Packer creates a temporary one whose role may only read
# the bundle and write logs, and deletes it afterwards.
# Covers: temporary_iam_instance_profile_policy_document with two Statement
# blocks, run_tags (which also tag the role and the profile), a shell
# provisioner over SSH.
# build: yes

packer {
  required_plugins {
    amazon = {
      version = ">= 1.2.8"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "artifact_bucket" {
  type    = string
  default = "acme-build-artifacts"
}

source "amazon-ebs" "reader" {
  region        = "us-east-1"
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

  temporary_iam_instance_profile_policy_document {
    Version = "2012-10-17"
    Statement {
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = ["arn:aws:s3:::${var.artifact_bucket}/releases/*"]
    }
    Statement {
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["*"]
    }
  }

  ami_name = "reader-{{timestamp}}"

  run_tags = {
    Team    = "payments"
    Purpose = "image-build"
  }

  tags = {
    Name = "reader"
  }
}

build {
  sources = ["source.amazon-ebs.reader"]

  provisioner "shell" {
    inline = [
      "echo 'fetching the release bundle'",
      "uname -a",
    ]
  }
}
