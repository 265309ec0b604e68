# Builds an instance-store AMI against a local AWS emulator (moto) with an
# OpenSSH server on 127.0.0.1 standing in for the build instance; nothing
# here reaches real AWS. `make demo` fills in the variables below, creates
# the S3 bucket and runs this template after distribute.pkr.hcl (alone:
# `go run ./example/local -only instance`). The emulator's endpoint and
# test credentials come from the environment (AWS_ENDPOINT_URL,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); local_emulator = true lets the
# builder use a generated stand-in for Amazon's EC2 certificate (it needs
# the endpoint on a loopback address, and is never for real AWS).
#
# The "instance" is this machine, so instead of copying its root file
# system the provisioner makes a small ext4 image file and the builder
# bundles that file (bundle_source).

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "ssh_port" {
  type = number
}

variable "ssh_username" {
  type = string
}

variable "ssh_private_key_file" {
  type = string
}

# Directory on "the instance" (this machine) the provisioner writes to.
variable "output_dir" {
  type = string
}

variable "s3_bucket" {
  type    = string
  default = "demo-bundles"
}

source "ami-instance" "demo" {
  region        = var.region
  instance_type = "m3.medium"

  # For the local emulator only: a stand-in EC2 certificate.
  local_emulator = true

  # moto preloads one instance-store image among Amazon's public images.
  source_ami_filter {
    filters = {
      name             = "amzn-ami-minimal-pv-*"
      root-device-type = "instance-store"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ssh_host             = "127.0.0.1"
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "1m"

  ami_name        = "demo-instance-{{timestamp}}"
  ami_description = "Demo instance-store AMI built against the local emulator"

  s3_bucket          = var.s3_bucket
  s3_prefix          = "demo/{{timestamp}}"
  bundle_source      = "${var.output_dir}/root.img"
  x509_generated_dir = "${var.output_dir}/keys"

  tags = {
    Name      = "demo-instance"
    SourceAMI = "{{ .SourceAMI }}"
    BuiltBy   = "packer-plugin-ami"
  }
}

build {
  sources = ["source.ami-instance.demo"]

  provisioner "shell" {
    inline = [
      "mkdir -p ${var.output_dir}/tree",
      "echo \"provisioned by packer at $(date -u +%FT%TZ)\" > ${var.output_dir}/tree/provisioned.txt",
      "truncate -s 16M ${var.output_dir}/root.img",
      "mkfs.ext4 -q -F -d ${var.output_dir}/tree ${var.output_dir}/root.img",
    ]
  }
}
