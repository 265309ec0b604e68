# Builds an AMI against a local AWS emulator (moto) and lets ami-ebs itself
# copy it to four more regions (`ami_regions`), as many release templates do
# without a post-processor. An OpenSSH server on 127.0.0.1 stands in for the
# build instance. The demo runner starts both and fills in the variables
# (`go run ./example/local -only copies`); nothing here reaches real AWS.

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

source "ami-ebs" "demo" {
  region        = var.region
  instance_type = "t3.micro"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-6.1-x86_64"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ssh_host             = "127.0.0.1"
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "1m"

  ami_name    = "demo-copies-{{timestamp}}"
  ami_regions = ["eu-west-1", "eu-central-1", "us-west-2", "ap-southeast-2"]

  tags = {
    Name = "demo-copies"
  }
}

build {
  sources = ["source.ami-ebs.demo"]

  provisioner "shell" {
    inline = [
      "echo \"provisioned by packer at $(date -u +%FT%TZ)\" > ${var.output_dir}/provisioned.txt",
    ]
  }
}
