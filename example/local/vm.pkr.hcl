# Builds an instance-store AMI from a real Linux machine with the default
# copy mode: a Debian VM that `make demo DEMO_FLAGS=-vm` boots under qemu
# stands in for the build instance, against a local AWS emulator (moto).
# The demo fills in the variables, then downloads the bundle, unbundles the
# image, boots it and prints what it checked.

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

variable "output_dir" {
  type = string
}

variable "s3_bucket" {
  type    = string
  default = "demo-bundles"
}

source "ami-instance" "vm" {
  region         = var.region
  instance_type  = "m3.medium"
  local_emulator = true

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
  ssh_timeout          = "5m"

  ami_name           = "demo-vm-{{timestamp}}"
  s3_bucket          = var.s3_bucket
  s3_prefix          = "demo-vm"
  x509_generated_dir = "${var.output_dir}/keys"

  # bundle_source defaults to "copy": a fresh file system image of the
  # running root, made in bundle_scratch_dir (/mnt, the VM's second disk).

  tags = {
    Name = "demo-vm"
  }
}

build {
  sources = ["source.ami-instance.vm"]

  provisioner "shell" {
    inline = [
      "echo 'provisioned by packer' | sudo tee /etc/motd >/dev/null",
      "echo 'ls -la' >> ~/.bash_history",
    ]
  }
}
