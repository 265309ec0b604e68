# Builds an AMI against a local AWS emulator (moto) with an OpenSSH server on
# 127.0.0.1 standing in for the build instance. The demo runner starts both,
# fills in the variables below and runs this template
# (`go run ./example/local -only ebs`); nothing here reaches real AWS. The emulator's endpoint and test credentials come from the
# environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).

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

source "ami-ebs" "demo" {
  region        = var.region
  instance_type = "t3.micro"

  # moto preloads Amazon's public images; pick the newest Amazon Linux 2023.
  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-6.1-x86_64"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  # The emulator's instances have unreachable addresses: provision through
  # the loopback SSH server instead.
  ssh_host             = "127.0.0.1"
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "1m"

  ami_name        = "demo-web-{{timestamp}}"
  ami_description = "Demo AMI built against the local emulator"

  run_tags = {
    Purpose = "demo-build"
  }

  tags = {
    Name      = "demo-web"
    SourceAMI = "{{ .SourceAMI }}"
    BuiltBy   = "packer-plugin-ami"
  }

  snapshot_tags = {
    Name = "demo-web"
  }
}

build {
  sources = ["source.ami-ebs.demo"]

  provisioner "shell" {
    inline = [
      "echo \"provisioned by packer at $(date -u +%FT%TZ)\" > ${var.output_dir}/provisioned.txt",
      "cat ${var.output_dir}/provisioned.txt",
    ]
  }
}
