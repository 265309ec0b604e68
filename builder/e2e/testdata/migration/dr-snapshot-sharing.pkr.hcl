# A backup team that copies its app image to its recovery region and
# shares the AMI and its snapshots with the backup vault account, so that
# the vault can keep its own copy of the volumes.
# Covers: ami_regions, ami_users, snapshot_users, snapshot_tags,
# run_volume_tags, force_deregister, force_delete_snapshot, a shell
# provisioner, {{ .SourceAMIName }} in tags.
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "vault_account" {
  type    = string
  default = "210987654321"
}

source "amazon-ebs" "app" {
  region        = "us-east-1"
  instance_type = "t3.small"
  ssh_username  = "ec2-user"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name              = "app-dr-{{timestamp}}"
  ami_regions           = ["eu-west-1"]
  ami_users             = [var.vault_account]
  snapshot_users        = [var.vault_account]
  force_deregister      = true
  force_delete_snapshot = true

  tags = {
    Name        = "app-dr"
    BaseAMIName = "{{ .SourceAMIName }}"
    Backup      = "vault"
  }
  snapshot_tags = {
    Name   = "app-dr"
    Backup = "vault"
  }
  run_volume_tags = {
    Name = "packer-app-dr"
  }
}

build {
  sources = ["source.amazon-ebs.app"]

  provisioner "shell" {
    inline = ["echo 'app install'", "ls /"]
  }
}
