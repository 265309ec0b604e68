# An HPC team that still builds instance-store-backed images for nodes that
# only need fast local scratch disks; the bundle goes to the team's S3
# bucket and is signed with the team's X.509 certificate kept next to the
# template.
# Covers: amazon-instance with account_id, s3_bucket, x509_cert_path,
# x509_key_path, bundle_prefix, ami_virtualization_type = "hvm",
# source_ami_filter on instance-store images, ami_block_device_mappings
# for ephemeral volumes, tags, a shell provisioner.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "account_id" {
  type    = string
  default = "1111-2222-3333"
}

locals {
  cert_dir = "${path.root}/certs"
}

source "amazon-instance" "scratch" {
  region        = "us-east-1"
  instance_type = "m3.medium"
  ssh_username  = "ec2-user"

  source_ami_filter {
    filters = {
      name             = "hpc-node-base-*"
      root-device-type = "instance-store"
    }
    owners      = ["self"]
    most_recent = true
  }

  account_id     = var.account_id
  s3_bucket      = "hpc-ami-bundles-111122223333"
  x509_cert_path = "${local.cert_dir}/x509-cert.pem"
  x509_key_path  = "${local.cert_dir}/x509-key.pem"
  bundle_prefix  = "hpc-node-{{timestamp}}"

  ami_name                = "hpc-node-{{timestamp}}"
  ami_virtualization_type = "hvm"

  ami_block_device_mappings {
    device_name  = "/dev/sdb"
    virtual_name = "ephemeral0"
  }

  tags = {
    Name = "hpc-node"
    Team = "hpc"
  }
}

build {
  sources = ["source.amazon-instance.scratch"]

  provisioner "shell" {
    inline = ["sudo yum -y install openmpi"]
  }
}
