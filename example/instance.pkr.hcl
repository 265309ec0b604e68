# Builds an instance-store (S3-backed) AMI in real AWS: launches an
# instance-store Amazon Linux instance, provisions it, copies its root file
# system into a fresh image on the instance, bundles that image on this
# machine while uploading it to your S3 bucket, and registers the AMI.
#
#   packer init example/instance.pkr.hcl
#   packer build \
#     -var s3_bucket=my-bundles-us-east-1 \
#     -var ec2_cert_path=$HOME/ec2-ami-tools/etc/ec2/amitools/cert-ec2.pem \
#     example/instance.pkr.hcl
#
# Credentials come from the standard AWS chain (AWS_PROFILE, environment,
# SSO, instance role); they never reach the build instance.
#
# The bucket must be in the build region, have ACLs enabled (object
# ownership "bucket owner preferred" or "object writer") and must not use
# SSE-KMS default encryption.
#
# ec2_cert_path is Amazon's EC2 certificate, cert-ec2.pem, which ships with
# Amazon's EC2 AMI tools (ec2-ami-tools, in etc/ec2/amitools/); GovCloud
# (US) and China regions use cert-ec2-gov.pem and cert-ec2-cn-north-1.pem
# from the same package.

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

variable "s3_bucket" {
  type        = string
  description = "S3 bucket in the build region that receives the bundle."
}

variable "ec2_cert_path" {
  type        = string
  description = "Amazon's EC2 certificate (cert-ec2.pem from the EC2 AMI tools)."
}

# Keep the generated X.509 key and certificate, so the bundle can be
# unbundled later (ami-bundle unbundle -k keys/.../x509-key.pem ...).
variable "keys_dir" {
  type    = string
  default = "keys"
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "ami-instance" "web" {
  region = var.region
  # Only C1, C3, D2, I2, M1, M2, M3, R3 and X1 instances boot an
  # instance-store root device.
  instance_type = "m3.medium"

  source_ami_filter {
    filters = {
      name                = "amzn-ami-minimal-hvm-*-x86_64-s3"
      root-device-type    = "instance-store"
      virtualization-type = "hvm"
    }
    owners             = ["amazon"]
    most_recent        = true
    include_deprecated = true
  }
  ssh_username = "ec2-user"

  ami_name        = "web-instance-${local.timestamp}"
  ami_description = "web server, instance-store, from {{ .SourceAMIName }}"

  s3_bucket          = var.s3_bucket
  s3_prefix          = "bundles/web-${local.timestamp}"
  ec2_cert_path      = var.ec2_cert_path
  x509_generated_dir = "${var.keys_dir}/web-${local.timestamp}"

  # Copy the root file system (the default), without caches.
  bundle_source  = "copy"
  bundle_exclude = ["/var/cache/yum"]

  architecture            = "x86_64"
  ami_virtualization_type = "hvm"

  # Expose the instance's first instance-store volume to instances of the AMI.
  ami_block_device_mappings {
    device_name  = "/dev/sdb"
    virtual_name = "ephemeral0"
  }

  tags = {
    Name      = "web-instance"
    SourceAMI = "{{ .SourceAMI }}"
  }
}

build {
  sources = ["source.ami-instance.web"]

  provisioner "shell" {
    inline = ["sudo yum -y install nginx"]
  }
}
