# A data team that bakes its batch-worker image on spot capacity to keep
# build costs down; the image is shared with the analytics account.
# Covers: spot_price = "auto", spot_instance_types, spot_tags, ami_users,
# launch_block_device_mappings with a second data volume,
# ami_block_device_mappings mapping instance-store volumes, run_tags.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

source "amazon-ebs" "worker" {
  region              = "eu-west-1"
  spot_price          = "auto"
  spot_instance_types = ["c6i.xlarge", "c5.xlarge", "c5a.xlarge"]
  ssh_username        = "ec2-user"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name  = "batch-worker-{{timestamp}}"
  ami_users = ["210987654321"]

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 40
    volume_type           = "gp3"
    delete_on_termination = true
  }
  launch_block_device_mappings {
    device_name           = "/dev/xvdf"
    volume_size           = 100
    volume_type           = "gp3"
    delete_on_termination = true
  }

  ami_block_device_mappings {
    device_name  = "/dev/xvdb"
    virtual_name = "ephemeral0"
  }
  ami_block_device_mappings {
    device_name  = "/dev/xvdc"
    virtual_name = "ephemeral1"
  }

  spot_tags = {
    Name = "packer-batch-worker-spot"
  }
  run_tags = {
    Team = "data"
  }
  tags = {
    Name = "batch-worker"
    Team = "data"
  }
}

build {
  sources = ["source.amazon-ebs.worker"]

  provisioner "shell" {
    inline = [
      "sudo mkfs -t xfs /dev/xvdf",
      "sudo dnf -y install java-21-amazon-corretto-headless",
    ]
  }
}
