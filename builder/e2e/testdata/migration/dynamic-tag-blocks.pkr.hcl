# A platform team whose tagging policy lives in one local map; the AMI,
# snapshot and build-instance tags are generated from it with dynamic
# blocks. The image is a tagged re-stamp of the vendor base, with no
# provisioning.
# Covers: dynamic "tag", "snapshot_tag" and "run_tag" blocks,
# communicator = "none", ami_description with {{ .SourceAMIName }},
# force_deregister.
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

locals {
  mandatory_tags = {
    CostCenter  = "platform-0042"
    Owner       = "platform@example.com"
    Environment = "shared"
    Compliance  = "baseline"
  }
}

source "amazon-ebs" "tagged" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  communicator  = "none"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name         = "tagged-base-{{timestamp}}"
  ami_description  = "Tagged copy of {{ .SourceAMIName }}"
  force_deregister = true

  dynamic "tag" {
    for_each = local.mandatory_tags
    content {
      key   = tag.key
      value = tag.value
    }
  }

  dynamic "snapshot_tag" {
    for_each = local.mandatory_tags
    content {
      key   = snapshot_tag.key
      value = snapshot_tag.value
    }
  }

  dynamic "run_tag" {
    for_each = local.mandatory_tags
    content {
      key   = run_tag.key
      value = run_tag.value
    }
  }
}

build {
  sources = ["source.amazon-ebs.tagged"]
}
