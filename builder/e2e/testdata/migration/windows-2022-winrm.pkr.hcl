# A Windows team's Server 2022 base image, provisioned over WinRM with a
# password set from user data, encrypted with the team's customer-managed
# key and shared with the workloads account.
# Covers: communicator = "winrm" with winrm_* options, user_data heredoc,
# encrypt_boot with kms_key_id from a variable, ami_users, snapshot_users,
# launch_block_device_mappings, a sensitive variable, powershell and
# windows-restart provisioners.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "kms_key_id" {
  type    = string
  default = "alias/windows-images"
}

variable "winrm_password" {
  type      = string
  sensitive = true
  default   = "ChangeMe-Build-Only-1!"
}

source "amazon-ebs" "win2022" {
  region        = "us-east-1"
  instance_type = "m6i.large"

  source_ami_filter {
    filters = {
      name = "Windows_Server-2022-English-Full-Base-*"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  communicator   = "winrm"
  winrm_username = "Administrator"
  winrm_password = var.winrm_password
  winrm_use_ssl  = true
  winrm_insecure = true
  winrm_timeout  = "20m"

  user_data = <<-EOT
    <powershell>
    net user Administrator "${var.winrm_password}"
    winrm quickconfig -q
    winrm set winrm/config/service/auth '@{Basic="true"}'
    </powershell>
  EOT

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = 60
    volume_type           = "gp3"
    delete_on_termination = true
  }

  ami_name       = "win2022-base-{{timestamp}}"
  encrypt_boot   = true
  kms_key_id     = var.kms_key_id
  ami_users      = ["444455556666"]
  snapshot_users = ["444455556666"]

  tags = {
    Name = "win2022-base"
    OS   = "Windows"
  }
}

build {
  sources = ["source.amazon-ebs.win2022"]

  provisioner "powershell" {
    inline = ["Install-WindowsFeature -Name Web-Server"]
  }

  provisioner "windows-restart" {}
}
