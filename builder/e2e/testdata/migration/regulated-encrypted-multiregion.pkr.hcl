# A payments team under PCI rules: every volume is encrypted with the team's
# customer-managed KMS keys, one per region, and the encrypted AMI is shared
# with the production account in each region it is copied to.
# Covers: encrypt_boot, kms_key_id, region_kms_key_ids, ami_regions,
# ami_users and snapshot_users on an encrypted AMI,
# launch_block_device_mappings with encryption and gp3 throughput,
# snapshot_tags, run_volume_tags, imds_support, metadata_options,
# iam_instance_profile, aws_polling.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "prod_account" {
  type    = string
  default = "444455556666"
}

locals {
  kms_keys = {
    "us-east-1" = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    "eu-west-1" = "arn:aws:kms:eu-west-1:111122223333:key/5678abcd-56ef-78ab-90cd-5678901234cd"
  }
  stamp = formatdate("YYYYMMDDhhmmss", timestamp())
}

source "amazon-ebs" "payments" {
  region               = "us-east-1"
  instance_type        = "m6i.large"
  iam_instance_profile = "packer-build-ssm"
  ssh_username         = "ec2-user"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-6.1-x86_64"
      virtualization-type = "hvm"
    }
    owners      = ["137112412989"]
    most_recent = true
  }

  ami_name     = "payments-base-${local.stamp}"
  imds_support = "v2.0"

  encrypt_boot       = true
  kms_key_id         = local.kms_keys["us-east-1"]
  # The build region is listed so that region_kms_key_ids may name its key.
  ami_regions        = ["us-east-1", "eu-west-1"]
  region_kms_key_ids = local.kms_keys
  ami_users          = [var.prod_account]
  snapshot_users     = [var.prod_account]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 30
    volume_type           = "gp3"
    throughput            = 250
    iops                  = 3000
    encrypted             = true
    kms_key_id            = local.kms_keys["us-east-1"]
    delete_on_termination = true
  }

  snapshot_tags = {
    DataClassification = "confidential"
  }
  run_volume_tags = {
    DataClassification = "confidential"
  }
  tags = {
    Name               = "payments-base"
    DataClassification = "confidential"
    Compliance         = "pci-dss"
  }

  aws_polling {
    delay_seconds = 30
    max_attempts  = 120
  }
}

build {
  sources = ["source.amazon-ebs.payments"]

  provisioner "shell" {
    execute_command = "sudo -E sh -eux '{{ .Path }}'"
    inline = [
      "dnf -y update",
      "dnf -y install amazon-cloudwatch-agent",
    ]
  }
}
