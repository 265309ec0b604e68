# Builds a web AMI in one region and distributes it, in real AWS, to more
# regions and to other accounts of the organization: a customer-managed KMS
# key per region (so that the encrypted copies can be shared), tags,
# deprecation after 180 days, and the newest three releases kept per region.
#
#   packer init example/distribute.pkr.hcl
#   packer build \
#     -var 'share_with=["111122223333","444455556666"]' \
#     -var 'org_arn=arn:aws:organizations::123456789012:organization/o-abcdefghij' \
#     -var 'kms_keys={"eu-west-1"="arn:aws:kms:eu-west-1:123456789012:alias/ami","ap-southeast-2"="arn:aws:kms:ap-southeast-2:123456789012:alias/ami"}' \
#     example/distribute.pkr.hcl
#
# Each KMS key's policy must let the accounts in share_with use it
# (kms:Decrypt, kms:DescribeKey, kms:CreateGrant), or they cannot launch the
# copies. Credentials come from the standard AWS chain.

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

variable "regions" {
  type        = list(string)
  description = "Regions the AMI is copied to."
  default     = ["eu-west-1", "ap-southeast-2"]
}

variable "share_with" {
  type        = list(string)
  description = "Account IDs allowed to launch the AMI and copy its snapshots."
  default     = []
}

variable "org_arn" {
  type        = string
  description = "Organization whose accounts may launch the AMI; empty for none."
  default     = ""
}

variable "kms_keys" {
  type        = map(string)
  description = "Customer-managed KMS key per target region, for encrypted copies that can be shared."
  default     = {}
}

source "ami-ebs" "web" {
  region        = var.region
  instance_type = "t3.micro"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  ssh_username = "ec2-user"

  ami_name        = "web-{{timestamp}}"
  ami_description = "nginx on Amazon Linux 2023"
  tags = {
    App       = "web"
    SourceAMI = "{{ .SourceAMI }}"
  }
}

build {
  sources = ["source.ami-ebs.web"]

  provisioner "shell" {
    inline = ["sudo dnf -y install nginx", "sudo systemctl enable nginx"]
  }

  post-processor "ami-distribute" {
    region  = var.region
    regions = var.regions

    ami_users      = var.share_with
    snapshot_users = var.share_with
    ami_org_arns   = var.org_arn == "" ? [] : [var.org_arn]

    # Copies are encrypted with the region's key when one is given. The
    # source region's AMI stays as built.
    region_kms_key_ids = var.kms_keys

    tags = {
      App          = "web"
      Region       = "{{ .Region }}"
      SourceAMI    = "{{ .SourceAMI }}"
      SourceRegion = "{{ .SourceRegion }}"
    }
    copy_image_tags = true
    deprecate_after = "180d"

    copy_concurrency = 3

    keep_releases = 3
    retention {
      name_pattern = "web-*"
      tags = {
        App = "web"
      }
    }

    manifest_output = "distribute-manifest.json"
  }
}
